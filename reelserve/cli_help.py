"""Help pages that read like a manual: ``PROMPT`` not ``{prompt}``, ``TEXT`` not ``<str>``.

typer marks required arguments with braces in the usage line and shows every
option's Python type, flags included (``--no-audio <bool>``). These classes give
the usual Unix look instead: flags with no value, values named by kind, choices
listed. Every command of the ``reelserve`` app is built with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import DefaultPlaceholder

Command = TypeVar("Command", bound=Callable[..., Any])
VALUE_NAMES = {"str": "TEXT", "text": "TEXT", "int": "INTEGER", "integer": "INTEGER",
               "float": "NUMBER", "path": "PATH", "Path": "PATH", "bool": "BOOLEAN"}


def _value_name(param: Any) -> str:
    """TEXT, INTEGER, NUMBER, PATH, or the choices; from typer's type or click's."""
    described = getattr(param, "type_descriptor", None)  # typer >= 0.2x carries its own click
    if described is not None:
        if described.is_choice:
            return "[" + "|".join(str(getattr(choice, "value", choice))
                                  for choice in described.choices or ()) + "]"
        if described.is_path:
            return "PATH"
        kind = param.bare_type().removeprefix("list[").removesuffix("]")
    else:
        choices = getattr(param.type, "choices", None)
        if choices:
            return "[" + "|".join(map(str, choices)) + "]"
        kind = param.type.name.split()[0]  # "integer range": an INTEGER, its range shown apart
    return VALUE_NAMES.get(str(kind), str(kind).upper())


def _no_type(ctx: Any) -> None:
    return None


def make_readable(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else _value_name(param)
        elif isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            # The name already says what it is; typer would add "<str>" beside it.
            setattr(param, "display_type_rich", _no_type)  # noqa: B010 - a method, per instance
    return params


class ReadableCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return make_readable(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            pieces.extend(piece.replace("{", "").replace("}", "")
                          for piece in param.get_usage_pieces(ctx))
        return pieces


class ReadableGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return make_readable(super().get_params(ctx))


class ReadableTyper(typer.Typer):
    """A ``typer.Typer`` whose groups and commands print readable help."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", ReadableGroup)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Command], Command]:
        kwargs["cls"] = kwargs.get("cls") or ReadableCommand
        return super().command(*args, **kwargs)


def make_app_readable(app: typer.Typer) -> typer.Typer:
    """Give an existing ``typer.Typer`` (one another module built) the readable classes."""
    if app.info.cls in (None, TyperGroup) or isinstance(app.info.cls, DefaultPlaceholder):
        app.info.cls = ReadableGroup
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand) or isinstance(command.cls, DefaultPlaceholder):
            command.cls = ReadableCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            make_app_readable(group.typer_instance)
    return app
