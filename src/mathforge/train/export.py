"""`mathforge export`: a transformers model directory to a GGUF file, with llama.cpp's own code.

The conversion is llama.cpp's `convert_hf_to_gguf.py` with its `conversion/` package and its own `gguf-py`,
taken by `scripts/setup.sh` from the source distribution of the installed llama-cpp-python: the same version as
the engine that will read the file. Nothing is downloaded here and none of llama.cpp's code lives in this
repository. The converter runs as a subprocess, as llama.cpp documents it. The types it writes itself (F32, F16,
BF16, Q8_0) come straight from it; the K-quants and the other types are converted to 16 bits first and then
quantised in-process by llama.cpp's quantize API (`llama_model_quantize`, exposed by llama-cpp-python), which
is what llama.cpp's `llama-quantize` tool calls.

Everything is written into a scratch folder beside OUT and renamed into place at the end, so a failed or killed
export never leaves a truncated OUT (nor a multi-GB intermediate file).
"""

from __future__ import annotations

import codecs
import ctypes
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from mathforge.config import Options, one_of
from mathforge.errors import Interrupted, MathforgeError
from mathforge.progress import ItemProgress

# --quant -> the converter's --outtype, for the types the converter writes itself.
CONVERTER_TYPES = {"F32": "f32", "F16": "f16", "BF16": "bf16", "Q8_0": "q8_0"}
# --quant -> llama.cpp's LLAMA_FTYPE_MOSTLY_<name>, for the types its quantize API writes. Left out: the types
# llama.cpp's own llama-quantize refuses without an importance matrix (IQ1_*, IQ2_*, Q2_K_S), which export does
# not compute, and the ternary and MXFP4 types meant for models trained in them.
QUANTIZED_TYPES = (
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q2_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "Q4_K_S",
    "Q4_K_M",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
    "IQ3_XS",
    "IQ3_S",
    "IQ3_M",
    "IQ4_NL",
    "IQ4_XS",
)
QUANTS = (*CONVERTER_TYPES, *QUANTIZED_TYPES)
# The converter's 16-bit type before quantising: "auto" keeps a bf16 model in bf16 (f16 could overflow its
# large values) and writes f16 otherwise, as llama.cpp's own guide does.
BEFORE_QUANTIZE = "auto"
CONVERTER_ENV = "MATHFORGE_LLAMA_CPP_DIR"
CONVERTER_SCRIPT = "convert_hf_to_gguf.py"

# The converter's tqdm bar while it writes the tensors (the slow part): "Writing:  45%|...".
_WRITING = re.compile(r"Writing:\s*(\d+)%")
# llama.cpp's quantize logs one line per tensor: "[  12/ 291]   blk.1.attn_q.weight - [...], type = f16, ...".
_QUANTIZED_TENSOR = re.compile(r"^\[\s*\d+/\s*\d+\]")
_GGML_LOG_ERROR, _GGML_LOG_CONT = 4, 5  # ggml.h's log levels (DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5)


class ExportOptions(Options):
    """Options of `mathforge export`."""

    cli_names: ClassVar[dict[str, str]] = {"json_output": "json"}

    quant: str = Field(
        "F16",
        description=(
            f"GGUF type: {', '.join(CONVERTER_TYPES)} (written by llama.cpp's converter) or "
            f"{', '.join(QUANTIZED_TYPES)} (quantised by llama.cpp from a 16-bit conversion); case-insensitive"
        ),
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="Threads for quantising (K-quants and the other non-converter types); all cores when not set",
    )
    json_output: bool = Field(
        False, description="Print the export report as one JSON line instead of the table"
    )
    quiet: bool = Field(False, description="No progress bars")

    @field_validator("quant")
    @classmethod
    def _known(cls, value: str) -> str:
        return one_of(value.upper(), QUANTS)


def export_gguf(
    model_dir: Path, out: Path, opts: ExportOptions, show_progress: bool = True
) -> dict[str, Any]:
    """Convert MODEL_DIR to OUT (and quantise); return the report: file, type, size, architecture, the
    llama-cpp-python version whose converter wrote it, seconds."""
    started = time.perf_counter()
    model_dir, out = Path(model_dir), Path(out)
    architecture = _check_model_dir(model_dir)
    if out.suffix != ".gguf":
        raise MathforgeError(f"OUT must be a .gguf file, got {out}")
    folder = converter_dir()
    out.parent.mkdir(parents=True, exist_ok=True)
    progress = show_progress and not opts.quiet
    try:
        # Beside OUT, so the final rename stays on one file system (and the big intermediate file is where the
        # user chose to put the result, not in a small /tmp).
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as scratch:
            if opts.quant in CONVERTER_TYPES:
                written = _convert(
                    folder, model_dir, Path(scratch) / "converted.gguf", CONVERTER_TYPES[opts.quant], progress
                )
            else:
                converted = _convert(
                    folder, model_dir, Path(scratch) / "16-bit.gguf", BEFORE_QUANTIZE, progress
                )
                written = _quantize(
                    converted, Path(scratch) / "quantized.gguf", opts.quant, opts.threads, progress
                )
            os.replace(written, out)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM as the CLI raises it
        signal_number = getattr(stop, "signal_number", signal.SIGINT)
        word = "terminated" if signal_number == signal.SIGTERM else "interrupted"
        raise Interrupted(
            f"{word}: {out} was not written; run the same command again", signal_number
        ) from None
    return {
        "out": str(out),
        "quant": opts.quant,
        "bytes": out.stat().st_size,
        "architecture": architecture,
        "converter": f"llama.cpp {CONVERTER_SCRIPT} of llama-cpp-python {_engine_version()}",
        "seconds": round(time.perf_counter() - started, 2),
    }


def converter_dir() -> Path:
    """Where setup put llama.cpp's converter (MATHFORGE_LLAMA_CPP_DIR overrides), checked against the engine."""
    folder = Path(os.environ.get(CONVERTER_ENV) or Path(sys.prefix) / "share" / "mathforge" / "llama.cpp")
    if not (folder / CONVERTER_SCRIPT).is_file():
        raise MathforgeError(
            f"llama.cpp's converter is not in {folder}: run scripts/setup.sh (it takes {CONVERTER_SCRIPT} from "
            f"the llama-cpp-python source distribution), or set {CONVERTER_ENV}"
        )
    engine = _engine_version()
    version_file = folder / "VERSION"
    version = (
        version_file.read_text(encoding="utf-8").strip() if version_file.is_file() else "an unknown version"
    )
    # A converter newer or older than the engine can write keys or tensor layouts the engine reads differently.
    if version != engine:
        raise MathforgeError(
            f"llama.cpp's converter in {folder} is from llama-cpp-python {version} but the engine is {engine}: "
            "run scripts/setup.sh again"
        )
    return folder


def converter_environment(folder: Path) -> dict[str, str]:
    """The converter's environment: its own gguf-py first on the path (the pip `gguf` package may be another
    version, and the GGUF keys must be the engine's), and no network (nothing is downloaded at run time)."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    environment.pop("NO_LOCAL_GGUF", None)  # would make the script skip its own gguf-py
    inherited = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder / "gguf-py"), inherited]))
    return environment


def _engine_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        raise MathforgeError("export needs llama-cpp-python: pip install 'mathforge[llamacpp]'") from None


def _check_model_dir(model_dir: Path) -> str:
    """The architecture in MODEL_DIR's config.json, or one line saying what MODEL_DIR is instead."""
    if not (model_dir / "config.json").is_file():
        raise MathforgeError(_not_a_model(model_dir))
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("pytorch_model*.bin")):
        raise MathforgeError(f"{model_dir}: no weights (*.safetensors or pytorch_model*.bin)")
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return str((config.get("architectures") or [config.get("model_type", "unknown")])[0])


def _not_a_model(model_dir: Path) -> str:
    """What a MODEL_DIR without config.json is instead (an adapter, a training run), and what to export."""
    from mathforge.train.trainer import RunPaths

    if not model_dir.is_dir():
        return f"{model_dir}: not a directory; export takes a transformers model directory"
    run = RunPaths(model_dir)
    for adapter in (model_dir, run.adapter):
        if (adapter / "adapter_config.json").is_file():
            return (
                f"{adapter} is a LoRA adapter, not a model: merge it first (mathforge merge --adapter {adapter} "
                "--out DIR), then export DIR"
            )
    if (run.model / "config.json").is_file():
        return f"{model_dir} is a training run; its model is {run.model}: export that"
    return (
        f"{model_dir}: not a transformers model directory (no config.json); export takes `mathforge merge` "
        "output or a full fine-tune's model/"
    )


def _convert(folder: Path, model_dir: Path, out: Path, outtype: str, progress: bool) -> Path:
    command = [sys.executable, str(folder / CONVERTER_SCRIPT), str(model_dir)]
    command += ["--outfile", str(out), "--outtype", outtype]
    status, log = _run_converter(command, converter_environment(folder), progress)
    if status != 0 or not out.is_file():
        raise MathforgeError(f"cannot convert {model_dir} to GGUF: {_converter_error(log, status)}")
    return out


def _run_converter(command: list[str], environment: dict[str, str], progress: bool) -> tuple[int, str]:
    """Run the converter; return its exit status and its log. Its "Writing" percentage drives the bar."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    log: list[str] = []
    shown = 0
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment
    ) as process:
        assert process.stdout is not None
        stream = process.stdout.fileno()
        try:
            with ItemProgress("convert", total=100, enabled=progress, unit="%") as bar:
                for chunk in iter(lambda: os.read(stream, 1 << 16), b""):
                    log.append(decoder.decode(chunk))
                    percents = _WRITING.findall(log[-1])
                    if percents and int(percents[-1]) > shown:
                        bar.advance(int(percents[-1]) - shown)
                        shown = int(percents[-1])
            return process.wait(), "".join(log)
        finally:
            if process.poll() is None:  # interrupted: it must not go on writing into the scratch folder
                process.kill()


def _converter_error(log: str, status: int) -> str:
    """What went wrong, from the converter's log, in one line."""
    unsupported = re.search(r"Model (\S+) is not supported", log)
    if unsupported:
        return f"llama.cpp's converter does not know the architecture {unsupported.group(1)}"
    if "BPE pre-tokenizer was not recognized" in log:
        return (
            "llama.cpp's converter does not recognise the tokenizer (its BPE pre-tokenizer is none of those "
            "llama.cpp lists); a model fine-tuned from a released base keeps the base's tokenizer files"
        )
    lines = [line.strip() for line in re.split(r"[\r\n]+", log) if line.strip()]
    errors = [
        line for line in lines if line.startswith("ERROR:") or re.match(r"^\w*(Error|Exception)\b", line)
    ]
    if errors:
        return errors[-1][:300]
    if status < 0:
        return f"the converter was killed by signal {-status} (out of memory?)"
    return f"the converter exited with status {status}" + (f": {lines[-1][:300]}" if lines else "")


def _quantize(source: Path, out: Path, quant: str, threads: int | None, progress: bool) -> Path:
    """llama.cpp's quantize API, as llama-quantize calls it (default parameters, no importance matrix)."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant}")
    params.nthread = threads or _cpu_count()
    errors: list[str] = []
    total = _gguf_tensor_count(source)
    with (
        ItemProgress("quantize", total=total, enabled=progress, unit="tensor") as bar,
        _llama_log(_quantize_log(bar, errors)),
    ):
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    if status != 0 or not out.is_file():
        reason = " ".join("".join(errors).split())[:300] or f"status {status}"
        raise MathforgeError(f"llama.cpp could not quantise to {quant}: {reason}")
    return out


def _quantize_log(bar: ItemProgress, errors: list[str]) -> Callable[[int, bytes, Any], None]:
    """A llama.cpp log callback for quantising: a tensor line advances the bar, errors are kept for the message,
    the rest (one informational line per tensor) is dropped."""
    in_error = False

    def on_log(level: int, text: bytes, user_data: Any) -> None:
        nonlocal in_error
        line = text.decode("utf-8", "replace")
        in_error = level == _GGML_LOG_ERROR or (level == _GGML_LOG_CONT and in_error)
        if in_error:
            errors.append(line)
        elif _QUANTIZED_TENSOR.match(line):
            bar.advance(1)

    return on_log


@contextmanager
def _llama_log(handler: Callable[[int, bytes, Any], None]) -> Iterator[None]:
    """Route llama.cpp's log to `handler`, then give it back to whoever had it (llama.cpp's log is global)."""
    import llama_cpp

    previous, previous_data = llama_cpp.llama_log_callback(), ctypes.c_void_p()
    llama_cpp.llama_log_get(ctypes.byref(previous), ctypes.byref(previous_data))
    callback = llama_cpp.llama_log_callback(
        handler
    )  # referenced until restored: llama.cpp holds a raw pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        yield
    finally:
        llama_cpp.llama_log_set(previous, previous_data)


def _gguf_tensor_count(path: Path) -> int:
    """The tensor count in a GGUF header (magic, uint32 version, uint64 tensor count)."""
    with path.open("rb") as file:
        header = file.read(16)
    return struct.unpack("<Q", header[8:16])[0] if header[:4] == b"GGUF" else 0


def _cpu_count() -> int:
    # The cores this process may use (a container's or taskset's share), not the machine's.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
