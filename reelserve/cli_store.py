"""What the CLI commands that read a store share: options, opening it, failing clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from reelserve.errors import InvalidSetting, ReelserveError
from reelserve.jobs import JobStore
from reelserve.jobs.backends import open_store
from reelserve.settings import ENV_PREFIX, Settings, settings_from_env

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Where the store and outputs live (REELSERVE_DATA_DIR).  "
                       "\\[default: ./reelserve-data]", show_default=False)]
StoreUrl = Annotated[str | None, typer.Option(
    "--store", help="redis://HOST:PORT/DB to share jobs with other servers; SQLite if absent.",
    show_default=False)]

err_console = Console(stderr=True)


def settings_with(**overrides: object) -> Settings:
    """The environment's settings with the command line's on top; a bad value exits 1,
    naming the option where the value came from the command line."""
    try:
        return settings_from_env().with_overrides(**overrides)
    except InvalidSetting as error:
        field = error.variable.removeprefix(ENV_PREFIX).lower()
        if overrides.get(field) is not None:
            fail(f"--{field.replace('_', '-')}: {error.rule}")
        fail(error.message)
    except ReelserveError as error:
        fail(error.message)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def open_checked_store(settings: Settings) -> JobStore:
    """The configured store, checked to answer; a clear error instead of a traceback."""
    where = settings.store or str(settings.db_path)
    try:
        store = open_store(settings.store_section)
        store.queue_stats()
    except ReelserveError as error:
        fail(error.message)
    except Exception as error:  # whatever the backend raises, the user needs the same answer
        fail(f"the job store at {where} does not answer: {type(error).__name__}: {error}")
    return store


def existing_store(settings: Settings, other_ways: str = "") -> JobStore:
    """The store a server already made; refused, with a hint, where there is none.

    Opening a SQLite store creates it, so reading one from the wrong folder would
    silently make an empty one and report no jobs, workers or keys.
    """
    if not settings.store and not settings.db_path.is_file():
        also = f", {other_ways}" if other_ways else ""
        fail(f"no reelserve store at {settings.db_path}: pass --data-dir DIR "
             f"(or set REELSERVE_DATA_DIR) to the server's data dir{also}")
    return open_checked_store(settings)
