"""Benchmarks as declarations: the registry, the loaders, and the built-in `arith` generator."""

from mathforge.benchmarks.loaders import load_items, read_jsonl
from mathforge.benchmarks.registry import AMBIGUOUS_NAMES, REGISTRY, get_spec
from mathforge.benchmarks.spec import BenchmarkSpec, FileSource, HubSource, Item, Split

__all__ = [
    "AMBIGUOUS_NAMES",
    "REGISTRY",
    "BenchmarkSpec",
    "FileSource",
    "HubSource",
    "Item",
    "Split",
    "get_spec",
    "load_items",
    "read_jsonl",
]
