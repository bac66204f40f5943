#!/usr/bin/env bash
# Runs every test: lint and type check, unit tests, and integration tests
# against a real kube-apiserver + etcd and moto_server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/ensure-deps.sh
echo "secretsync: tests run on Node.js $(node --version)" >&2
npm test
