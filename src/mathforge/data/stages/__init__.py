"""The curation stages (`STAGES`): each is one class, declared with `@register` in the module of its kind.

Importing this package imports every stage module, so that the registry is complete wherever it is read.
The order of the imports is the order the stages are listed in (help texts, docs).
"""

from mathforge.data.stages import decontam, dedup, filters, perplexity, verify  # noqa: F401  (they register)
from mathforge.data.stages.base import (
    STAGES,
    Drop,
    Stage,
    StageContext,
    StageOptions,
    Verdict,
    register,
    text_of,
)

__all__ = ["STAGES", "Drop", "Stage", "StageContext", "StageOptions", "Verdict", "register", "text_of"]
