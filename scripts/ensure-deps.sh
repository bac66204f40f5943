# Sourced by the quick-start scripts: checks the toolchains a fresh machine
# needs and installs the npm packages when package-lock.json changed.
# (The Go-built control plane and moto install themselves on first use.)
# Prometheus and promtool (Debian's package, for the dashboard and alert-rule
# tests) are fetched here, so no test needs apt.
set -euo pipefail

die() { echo "secretsync: $*" >&2; exit 1; }

# The runtime is Node.js 24 LTS (20 reached end of life in April 2026). A machine with another
# Node.js gets 24 from the npm registry (the package node-linux-<arch>, checked against the
# registry's integrity hash by npm), unpacked once into the cache and put first on PATH, so that
# npm, the tests and every operator process they start run on it. npm itself is the machine's.
SECRETSYNC_NODE_VERSION=24.22.3
command -v npm >/dev/null || die "npm is required (it fetches Node.js $SECRETSYNC_NODE_VERSION)"
if [[ "$(node --version 2>/dev/null || true)" != "v$SECRETSYNC_NODE_VERSION" ]]; then
  case "$(uname -m)" in
    x86_64) node_arch=x64 ;;
    aarch64 | arm64) node_arch=arm64 ;;
    *) die "no Node.js $SECRETSYNC_NODE_VERSION package for $(uname -m); install it and put it on PATH" ;;
  esac
  node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/secretsync/node-$SECRETSYNC_NODE_VERSION-linux-$node_arch"
  if [[ ! -x "$node_dir/bin/node" ]]; then
    echo "secretsync: installing Node.js $SECRETSYNC_NODE_VERSION into $node_dir" >&2
    node_tmp="$(mktemp -d)"
    (cd "$node_tmp" && npm pack --silent "node-linux-$node_arch@$SECRETSYNC_NODE_VERSION" >/dev/null) \
      || die "could not fetch node-linux-$node_arch@$SECRETSYNC_NODE_VERSION from the npm registry"
    mkdir -p "$node_dir.partial"
    tar -xzf "$node_tmp"/node-linux-"$node_arch"-*.tgz -C "$node_dir.partial" --strip-components=1 \
      package/bin/node package/LICENSE
    rm -rf "$node_tmp" "$node_dir"
    mv "$node_dir.partial" "$node_dir"
  fi
  export PATH="$node_dir/bin:$PATH"
fi
[[ "$(node --version)" == "v$SECRETSYNC_NODE_VERSION" ]] || die "Node.js $SECRETSYNC_NODE_VERSION is not first on PATH (found $(node --version))"
command -v go >/dev/null || die "Go 1.26 or newer is required to build the test control plane"
command -v python3 >/dev/null || die "Python 3.10 or newer is required for moto (the AWS test endpoint)"

stamp=node_modules/.secretsync-lock-hash
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "secretsync: installing npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
  echo "$want" > "$stamp"
fi

if command -v apt-get >/dev/null; then
  bash tools/install-prometheus.sh >/dev/null || die "could not install Debian's prometheus package into the test cache"
else
  # Not Debian: the demo still runs; the dashboard and alert-rule tests will say what they miss.
  echo "secretsync: no apt-get here; the Prometheus tests need Debian's prometheus package (tools/install-prometheus.sh)" >&2
fi

# zsh and fish run the shell-completion tests (test/unit/cli/completion.test.ts; bash is always here).
# Without them those tests skip with a message; as root on Debian they are installed.
missing_shells=()
for shell in zsh fish; do command -v "$shell" >/dev/null || missing_shells+=("$shell"); done
if (( ${#missing_shells[@]} > 0 )); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "secretsync: installing ${missing_shells[*]} for the completion tests (apt-get)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_shells[@]}"; } >&2 \
      || echo "secretsync: could not install ${missing_shells[*]}; their completion tests will skip" >&2
  else
    echo "secretsync: ${missing_shells[*]} not installed; their completion tests will skip" >&2
  fi
fi
