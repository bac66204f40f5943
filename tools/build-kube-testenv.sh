#!/usr/bin/env bash
# Builds tools/kube-testenv (etcd + kube-apiserver + kube-controller-manager in
# one binary) from the Kubernetes Go modules, once. The binary is cached outside
# the repo, keyed by a hash of go.mod, go.sum and main.go, so later runs and CI
# rebuild only when those change. Prints the binary's path on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/kube-testenv"
cache_root="${SECRETSYNC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secretsync}"

k8s_version="$(awk '$1=="k8s.io/kubernetes" {print $2; exit}' "$src/go.mod")"
minor="$(echo "$k8s_version" | cut -d. -f2)"
pkg="k8s.io/component-base/version"
ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
# The key covers the sources and the link flags, not this script's wording.
hash="$( (cat "$src/go.mod" "$src/go.sum" "$src/main.go"; echo "$ldflags") | sha256sum | cut -c1-16)"
out_dir="$cache_root/kube-testenv/$hash"
bin="$out_dir/kube-testenv"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "build-kube-testenv: Go is required to build the test control plane (https://go.dev/dl)" >&2
  exit 1
fi

mkdir -p "$out_dir"
echo "build-kube-testenv: building kube-apiserver, etcd and kube-controller-manager $k8s_version from Go modules" >&2
echo "build-kube-testenv: a cold build takes about 10 minutes on 2 cores; later runs reuse $out_dir" >&2

tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT

(
  cd "$src"
  go mod download >&2
  # Progress: one dot every 15 s so a long cold build is visibly alive.
  ( while sleep 15; do printf '.' >&2; done ) &
  ticker=$!
  trap 'kill $ticker 2>/dev/null || true' EXIT
  start=$(date +%s)
  CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "$ldflags" -o "$tmp" . >&2
  echo >&2
  echo "build-kube-testenv: built in $(( $(date +%s) - start )) s" >&2
)
mv "$tmp" "$bin"
echo "$bin"
