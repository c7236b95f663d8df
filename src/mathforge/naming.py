"""Names of models as tables and run directories show them.

One home for them: the runner names run directories by model, the judge names its cache by its model, and
`report` groups by the name in metrics.json; computing it in one place keeps the three consistent.
"""

from __future__ import annotations

import re
from pathlib import Path

# The embedded default model, shipped on PyPI: Gemma 3 270M (pretrained base), Q4_K_M GGUF.
DEFAULT_MODEL = "gemma3-270m"
PACKAGED_ALIASES = ("gemma3-270m", "gemma-3-270m")


def model_name(model: str | None) -> str:
    """The model's name in tables: the alias, a GGUF file's stem, a directory's name, or the hub id."""
    if model is None or model in PACKAGED_ALIASES:
        return DEFAULT_MODEL
    if model.endswith(".gguf"):
        return Path(model).stem
    if model.startswith((".", "/", "~")):
        return Path(model).expanduser().name
    return model


def slug(model: str | None) -> str:
    """`model_name` made safe as one path component (a hub id's slash becomes "__")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "__", model_name(model))
