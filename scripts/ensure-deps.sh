# Sourced by the quick-start scripts: checks the toolchains a fresh machine
# needs and installs the npm packages when package-lock.json changed.
# (The Go-built control plane and moto install themselves on first use.)
# Prometheus and promtool (Debian's package, for the dashboard and alert-rule
# tests) are fetched here, so no test needs apt.
set -euo pipefail

die() { echo "secretsync: $*" >&2; exit 1; }

command -v node >/dev/null || die "Node.js 20.19 or newer is required"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js 20.19 or newer is required (found $(node --version))"
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
