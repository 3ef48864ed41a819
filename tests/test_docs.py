"""The README's commands parse, and every relative link in the docs resolves in the repository.

Each `reelserve ...` line in README.md's code blocks is parsed by the real command
(options, their types and choices, arguments) without running it, and `--help` of
every subcommand used runs on the real binary.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from reelserve.cli import app

from cli_binary import reelserve

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def readme_commands() -> list[list[str]]:
    """The argument lists of every `reelserve` command in README.md's code blocks."""
    found = []
    for block in CODE_BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # a Python or JSON line with an odd quote: not a shell line
                continue
            command: list[str] | None = None
            for word in [*words, "&&"]:
                if word in ("&&", "||", ";", "|"):
                    if command is not None:
                        found.append(command)
                    command = None
                elif command is not None:
                    command.append(word)
                elif word == "reelserve" or word.endswith("/reelserve"):
                    command = []
    return found


COMMANDS = readme_commands()


def _leaf(args: list[str]) -> tuple[list[str], Any, list[str]]:
    """The subcommand path, its click command and the arguments left for it."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = list(args)
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        path.append(rest[0])
        command = command.commands[rest.pop(0)]
    return path, command, rest


def test_the_readme_has_reelserve_commands() -> None:
    subcommands = {" ".join(_leaf(args)[0]) for args in COMMANDS}
    assert {"serve", "generate", "models pull", "models list"} <= subcommands, subcommands


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(args) for args in COMMANDS])
def test_each_readme_command_parses(args: list[str]) -> None:
    path, command, rest = _leaf(args)
    assert path, f"reelserve {' '.join(args)}: no such subcommand"
    assert not hasattr(command, "commands"), f"reelserve {' '.join(path)} needs a subcommand"
    # Parses options, values and arguments exactly as a run would, without running it.
    with command.make_context(f"reelserve {' '.join(path)}", rest) as context:
        assert context.params is not None


def test_help_of_each_subcommand_the_readme_uses() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSERVE_")}
    for path in sorted({tuple(_leaf(args)[0]) for args in COMMANDS}):
        shown = reelserve(*path, "--help", env=env)
        assert shown.returncode == 0, (path, shown.stderr)
        assert f"reelserve {' '.join(path)}" in shown.stdout


def _links() -> list[tuple[Path, str]]:
    found = []
    for doc in DOCS:
        text = CODE_BLOCK.sub("", doc.read_text(encoding="utf-8"))
        found += [(doc, target) for target in LINK.findall(text)]
    return found


def test_every_relative_link_resolves_inside_the_repository() -> None:
    links = _links()
    assert any(target == "docs/api-contract.md" for _, target in links)
    broken = []
    for doc, target in links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http(s), mailto: outside by design; anchors within the page
        resolved = (doc.parent / target.split("#")[0]).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert broken == []


@pytest.mark.parametrize("args", [["generate", "x", "--aspect", "4:3"], ["serve", "--wrokers", "2"],
                                  ["generate"], ["status", "--data-dir"]])
def test_the_parse_check_catches_a_stale_command(args: list[str]) -> None:
    path, command, rest = _leaf(args)
    with pytest.raises(Exception) as refused:  # click's usage errors, whichever copy of click
        command.make_context(f"reelserve {' '.join(path)}", rest)
    assert getattr(refused.value, "exit_code", None) in (1, 2)
