#!/usr/bin/env bash
# Installs Debian's zookeeper package (ZooKeeper server jars and a Java
# runtime) for the ZooKeeper discovery tests. Idempotent: does nothing when
# the package is already installed. CI runs every scripts/install-*.sh before
# the tests.
set -euo pipefail

log() { echo "install-zookeeper: $*" >&2; }

if dpkg-query -W -f='${Status}' zookeeper 2>/dev/null | grep -q 'install ok installed'; then
  log "zookeeper is already installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
apt-get update -qq
log "apt-get install zookeeper"
apt-get install -y -qq zookeeper
log "done"
