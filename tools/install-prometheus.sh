#!/usr/bin/env bash
# Installs Debian's `prometheus` package (prometheus and promtool) into the
# test cache, without root and without installing anything system-wide: the
# dashboard test scrapes a real operator with a real Prometheus, and the alert
# rules are unit-tested with promtool. `apt-get download` fetches the .deb (no
# root needed) and `dpkg-deb -x` unpacks it; only the two binaries are kept,
# in <cache>/prometheus-<version>, so tests never need apt once this has run.
# Prints that directory on stdout.
set -euo pipefail

cache_root="${SECRETSYNC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secretsync}"
marker=.secretsync-complete

newest_cached() {
  local d
  for d in $(ls -1d "$cache_root"/prometheus-* 2>/dev/null | sort -rV); do
    if [[ -f "$d/$marker" && -x "$d/prometheus" && -x "$d/promtool" ]]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

# The version apt would download now: the cache follows Debian's security updates.
candidate() {
  apt-cache show --no-all-versions prometheus 2>/dev/null | awk '$1=="Version:" && v=="" {v=$2} END {print v}'
}
version=""
if command -v apt-cache >/dev/null 2>&1; then
  version="$(candidate)"
  # A fresh machine (a CI container) may have no package lists yet; root can fetch them.
  if [[ -z "$version" && "$(id -u)" == 0 ]] && ! newest_cached >/dev/null; then
    echo "install-prometheus: no package lists; running apt-get update" >&2
    apt-get update -qq >&2 || true
    version="$(candidate)"
  fi
fi
if [[ -z "$version" ]]; then
  # No apt here (or no package list): a copy installed earlier still serves.
  if newest_cached; then exit 0; fi
  echo "install-prometheus: Debian's prometheus package is needed (apt-get update, then rerun)" >&2
  exit 1
fi

dir="$cache_root/prometheus-${version//[^A-Za-z0-9.+_-]/_}"
if [[ -f "$dir/$marker" && -x "$dir/prometheus" && -x "$dir/promtool" ]]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$cache_root"
work="$(mktemp -d "$cache_root/.prometheus-download.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "install-prometheus: downloading Debian's prometheus $version into $dir" >&2
# apt-get download writes into the current directory; its _apt sandbox warning (when run as root) is noise.
(cd "$work" && apt-get download -q "prometheus=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
# Reading whole outputs (no `exit` in awk, no head): a reader that stops early would SIGPIPE the writer under pipefail.
debs=("$work"/prometheus_*.deb)
deb="${debs[0]}"
if [[ ! -f "$deb" ]]; then
  echo "install-prometheus: apt-get download prometheus=$version produced no .deb" >&2
  exit 1
fi
dpkg-deb -x "$deb" "$work/root"
mkdir -p "$work/out"
cp "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$work/out/"
"$work/out/promtool" --version >/dev/null
echo "$version" > "$work/out/$marker"
rm -rf "$dir"
mv "$work/out" "$dir"
echo "$dir"
