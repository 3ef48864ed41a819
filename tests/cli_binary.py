"""Running the real `reelserve` console script, as a user's shell would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import process_env

_BINARY = Path(sys.executable).with_name("reelserve")
# The console script pip installed beside this Python; `python -m reelserve` without one.
_BASE = [str(_BINARY)] if _BINARY.exists() else [sys.executable, "-m", "reelserve"]


def command(*args: str) -> list[str]:
    return [*_BASE, *args]


def reelserve(*args: str, data_dir: Path | None = None, cwd: Path | None = None,
              env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI; with neither ``data_dir`` nor ``env``, no REELSERVE_* variable is set."""
    environment = env if env is not None else process_env(data_dir or Path("unused"))
    if data_dir is None and env is None:
        del environment["REELSERVE_DATA_DIR"]
    return subprocess.run(command(*args), env=environment, capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)
