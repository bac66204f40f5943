#!/usr/bin/env bash
# Builds tools/vault-testenv (Vault's server and CLI, v1.21.4, from its Go
# module) once, for the Vault integration tests. Cached outside the repo, keyed
# by a hash of go.mod, go.sum, main.go and sdk.patch, like the control plane.
# Prints the binary's path on stdout.
#
# Why a patch: Vault releases are built from the repository's own ./sdk, which
# was never published at the v1.21.4 state. The closest published sdk
# (v0.21.0) differs in two signatures (framework.Backend.ActivationFunc and
# keysutil.LockManager.RestorePolicy); sdk.patch changes exactly those in a
# copy taken from the module cache (docs: ../shared/reference/test-vault.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/vault-testenv"
cache_root="${SECRETSYNC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secretsync}"
sdk_version="v0.21.0"
ldflags="-s -w"
hash="$( (cat "$src/go.mod" "$src/go.sum" "$src/main.go" "$src/sdk.patch"; echo "$sdk_version $ldflags") | sha256sum | cut -c1-16)"
out_dir="$cache_root/vault-testenv/$hash"
bin="$out_dir/vault"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "build-vault-testenv: Go is required to build the test Vault server (https://go.dev/dl)" >&2
  exit 1
fi

mkdir -p "$out_dir"
echo "build-vault-testenv: building Vault v1.21.4 from Go modules" >&2
echo "build-vault-testenv: a cold build takes about 10 minutes on 2 cores; later runs reuse $out_dir" >&2

tmp="$bin.tmp.$$"
work="$(mktemp -d)"
trap 'rm -f "$tmp"; chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

(
  cd "$src"
  # The sdk copy lives in a scratch directory: the module is copied there with
  # it, so the repo's tree is never written to.
  cp go.mod go.sum main.go "$work/"
  sdk_dir="$(GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/vault/sdk@$sdk_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [[ -z "$sdk_dir" || ! -d "$sdk_dir" ]]; then
    echo "build-vault-testenv: could not download github.com/hashicorp/vault/sdk@$sdk_version" >&2
    exit 1
  fi
  cp -r "$sdk_dir" "$work/.sdk"
  chmod -R u+w "$work/.sdk"
  patch -s -p1 -d "$work/.sdk" < sdk.patch
  cd "$work"
  go mod download >&2
  ( while sleep 15; do printf '.' >&2; done ) &
  ticker=$!
  trap 'kill $ticker 2>/dev/null || true' EXIT
  start=$(date +%s)
  CGO_ENABLED=0 go build -mod=mod -buildvcs=false -trimpath -ldflags "$ldflags" -o "$tmp" . >&2
  echo >&2
  echo "build-vault-testenv: built in $(( $(date +%s) - start )) s" >&2
)
mv "$tmp" "$bin"
echo "$bin"
