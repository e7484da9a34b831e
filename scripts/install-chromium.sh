#!/usr/bin/env bash
# Installs Debian's chromium package (/usr/bin/chromium) for the cluster
# page's browser test (test/e2e, internal/browser drives it headless over
# the DevTools pipe). Idempotent: does nothing when it is already installed.
# CI runs every scripts/install-*.sh before the tests.
set -euo pipefail

log() { echo "install-chromium: $*" >&2; }

if dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q 'install ok installed'; then
  log "chromium is already installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
apt-get update -qq
log "apt-get install chromium"
# Fonts come with the package's dependencies; recommends (extensions,
# sandbox helpers, desktop integration) are not needed headless.
apt-get install -y -qq --no-install-recommends chromium
log "done"
