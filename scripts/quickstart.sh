#!/usr/bin/env bash
# One command from a fresh clone: set up .venv, then evaluate the packaged Gemma 3 270M on the built-in
# `arith` benchmark (offline, a few minutes on 2 CPU cores). Extra arguments go to `mathforge eval`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/mathforge eval "$@"
