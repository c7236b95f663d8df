"""Engine options in a command's options: each engine declares its own model (`Engine.options`) beside its
code; a command that runs an engine (eval, score) takes the union of their keys, checks the given ones against
the chosen engine, and keeps that engine's full options in `engine_options`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from pydantic import Field, ValidationError, model_validator

from mathforge.config import OptionError, Options


class UsesEngine(Options):
    """Options of a command that loads an engine: `model`, `backend`, and the engine's own options."""

    internal: ClassVar[tuple[str, ...]] = ("engine_options",)
    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = {"backend": lambda: _backends()}

    model: str | None = Field(
        None, description="GGUF file, HF hub id or local directory [default: the packaged Gemma 3 270M]"
    )
    backend: str | None = Field(
        None, description="llamacpp, hf, vllm or openai [default: llamacpp for .gguf files, else hf]"
    )
    # The chosen engine's options, all of them (defaults filled in): filled from the engine keys given.
    engine_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _engine_keys(cls, data: Any) -> Any:
        """Take the engine's options out of the keys, check them against the chosen engine, fill its defaults."""
        if not isinstance(data, dict):
            return data
        from mathforge.backends import BACKENDS, engine_for, engine_options

        models = engine_options()
        keys = {name for model in models.values() for name in model.model_fields}
        # Given keys win over a saved run's engine_options (a flag overrides the repeated run).
        given = {key: data[key] for key in list(data) if key in keys}
        data = {key: value for key, value in data.items() if key not in keys}
        given = {**(data.pop("engine_options", None) or {}), **given}
        backend, judge_backend = data.get("backend"), data.get("judge_backend")
        if backend not in (None, *BACKENDS) or judge_backend not in (None, *BACKENDS):
            return {**data, "engine_options": {}}  # the field's own check says what is wrong
        engine = engine_for(data.get("model"), backend)
        judge = engine_for(data["judge"], judge_backend) if data.get("judge") else None
        takes = set(models[engine].model_fields) | (set(models[judge].model_fields) if judge else set())
        for key in given:
            if key not in takes:
                model = models[engine]
                flags = ", ".join(f"--{model.option_name(name)}" for name in model.model_fields)
                option = _engine_flag(models, key)
                raise OptionError(key, f"--{option} is not an option of the {engine} engine (its options: {flags})")
        own = {key: value for key, value in given.items() if key in models[engine].model_fields}
        judged = {key: value for key, value in given.items() if judge and key in models[judge].model_fields}
        resolved = {**data, "engine_options": _engine_model(models, engine, own).model_dump(mode="python")}
        if "judge_engine_options" in cls.model_fields:
            for_judge = _engine_model(models, judge, judged).model_dump(mode="python") if judge else {}
            # Only what was given: the judge's engine takes its own defaults for the rest.
            resolved["judge_engine_options"] = {key: for_judge[key] for key in judged}
        return resolved



def _backends() -> Iterable[str]:
    from mathforge.backends import BACKENDS

    return BACKENDS


def engine_flags() -> dict[str, str]:
    """Every engine option's field name -> its flag name (the keys `eval` takes besides its own fields)."""
    from mathforge.backends import engine_options

    return {
        name: model.option_name(name) for model in engine_options().values() for name in model.model_fields
    }


def _engine_model(models: dict[str, type[Options]], engine: str, given: dict[str, Any]) -> Options:
    """The engine's options model over the given keys; a bad value is an error naming the flag."""
    try:
        return models[engine](**given)
    except ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        message = first["msg"].removeprefix("Value error, ")
        raise OptionError(key, f"invalid option --{_engine_flag(models, key)}: {message}") from None


def keep_own_engine_keys(values: dict[str, Any]) -> None:
    """Drop the other engines' options from an old run's flat config (before engine_options existed)."""
    from mathforge.backends import BACKENDS, engine_for, engine_options

    backend = values.get("backend")
    if backend is not None and backend not in BACKENDS:
        return
    models = engine_options()
    own = set(models[engine_for(values.get("model"), backend)].model_fields)
    for key in {name for model in models.values() for name in model.model_fields} - own:
        values.pop(key, None)


def _engine_flag(models: dict[str, type[Options]], key: str) -> str:
    for model in models.values():
        if key in model.model_fields:
            return model.option_name(key)
    return key.replace("_", "-")
