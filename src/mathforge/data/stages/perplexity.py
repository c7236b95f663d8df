"""The `perplexity` stage: drop rows a reference model finds too surprising (garbled, off-distribution) or too
predictable (boilerplate, memorised text), scored by the code behind `mathforge score`."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import Field, model_validator

from mathforge.backends import Backend, load_backend, resolve_model
from mathforge.backends.options import UsesEngine
from mathforge.data.stages.base import Drop, Stage, StageOptions, Verdict, register, text_of
from mathforge.scoring import score_rows


class PerplexityOptions(UsesEngine, StageOptions):
    """The reference model (`model`, `backend` and engine options, as `mathforge score` takes them) and the
    bounds."""

    fields: list[str] = Field(
        ["question", "solution"], description="Fields scored, joined by a blank line, as one text"
    )
    max: float | None = Field(None, gt=1, description="Drop rows whose perplexity is above this")
    min: float | None = Field(None, ge=1, description="Drop rows whose perplexity is below this")
    batch_size: int | None = Field(None, ge=1, description="Texts per engine call [default: the engine's]")

    @model_validator(mode="after")
    def _some_bound(self) -> PerplexityOptions:
        if self.max is None and self.min is None:
            raise ValueError("set max, min or both: a perplexity stage without bounds drops nothing")
        if self.max is not None and self.min is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


@register
class Perplexity(Stage):
    name: ClassVar[str] = "perplexity"
    options = PerplexityOptions
    parallel: ClassVar[bool] = False  # one model, loaded once, batched: not once per worker process
    opts: PerplexityOptions

    def setup(self) -> None:
        engine, reference = resolve_model(self.opts.model, self.opts.backend)
        self.engine: Backend = load_backend(engine, reference, **self.opts.engine_options)
        default = int(getattr(self.engine, "score_batch_size", 8))
        self.batch_size = self.opts.batch_size or default

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        texts = [
            (line, {"text": "\n\n".join(text_of(row, key) for key in self.opts.fields)})
            for line, row in zip(lines, rows, strict=True)
        ]
        verdicts: list[Verdict] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            scores = score_rows(self.engine, batch, "text", self.context.source)
            verdicts.extend(self._verdict(score.perplexity) for score in scores)
        return verdicts

    def _verdict(self, perplexity: float) -> Verdict:
        info = {"perplexity": None if math.isnan(perplexity) else round(perplexity, 4)}
        if math.isnan(perplexity):
            return Drop("not_scored", "no token was scored (empty text)", info)
        if self.opts.max is not None and perplexity > self.opts.max:
            return Drop("perplexity_above_max", f"perplexity {perplexity:.2f} > {self.opts.max}", info)
        if self.opts.min is not None and perplexity < self.opts.min:
            return Drop("perplexity_below_min", f"perplexity {perplexity:.2f} < {self.opts.min}", info)
        return None

    def close(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()
