#!/usr/bin/env bash
# Builds tools/kube-rawclient (a client-go program that creates Secrets as fast
# as the API server takes them: the benchmark's client-go raw baseline) once.
# Cached outside the repo, keyed by a hash of go.mod, go.sum and main.go, like
# the control plane. Its modules (client-go v0.36.3 and what it needs) are the
# ones tools/kube-testenv already downloads and compiles with the same flags,
# so after the control plane's build this one takes seconds (about 7 s; from
# an empty Go build cache about 2.5 CPU-minutes). Prints the binary's path on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/kube-rawclient"
cache_root="${SECRETSYNC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secretsync}"
ldflags="-s -w"
hash="$( (cat "$src/go.mod" "$src/go.sum" "$src/main.go"; echo "$ldflags") | sha256sum | cut -c1-16)"
out_dir="$cache_root/kube-rawclient/$hash"
bin="$out_dir/kube-rawclient"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "build-kube-rawclient: Go is required to build the client-go raw baseline (https://go.dev/dl)" >&2
  exit 1
fi

mkdir -p "$out_dir"
echo "build-kube-rawclient: building the client-go raw baseline from Go modules" >&2
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
  cd "$src"
  go mod download >&2
  start=$(date +%s)
  # CGO off and -trimpath as in build-kube-testenv.sh, so the Go build cache it filled is reused.
  CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "$ldflags" -o "$tmp" . >&2
  echo "build-kube-rawclient: built in $(( $(date +%s) - start )) s" >&2
)
mv "$tmp" "$bin"
echo "$bin"
