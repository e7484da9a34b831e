#!/usr/bin/env bash
# Builds the kube-apiserver that the Kubernetes election and engine specs run
# against (internal/kubeapiserver starts it on loopback, with etcd). Debian
# has no package for it, so it is built from the Go module proxy in its own
# module, test/kube/tools, which keeps k8s.io/kubernetes out of Admin's
# go.mod. The binary is cached outside the checkout, keyed by version:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/dubbo-admin/kube-apiserver-<version>/kube-apiserver
#
# Idempotent: does nothing when that file exists (a few ms). A cold build
# takes 9-14 minutes on 2 idle cores, 17 on a busy machine (peak about
# 2.5 GB RAM); CI runs every scripts/install-*.sh before the tests, so it
# pays that once per cache.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "install-kube-apiserver: $*" >&2; }

tools=test/kube/tools
version=$(sed -n 's|^[[:space:]]*\(require[[:space:]]\{1,\}\)\{0,1\}k8s.io/kubernetes[[:space:]]\{1,\}\(v[^[:space:]]*\).*|\2|p' "$tools/go.mod" | head -1)
[ -n "$version" ] || { log "no k8s.io/kubernetes requirement in $tools/go.mod"; exit 1; }

dir="${XDG_CACHE_HOME:-$HOME/.cache}/dubbo-admin/kube-apiserver-$version"
bin="$dir/kube-apiserver"
if [ -x "$bin" ]; then
  log "kube-apiserver $version is already built: $bin"
  exit 0
fi

command -v go >/dev/null || { log "Go toolchain not found"; exit 1; }
mkdir -p "$dir"
tmp=$(mktemp "$dir/.kube-apiserver.XXXXXX")
trap 'rm -f "$tmp"' EXIT
minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for kv in "gitVersion=$version" "gitMajor=1" "gitMinor=$minor" "gitTreeState=clean"; do
  ldflags="$ldflags -X k8s.io/component-base/version.$kv"
done
log "building kube-apiserver $version (cold: 9-17 minutes on 2 cores)"
start=$(date +%s)
(cd "$tools" && nice go build -trimpath -ldflags "$ldflags" -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver)
chmod 0755 "$tmp"
mv -f "$tmp" "$bin"
log "built $bin in $(( $(date +%s) - start ))s"
