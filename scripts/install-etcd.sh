#!/usr/bin/env bash
# Installs Debian's etcd-server package (the etcd binary) for the etcd
# election backend's tests, which start their own throwaway member on
# loopback (internal/etcdserver). Idempotent: does nothing when the package
# is already installed. CI runs every scripts/install-*.sh before the tests.
set -euo pipefail

log() { echo "install-etcd: $*" >&2; }

if dpkg-query -W -f='${Status}' etcd-server 2>/dev/null | grep -q 'install ok installed'; then
  log "etcd-server is already installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
apt-get update -qq
log "apt-get install etcd-server"
# The package's own service is not wanted: the tests start their own members.
apt-get install -y -qq --no-install-recommends etcd-server
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi
log "done"
