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
trap 'rm -f "$skiplog"' EXIT
export ADMIN_TEST_SKIP_LOG="$skiplog"

status=0
go test -race -count=1 -timeout 40m "$@" ./... || status=$?

if [ -s "$skiplog" ]; then
  echo
  echo "Skipped suites (set the variable, or start the server, to run them):"
  sort -u "$skiplog" | sed 's/^/  /'
else
  echo "No suite was skipped."
fi
exit "$status"
