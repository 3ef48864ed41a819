"""`reelserve ... --help` reads like a manual: named values, bare flags, defaults, engines."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import typer

from reelserve.cli import app

from cli_binary import reelserve


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        found += _paths(sub, (*prefix, name))
    return found


PATHS = _paths(typer.main.get_command(app))


def _help(*path: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSERVE_")}
    env["COLUMNS"] = "160"  # one line per option, so phrases are not cut by wrapping
    shown = reelserve(*path, "--help", env=env)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(path) or "reelserve" for path in PATHS])
def test_help_names_values_plainly(path: tuple[str, ...]) -> None:
    text = _help(*path)
    assert not re.search(r"<(bool|str|int|float|path)[^>]*>", text), text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage


def test_flags_take_no_value_and_arguments_are_upper_case() -> None:
    text = _help("generate")
    assert re.search(r"Usage: reelserve generate \[OPTIONS\] PROMPT", text), text
    assert re.search(r"--no-audio\s+No audio track", text)
    assert re.search(r"--aspect\s+\[16:9\|9:16\|1:1\]", text)
    assert re.search(r"--shot-type\s+\[customize\|intelligent\]", text)
    assert "[default: blur, distort, and low quality]" in text


def test_serve_help_shows_defaults_and_lists_the_engines() -> None:
    text = _help("serve")
    for default in ("[default: 127.0.0.1]", "[default: 8000]", "[default: preview]",
                    "[default: 3600]"):
        assert default in text
    assert "preview" in text and "ltx2" in text and "package.module:factory" in text
    assert "--gpus" in text


def test_the_cli_does_not_import_prometheus_client_before_serve_chooses_its_mode() -> None:
    # prometheus_client picks single- or multi-process mode when first imported; serve
    # and worker set the metrics folder first, so the CLI's modules must not import it.
    import subprocess
    import sys

    probe = subprocess.run(
        [sys.executable, "-c", "import sys, reelserve.cli; "
         "sys.exit('prometheus_client' in sys.modules)"], capture_output=True, timeout=60)
    assert probe.returncode == 0, "importing reelserve.cli imports prometheus_client"
