"""Engine options in a command's options: each engine declares its own model (`Engine.options`) beside its
code; a command that runs an engine (eval, score) takes the union of their keys, checks the given ones against
the chosen engine, and keeps that engine's full options in `engine_options`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from pydantic import Field, model_validator

from mathforge.backends import BACKENDS
from mathforge.config import OptionError, Options, cli_parameters, resolve


class UsesEngine(Options):
    """Options of a command that loads an engine: `model`, `backend`, and the engine's own options."""

    internal: ClassVar[tuple[str, ...]] = ("engine_options",)
    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = {"backend": lambda: BACKENDS}

    model: str | None = Field(
        None, description="GGUF file, HF hub id or local directory [default: the packaged Gemma 3 270M]"
    )
    backend: str | None = Field(
        None, description=f"{', '.join(BACKENDS)} [default: llamacpp for .gguf files, else hf]"
    )
    # The chosen engine's options, all of them (defaults filled in): filled from the engine keys given.
    engine_options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def extra_keys(cls) -> dict[str, str]:
        return engine_flags()

    @classmethod
    def extra_parameters(cls) -> list[inspect.Parameter]:
        """Every engine's options as flags (an option several engines take, such as --n-ctx, once)."""
        from mathforge.backends import engine_options

        found: dict[str, inspect.Parameter] = {}
        for model in engine_options().values():
            for parameter in cli_parameters(model):
                found.setdefault(parameter.name, parameter)
        return list(found.values())

    @model_validator(mode="before")
    @classmethod
    def _engine_keys(cls, data: Any) -> Any:
        """Take the engine's options out of the keys, check them against the chosen engine, fill its defaults."""
        if not isinstance(data, dict):
            return data
        from mathforge.backends import engine_for, engine_options

        models = engine_options()
        keys = {name for model in models.values() for name in model.model_fields}
        given = {key: data[key] for key in list(data) if key in keys}  # flags and a person's config file
        data = {key: value for key, value in data.items() if key not in keys}
        saved = data.pop("engine_options", None) or {}  # a repeated run's: kept where the engine takes them
        saved_judge = data.pop("judge_engine_options", None) or {}
        backend, judge_backend = data.get("backend"), data.get("judge_backend")
        if backend not in (None, *BACKENDS) or judge_backend not in (None, *BACKENDS):
            return {**data, "engine_options": {}}  # the field's own check says what is wrong
        engine = engine_for(data.get("model"), backend)
        judge = engine_for(data["judge"], judge_backend) if data.get("judge") else None
        own_fields = set(models[engine].model_fields)
        # The judge's own options: those its engine takes and the model's does not (the shared ones, but the
        # revision, reach it from the model's options; see eval.runner._load_judge).
        judge_fields = set(models[judge].model_fields) - own_fields if judge else set()
        for key in given:
            if key not in own_fields | judge_fields:
                raise OptionError(key, _not_an_option(models, key, engine, judge))
        own = {**_only(saved, own_fields), **_only(given, own_fields)}
        resolved = {**data, "engine_options": _engine_model(models, engine, own).model_dump(mode="python")}
        if "judge_engine_options" in cls.model_fields:
            judged = {**_only(saved_judge, judge_fields), **_only(given, judge_fields)}
            for_judge = _engine_model(models, judge, judged).model_dump(mode="python") if judge else {}
            # Only what was given: the judge's engine takes its own defaults for the rest.
            resolved["judge_engine_options"] = {key: for_judge[key] for key in judged}
        return resolved



def engine_flags() -> dict[str, str]:
    """Every engine option's field name -> its flag name (the keys `eval` takes besides its own fields)."""
    from mathforge.backends import engine_options

    return {
        name: model.option_name(name) for model in engine_options().values() for name in model.model_fields
    }


def _engine_model(models: dict[str, type[Options]], engine: str, given: dict[str, Any]) -> Options:
    """The engine's options model over the given keys; a bad value is an error naming the flag."""
    return resolve(models[engine], None, given)


def nest_saved_engine_keys(values: dict[str, Any]) -> None:
    """An old run's flat config (every engine's options at the top level, before engine_options existed): its
    engine keys move under engine_options, where they count as saved, not as given."""
    from mathforge.backends import engine_options

    keys = {name for model in engine_options().values() for name in model.model_fields}
    values["engine_options"] = {key: values.pop(key) for key in list(values) if key in keys}


def _only(values: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key in fields}


def _not_an_option(models: dict[str, type[Options]], key: str, engine: str, judge: str | None) -> str:
    def flags(name: str) -> str:
        return ", ".join(f"--{models[name].option_name(field)}" for field in models[name].model_fields)

    option = f"--{engine_flags().get(key, key)}"
    if judge in (None, engine):
        return f"{option} is not an option of the {engine} engine (its options: {flags(engine)})"
    return (
        f"{option} is not an option of the {engine} engine or of the judge's {judge} engine "
        f"({engine}: {flags(engine)}; {judge}: {flags(judge)})"
    )
