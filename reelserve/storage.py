"""Where output files live: a local directory, addressed by unguessable keys."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from reelserve.errors import NotFound

_KEY = re.compile(r"^[A-Za-z0-9_-]{20,80}\.mp4$")


class LocalStorage:
    """Output files under one directory; a file's key is its capability."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def new_key() -> str:
        return secrets.token_urlsafe(32) + ".mp4"

    def path_for(self, key: str) -> Path:
        if not _KEY.match(key):
            raise NotFound(f"no output {key!r}")
        return self.root / key

    def existing_path(self, key: str) -> Path:
        path = self.path_for(key)
        if not path.is_file():
            raise NotFound("output not found (unknown or expired)")
        return path

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)
