#!/usr/bin/env bash
# Runs the benchmarks and writes BENCHMARKS.md (see test/bench).
#
#   make bench                  full profile (about 20 minutes on 2 cores)
#   BENCH_QUICK=1 make bench    quick profile (under 2 minutes): fast timings,
#                               fewer rounds, SQLite and one server
#   BENCH_OUT=file              write the report elsewhere
#
# One measurement alone, without replica processes:
#   go run ./test/bench -only large-replace -out /tmp/large-replace.md
# (the Replace of a large registry, 1M resources, 200k on SQLite, with the
# lease renew latency meanwhile; add -quick for 20k/10k).
#
#   BENCH_PHASES=store,zookeeper  run only these phases (election, store,
#                               zookeeper, fifty; default all)
#   BENCH_DIALECTS=sqlite,mysql   run only these databases (sqlite, mysql,
#                               postgres; default all)
#
# The zookeeper phase starts its own ZooKeeper from Debian's jars
# (scripts/install-zookeeper.sh; reported as skipped when they are missing),
# fills it with the bench's loader (10 000 services x 10 instances, quick:
# 500 x 10) and runs two replica processes per server database on it.
#
# MariaDB and PostgreSQL are reached as in make test (ADMIN_TEST_MYSQL_DSN,
# ADMIN_TEST_POSTGRES_DSN, else their default addresses); a server that does
# not answer is reported as skipped. The full profile first runs the Go
# benchmarks of pkg/core/leader and pkg/core/store briefly, and the
# Kubernetes Lease backend's handover and crash failover (about 30 s), and
# includes their numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${BENCH_OUT:-BENCHMARKS.md}
work=$(mktemp -d)
bench_pid=
cleanup() {
  # The bench kills its replica processes and drops its databases itself
  # (and its children die with it: Pdeathsig); stop it if we are stopped.
  if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command="make bench"
if [ "${BENCH_QUICK:-}" = 1 ]; then command="BENCH_QUICK=1 make bench"; fi
if [ -n "${BENCH_PHASES:-}" ]; then command="BENCH_PHASES=$BENCH_PHASES $command"; fi
if [ -n "${BENCH_DIALECTS:-}" ]; then command="BENCH_DIALECTS=$BENCH_DIALECTS $command"; fi

go build -o "$work/bench" ./test/bench
go build -o "$work/dubbo-admin" ./app/dubbo-admin

gobench_args=()
if [ "${BENCH_QUICK:-}" != 1 ]; then
  echo "$(date +%T) bench: go test -bench (pkg/core/leader, pkg/core/store), briefly" >&2
  go test -run '^$' -bench 'Acquire|Renew|Get|Upsert|Apply' -benchtime=200x -count=1 \
    ./pkg/core/leader ./pkg/core/store >"$work/gobench.txt" 2>&1 || {
      echo "go test -bench failed:" >&2; cat "$work/gobench.txt" >&2; exit 1; }
  # The Kubernetes Lease backend on a real kube-apiserver (skipped without
  # one): graceful handover and crash failover, lease 3s/renew 2s/retry 500ms.
  echo "$(date +%T) bench: go test -bench (pkg/core/leader/kubernetes), 5 rounds each" >&2
  go test -run '^$' -bench 'Handover|CrashFailover' -benchtime=5x -count=1 \
    ./pkg/core/leader/kubernetes >>"$work/gobench.txt" 2>&1 || {
      echo "go test -bench failed:" >&2; cat "$work/gobench.txt" >&2; exit 1; }
  gobench_args=(-gobench "$work/gobench.txt")
fi

"$work/bench" -out "$out" -binary "$work/dubbo-admin" -command "$command" "${gobench_args[@]}" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=
if [ "$status" = 0 ]; then
  # The membership table's cost (pkg/core/membership TestCost): statements
  # per second per replica with 3 and 50 replicas, on every dialect.
  secs=20
  if [ "${BENCH_QUICK:-}" = 1 ]; then secs=5; fi
  echo "$(date +%T) bench: membership table cost, ${secs}s per run" >&2
  ADMIN_MEMBERSHIP_COST=$secs go test -count=1 -run '^TestCost$' -v -timeout 30m ./pkg/core/membership >"$work/membership.txt" 2>&1 || {
    echo "membership cost failed:" >&2; cat "$work/membership.txt" >&2; exit 1; }
  {
    echo
    echo "## Membership table (admin_replicas)"
    echo
    echo "Statements per second that the replicas' membership Recorders send, at the default election timings"
    echo "(retry period 1s, lease 10s: a keepalive every 3.3s, written on the next whole period), each replica on a pool"
    echo "of its own, measured over ${secs}s after every first write and prune: steady (no state change) and with a"
    echo "change at every period (the most a replica ever writes: one statement per retry period). Retention: a"
    echo "gone replica's row is deleted by the next replica to start once it was not seen for 24h (membership.DefaultRetention);"
    echo "a graceful stop deletes its own row. \`ADMIN_MEMBERSHIP_COST=${secs} go test -run TestCost -v ./pkg/core/membership\`"
    echo
    grep '^|' "$work/membership.txt"
  } >>"$out"
fi
exit "$status"
