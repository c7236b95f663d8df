#!/usr/bin/env bash
# Set up .venv in the repo root: CPU torch, mathforge with the llama.cpp and transformers engines, the packaged
# Gemma 3 270M model, and the dev tools. Safe to re-run: it does nothing when pyproject.toml has not changed.
#
#   TORCH_SPEC   the torch requirement installed first (default torch==2.13.0, a CPU build). It is installed
#                before anything else so that no dependency can pull a multi-GB CUDA build of torch. Elsewhere,
#                for a CPU build from PyPI's mirror of the PyTorch index, set PIP_EXTRA_INDEX_URL accordingly.
#   PYTHON       the interpreter for the venv (default python3; 3.11 or newer).
#   CMAKE_ARGS   llama.cpp build options for llama-cpp-python (e.g. "-DGGML_CUDA=on"); see below for the
#                default. Changing it rebuilds llama-cpp-python on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
stamp=.venv/.mathforge-setup

# llama.cpp's build options. On x86_64 Linux the default is a portable build for the CPU features the machine
# reports, not -march=native: a native build on a CPU with AMX tiles (recent Xeons) was seen to crash in
# libggml-cpu on the first token. Elsewhere (macOS, aarch64) llama.cpp's own native default stays.
if [ -z "${CMAKE_ARGS:-}" ] && [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ]; then
  CMAKE_ARGS="-DGGML_NATIVE=OFF"
  cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo || true) "
  for feature in avx avx2 fma f16c; do
    case "$cpu_flags" in *" $feature "*) CMAKE_ARGS="$CMAKE_ARGS -DGGML_$(echo "$feature" | tr a-z A-Z)=ON" ;; esac
  done
fi
export CMAKE_ARGS="${CMAKE_ARGS:-}"
llama_spec="$(grep -o '"llama-cpp-python[<>=!~][^"]*"' pyproject.toml | head -1 | tr -d '"' || true)"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $torch_spec $CMAKE_ARGS"

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
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -f .venv/share/mathforge/llama.cpp/VERSION ]; then
  exit 0
fi
echo "mathforge: setting up .venv (the first time this compiles llama-cpp-python: a few minutes)" >&2
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "$torch_spec"

# llama-cpp-python compiles llama.cpp: built first, with CMAKE_ARGS (exported, so any later rebuild uses them
# too), and again only when the options or the requirement change. --no-cache-dir: pip's wheel cache does not
# know build options and could hand back a wheel built with others.
llama_stamp=.venv/.mathforge-llama-build
llama_want="${llama_spec:-llama-cpp-python} $CMAKE_ARGS"
if [ "$(cat "$llama_stamp" 2>/dev/null)" != "$llama_want" ]; then
  rebuild=""
  if .venv/bin/python -c "import importlib.metadata as m; m.version('llama-cpp-python')" 2>/dev/null; then
    rebuild="--force-reinstall --no-deps"  # built before with other options
  fi
  # shellcheck disable=SC2086  # $rebuild is zero or two words
  .venv/bin/python -m pip install --quiet --no-cache-dir $rebuild "${llama_spec:-llama-cpp-python}"
  echo "$llama_want" > "$llama_stamp"
fi
.venv/bin/python -m pip install --quiet -e ".[all,dev]"

# --- llama.cpp's converter (for `mathforge export`) ---------------------------------------------------------
# llama.cpp's own HF -> GGUF converter: convert_hf_to_gguf.py, its conversion/ package and its gguf-py (all
# that the script imports from llama.cpp), taken from the source distribution of the llama-cpp-python just
# installed: the same version, so the GGUF it writes is one the engine reads. No llama.cpp code is committed
# to this repository, and nothing is downloaded when `export` runs (it checks VERSION against the engine).
converter=.venv/share/mathforge/llama.cpp
llama_version="$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
if [ "$(cat "$converter/VERSION" 2>/dev/null)" != "$llama_version" ]; then
  sdist_version="${llama_version%%+*}"  # a wheel from a CUDA index may carry a local label (0.3.36+cu124)
  sdist_dir="$(mktemp -d)"
  .venv/bin/python -m pip download --quiet --no-deps --no-binary :all: \
    -d "$sdist_dir" "llama-cpp-python==$sdist_version"
  rm -rf "$converter" && mkdir -p "$converter"
  tar -xzf "$sdist_dir"/llama_cpp_python-*.tar.gz -C "$converter" --strip-components=3 \
    "llama_cpp_python-$sdist_version/vendor/llama.cpp/convert_hf_to_gguf.py" \
    "llama_cpp_python-$sdist_version/vendor/llama.cpp/conversion" \
    "llama_cpp_python-$sdist_version/vendor/llama.cpp/gguf-py"
  echo "$llama_version" > "$converter/VERSION"  # last: an interrupted extraction is redone on the next run
  rm -rf "$sdist_dir"
fi
# --- end of llama.cpp's converter ---------------------------------------------------------------------------
echo "$want" > "$stamp"
