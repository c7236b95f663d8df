"""One configuration system for every command: typed options, read from YAML, overridden by flags.

A command declares its options once, as a pydantic model derived from `Options` (a field's `description` is
its `--help` text). From that one declaration:

- `cli_parameters` makes the command's typer options (`--max-new-tokens` for `max_new_tokens`; a field can
  take another flag name through `Options.cli_names`, e.g. `benchmarks` is `--bench`);
- `read_config_file` reads a YAML (or JSON) file keyed by the options' own names (`bench: gsm8k`,
  `max_new_tokens: 512`; dashes and underscores both accepted), remembering each key's line;
- `resolve` merges the file with the flags given on the command line (flags win), validates, and turns any
  problem into one line naming `FILE:line` and the key, or the flag.

The data and train commands use the same three pieces, so that every command reads configs and reports
mistakes the same way (see docs/architecture.md).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo

from mathforge.errors import MathforgeError, close_match, did_you_mean, read_text

T = TypeVar("T")


def one_of(value: T, choices: Iterable[Any]) -> T:
    """`value` if it is among `choices` (None passes: "not set"); else the one wording every option uses."""
    choices = list(choices)
    if value is not None and value not in choices:
        hint = did_you_mean(value, choices)  # a typo ("lamacpp") gets the name it misspells
        raise ValueError(f"must be one of {', '.join(map(str, choices))}; got '{value}'{hint}")
    return value


M = TypeVar("M", bound="Options")


class Options(BaseModel):
    """Base of every command's options model: unknown keys are errors; a comma string fills a list field."""

    model_config = ConfigDict(extra="forbid")
    # Fields whose flag has another name (so that errors and config keys say what the user types).
    cli_names: ClassVar[dict[str, str]] = {}
    # Fields whose value must be one of a list, and where the list comes from (a registry, read when checked).
    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = {}
    # Fields that are not flags (filled by the command, or read back from a run's saved config).
    internal: ClassVar[tuple[str, ...]] = ()
    # Whether --config may name a finished run's results (its metrics.json) to repeat that run.
    repeats_runs: ClassVar[bool] = False

    @classmethod
    def load(cls, path: str | Path | None, flags: Mapping[str, Any] | None = None) -> Self:
        """The options of the config file at `path` (None: none), overridden by `flags` (field or flag names)."""
        file = None
        if path is not None:
            file = read_config_file(path, section="config" if cls.repeats_runs else None)
            if file.saved:
                cls.prepare_saved(file.values)
        return resolve(cls, file, flags or {})

    @classmethod
    def build(cls, **values: Any) -> Self:
        """Validate keyword options (field or flag names), with the one-line errors the CLI prints."""
        return cls.load(None, values)

    @classmethod
    def prepare_saved(cls, values: dict[str, Any]) -> None:
        """Adjust a finished run's saved options before they are read back (see `repeats_runs`)."""

    @classmethod
    def extra_keys(cls) -> dict[str, str]:
        """Keys taken besides the fields (field name -> flag name), which a model validator takes apart."""
        return {}

    @classmethod
    def extra_parameters(cls) -> list[inspect.Parameter]:
        """The flags of `extra_keys`."""
        return []

    @field_validator("*", mode="before")
    @classmethod
    def _comma_lists(cls, value: Any, info: Any) -> Any:
        """`bench: gsm8k,math` and `--k 1,4` as lists; repeatable options keep their strings whole."""
        field = cls.model_fields[info.field_name]
        if not _is_list(field.annotation) or value is None or isinstance(value, list | tuple):
            return value
        if not isinstance(value, str):  # `k: 4` in a file
            return [value]
        if _repeatable(field):  # `stop: END` in a file is one stop string, commas and all
            return [value]
        return [part.strip() for part in value.split(",") if part.strip()]

    @field_validator("*")
    @classmethod
    def _among_choices(cls, value: Any, info: ValidationInfo) -> Any:
        known = cls.choices.get(info.field_name or "")
        return one_of(value, known()) if known is not None else value

    @classmethod
    def option_name(cls, field_name: str) -> str:
        """The field's flag, without dashes: `bench` for `benchmarks`."""
        return cls.cli_names.get(field_name, field_name).replace("_", "-")

    @classmethod
    def field_for_key(cls, key: str) -> str | None:
        """The field (or extra key) a config key or flag name means (`bench`, `max-new-tokens`, `n_threads`)."""
        normal = key.replace("-", "_")
        names = {name: cls.option_name(name) for name in cls.model_fields} | cls.extra_keys()
        for name, flag in names.items():
            if normal in (name, flag.replace("-", "_")):
                return name
        return None


@dataclass
class ConfigFile:
    """A config file's top-level values, with the line of each key (for `FILE:line` errors)."""

    path: Path
    values: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)
    saved: bool = False  # the resolved options a finished run recorded (not a file a person wrote)

    def where(self, key: str) -> str:
        return f"{self.path}:{self.lines[key]}" if key in self.lines else str(self.path)


def read_config_file(path: str | Path, section: str | None = None) -> ConfigFile:
    """The mapping in a YAML or JSON file; with `section`, the mapping under that key when the file is a run's
    results (it has a "fingerprint": a metrics.json keeps its resolved options under "config")."""
    import yaml

    path = Path(path)
    text = read_text(path, "--config")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise MathforgeError(f"{path}{line}: not valid YAML ({reason})") from None
    if data is None:
        return ConfigFile(path, {})
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise MathforgeError(
            f"{path}: expected a mapping of option names to values, got {type(data).__name__}"
        )
    saved = section is not None and isinstance(data.get(section), dict) and "fingerprint" in data
    if saved:
        node = next(v for k, v in node.value if k.value == section)
        data = data[section]
    lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value}
    return ConfigFile(path, {str(k): v for k, v in data.items()}, lines, saved=saved)


def resolve(model: type[M], file: ConfigFile | None, flags: Mapping[str, Any]) -> M:
    """The options of `file` overridden by `flags` (field or flag name -> value, only those given)."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}  # field -> the file key it came from
    for key, value in (file.values if file else {}).items():
        assert file is not None
        name = model.field_for_key(key)
        if name is None or (name in model.internal and not file.saved):  # a saved run's are read back
            known = sorted({model.option_name(n) for n in model.model_fields if n not in model.internal})
            hint = close_match(key.replace("_", "-"), [*known, *model.extra_keys().values()])
            suggestion = f"; did you mean '{hint}'?" if hint else ""
            raise MathforgeError(f"{file.where(key)}: unknown key '{key}'{suggestion}")
        values[name] = value
        origin[name] = key
    for key, value in flags.items():
        name = model.field_for_key(key)
        if name is None:
            raise MathforgeError(f"unknown option '{key}'")
        values[name] = value
        origin.pop(name, None)
    try:
        return model(**values)
    except ValidationError as error:
        raise _locate(_one_line(model, error), file, origin) from None
    except OptionError as error:  # a validator that names a key itself
        raise _locate(error, file, origin) from None


def _one_line(model: type[Options], error: ValidationError) -> MathforgeError:
    first = error.errors()[0]
    name = next((str(part) for part in first["loc"] if isinstance(part, str)), None)
    message = first["msg"].removeprefix("Value error, ")
    if name is None:  # a rule across options: its message names them
        return MathforgeError(f"invalid options: {message}")
    flag = model.option_name(name)
    if first["type"] == "missing":  # as click says it for a required flag
        return MathforgeError(f"Missing option '--{flag}'")
    return OptionError(name, f"invalid option --{flag}: {message}", flag)


def _locate(error: MathforgeError, file: ConfigFile | None, origin: Mapping[str, str]) -> MathforgeError:
    """An error about an option that came from the config file names `FILE:line` and the key instead."""
    key = getattr(error, "key", None)
    if file is None or not isinstance(key, str) or key not in origin:
        return error
    message = str(error.args[0]).removeprefix(f"invalid option --{getattr(error, 'flag', '')}: ")
    return MathforgeError(f"{file.where(origin[key])}: key '{origin[key]}': {message}")


class OptionError(MathforgeError):
    """An error about one option (`key`: its field name), raised by a model validator."""

    def __init__(self, key: str, message: str, flag: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.flag = flag


# --- the command line -----------------------------------------------------------------------------------


def cli_parameters(model: type[Options], skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One typer option per field of `model` (help from the field's description, default from its default)."""
    import typer

    parameters = []
    for name, info in model.model_fields.items():
        if name in model.internal or name in skip:
            continue
        flag = "--" + model.option_name(name)
        annotation = _cli_type(info)
        decls = [flag] if not _is_bool(info.annotation) else [f"{flag}/--no-{flag[2:]}"]
        option = typer.Option(*decls, help=info.description or "", show_default=_shows_default(info))
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[annotation, option],
                default=_cli_default(info),
            )
        )
    return parameters


def explicit_flags(context: Any, names: list[str]) -> dict[str, Any]:
    """The parameters among `names` that the user set on the command line (not left at their defaults)."""
    found = {}
    for name in names:
        source = context.get_parameter_source(name)
        # By name: recent typers vendor their own click, with their own ParameterSource enum.
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            found[name] = context.params[name]
    return found


def _cli_type(info: FieldInfo) -> Any:
    annotation: Any = info.annotation
    if info.is_required():
        annotation = annotation | None  # the value may come from --config instead
    if _repeatable(info):
        return list[str] | None
    if _is_list(annotation):
        return str | None  # comma-separated; `Options` splits it
    inner = _without_none(annotation)
    if get_origin(inner) is typing.Literal:
        return str if info.default is not None else str | None
    return annotation


def _cli_default(info: FieldInfo) -> Any:
    if info.is_required():
        return None  # may come from --config: `resolve` says it is missing once both are merged
    if info.default_factory is not None or _is_list(info.annotation):
        return None
    return info.default


def _shows_default(info: FieldInfo) -> bool:
    return (
        not info.is_required()
        and info.default is not None
        and not _is_list(info.annotation)
        and info.default_factory is None
    )


def _repeatable(info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("repeatable"))


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _is_list(annotation: Any) -> bool:
    return get_origin(_without_none(annotation)) is list


def _is_bool(annotation: Any) -> bool:
    return _without_none(annotation) is bool
