#!/usr/bin/env bash
# Installs Debian's pgbouncer package for the session-lock specs of the SQL
# lease (pkg/core/leader, issue 13), which start their own PgBouncer in
# transaction mode on loopback in front of the test PostgreSQL
# (internal/pgbouncer). Idempotent: does nothing when the package is already
# installed. CI runs every scripts/install-*.sh before the tests.
set -euo pipefail

log() { echo "install-pgbouncer: $*" >&2; }

if dpkg-query -W -f='${Status}' pgbouncer 2>/dev/null | grep -q 'install ok installed'; then
  log "pgbouncer is already installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
apt-get update -qq
log "apt-get install pgbouncer"
apt-get install -y -qq --no-install-recommends pgbouncer
# The package's own service is not wanted: the specs start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet pgbouncer 2>/dev/null; then
  systemctl stop pgbouncer || true
fi
if [ -x /etc/init.d/pgbouncer ]; then /etc/init.d/pgbouncer stop >/dev/null 2>&1 || true; fi
log "done"
