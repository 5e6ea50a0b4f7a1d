#!/usr/bin/env bash
# Local stack: see infra/local/README.md. Extra arguments go to `reasonbrain infra up`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
exec "${ROOT}/.venv/bin/reasonbrain" infra up "$@"
