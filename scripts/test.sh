#!/usr/bin/env bash
# Runs the Go tests with the race detector, then says which suites were
# skipped and why. Usage: scripts/test.sh quick|e2e [go test args...]
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-quick}
shift || true
case "$profile" in
  quick) export ADMIN_TEST_LABEL_FILTER='!e2e' ;;
  e2e)   export ADMIN_TEST_LABEL_FILTER='e2e' ;; # only what quick leaves out: CI runs both
  *) echo "usage: $0 quick|e2e" >&2; exit 2 ;;
esac

skiplog=$(mktemp)
ranlog=$(mktemp)
trap 'rm -f "$skiplog" "$ranlog"' EXIT
export ADMIN_TEST_SKIP_LOG="$skiplog" ADMIN_TEST_RAN_LOG="$ranlog"

status=0
go test -race -count=1 -timeout 40m "$@" ./... || status=$?

echo
if [ -s "$ranlog" ]; then
  echo "Ran on (database: suites):"
  sort -u "$ranlog" | awk -F '\t' '{ s[$1] = s[$1] (s[$1] ? ", " : "") $2 } END { for (d in s) print "  " d ": " s[d] }' | sort
else
  echo "No database suite ran."
fi
if [ -s "$skiplog" ]; then
  echo
  echo "Skipped suites (set the variable, or start the server, to run them):"
  sort -u "$skiplog" | sed 's/^/  /'
else
  echo "No suite was skipped."
fi
exit "$status"
