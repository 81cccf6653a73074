"""Settings dataclasses on the command line and in files, merged in one documented order.

:func:`add_config_arguments` adds one ``--kebab-case`` option per dataclass field, its help
taken from the field's ``metadata["help"]`` (:func:`textrl.dqn.config.option`). Every option has
``default=argparse.SUPPRESS``, so "given on the command line" is exactly "present in the parsed
namespace". :func:`resolve_config` then merges, later wins::

    dataclass defaults < preset (e.g. CartPole-v1) < the resumed run's config.json
                       < --config FILE (JSON or TOML) < flags given explicitly

A small layer of our own rather than a library (tyro, simple-parsing, jsonargparse): it is
under 200 lines, needs no source parsing, keeps ``textrl`` to argparse sub-commands and stdlib
imports (``--help`` must not import torch), and the merge above, with "was this flag given",
is the part those libraries leave to their users anyway.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from textrl.dqn.config import unwrap_optional

C = TypeVar("C")

__all__ = [
    "add_config_arguments",
    "check_values",
    "field_names",
    "load_config_file",
    "resolve_config",
]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _bounded_int(text, 0)


def _bounded_int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def field_names(cls: type) -> set[str]:
    """The init fields of dataclass ``cls``."""
    return {f.name for f in dataclasses.fields(cls) if f.init}


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    only: Iterable[str] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> None:
    """Add one option per field of ``cls`` (those in ``only``, if given) to ``parser``.

    bool fields become ``--flag/--no-flag``; ``Literal`` fields get ``choices``; ``X | None``
    accepts ``none``. ``defaults`` overrides the "(default: ...)" text of a field's help.
    """
    wanted = None if only is None else set(only)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or (wanted is not None and f.name not in wanted):
            continue
        shown = (defaults or {}).get(
            f.name, repr(f.default) if isinstance(f.default, str) else str(f.default)
        )
        help_text = f"{f.metadata.get('help', '')} (default: {shown})".strip().replace("%", "%%")
        tp, optional = unwrap_optional(hints[f.name])
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        flag = "--" + f.name.replace("_", "-")
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if typing.get_origin(tp) is Literal:
            choices = typing.get_args(tp)
            kwargs["choices"] = list(choices) + ([None] if optional else [])
            tp = type(choices[0])
        elif tp not in (int, float, str):
            raise TypeError(f"{cls.__name__}.{f.name}: unsupported field type {tp!r}")
        kwargs["type"] = _parse_optional(tp) if optional else tp
        kwargs["metavar"] = f.name.upper() if "choices" not in kwargs else None
        parser.add_argument(flag, **kwargs)


def _parse_optional(inner: Any) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null") else inner(text)

    parse.__name__ = getattr(inner, "__name__", "value")  # argparse names it in errors
    return parse


def load_config_file(path: str | Path, cls: type) -> dict[str, Any]:
    """Field values for dataclass ``cls`` from a JSON (``.json``) or TOML (``.toml``) file.

    A TOML file may put the values at the top level or in a ``[train]`` table. Unknown keys
    raise ``ValueError`` naming the key and listing the valid ones; values are type-checked.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config: file {str(path)!r} not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"config: {str(path)!r} is not valid UTF-8 (byte offset {exc.start}); re-encode it"
        ) from None
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ModuleNotFoundError as exc:
                raise ValueError(
                    f"config: reading {path.name} needs Python >= 3.11 or the "
                    "'tomli' package; or use a .json file"
                ) from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config: {str(path)!r} is not valid TOML: {exc}") from None
        if set(data) == {"train"} and isinstance(data["train"], dict):
            data = data["train"]
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config: {str(path)!r} is not valid JSON: {exc}") from None
    else:
        raise ValueError(f"config: expected a .json or .toml file, got {str(path)!r}")
    if not isinstance(data, dict):
        raise ValueError(
            f"config: {path.name} must hold a table of field values, got {type(data).__name__}"
        )
    return check_values(cls, data, origin=path.name)


def check_values(cls: type, values: Mapping[str, Any], origin: str = "config") -> dict[str, Any]:
    """Check that ``values`` names fields of ``cls`` with values of the right types."""
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls) if f.init]
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{origin}: unknown key {key!r} for {cls.__name__}.{hint} "
                f"Valid keys: {', '.join(valid)}"
            )
        out[name] = _coerce(cls, name, hints[name], value, origin)
    return out


def _coerce(cls: type, name: str, tp: Any, value: Any, origin: str) -> Any:
    tp, optional = unwrap_optional(tp)
    if value is None and optional:
        return None
    if typing.get_origin(tp) is Literal:
        if value in typing.get_args(tp):
            return value
        expected = f"one of {list(typing.get_args(tp))}"
    elif tp is bool:
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 5e4 in a file
            return int(value)
        expected = "an integer"
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        expected = "a number"
    elif tp is str:
        if isinstance(value, str):
            return value
        expected = "a string"
    else:
        return value
    if optional:
        expected += " or null"
    raise ValueError(f"{origin}: {cls.__name__}.{name}: expected {expected}, got {value!r}")


def resolve_config(
    cls: type[C],
    args: argparse.Namespace,
    preset: Mapping[str, Any] | None = None,
    saved: Mapping[str, Any] | None = None,
    config_path: str | Path | None = None,
) -> C:
    """Build ``cls`` from defaults < ``preset`` < ``saved`` < config file < flags in ``args``.

    ``saved``: the resumed run's ``config.json`` values (keys of other classes, such as
    ``kind`` and ``env_id``, are ignored). The config file is ``config_path`` or else
    ``args.config``. Flags are the options :func:`add_config_arguments` added that were given.
    """
    values: dict[str, Any] = {}
    if preset:
        values.update(check_values(cls, preset, origin="preset"))
    if saved:
        names = field_names(cls)
        values.update(
            check_values(cls, {k: v for k, v in saved.items() if k in names}, origin="config.json")
        )
    path = config_path if config_path is not None else getattr(args, "config", None)
    if path:
        values.update(load_config_file(path, cls))
    for name in field_names(cls):
        if hasattr(args, name):
            values[name] = getattr(args, name)
    return cls(**values)
