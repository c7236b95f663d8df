"""mathforge: build and measure math-specialized language models.

The Python API mirrors the CLI: ``mathforge.evaluate`` runs an evaluation, ``mathforge.report`` builds tables.
Heavy libraries (torch, transformers, llama_cpp, sympy) are imported lazily inside the functions that need them,
so ``import mathforge`` and ``mathforge --help`` stay fast.
"""

from mathforge.errors import MathforgeError

__version__ = "0.1.0"

__all__ = ["MathforgeError", "__version__", "evaluate", "EvalConfig", "build_report"]


def __getattr__(name: str):
    # Lazy re-exports keep `import mathforge` light.
    if name in ("evaluate", "EvalConfig"):
        from mathforge import eval as _eval

        return getattr(_eval, name)
    if name == "build_report":
        from mathforge.report import build_report

        return build_report
    raise AttributeError(name)
