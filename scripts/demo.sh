#!/usr/bin/env bash
# The quick-start demo: a real control plane and AWS endpoint on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/ensure-deps.sh
npm run --silent demo
