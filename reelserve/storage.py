"""Where output files live, addressed by unguessable keys.

``LocalStorage`` keeps them in a directory (on one machine, or a shared disk).
``S3Storage`` keeps them in an S3-compatible bucket: the engine writes to a local
staging file, the worker uploads it before the job is marked COMPLETED, and the
API answers ``/outputs/<key>`` with a redirect to a presigned URL, so the URL it
handed out stays the same capability URL whichever backend holds the file.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from reelserve.errors import NotFound, ReelserveError
from reelserve.settings import Settings

_KEY = re.compile(r"^[A-Za-z0-9_-]{20,80}\.mp4$")
CHUNK = 1024 * 1024


def new_key() -> str:
    return secrets.token_urlsafe(32) + ".mp4"


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise NotFound(f"no output {key!r}")
    return key


class Storage(Protocol):
    def new_key(self) -> str: ...
    def staging_path(self, key: str) -> Path:
        """Where the engine writes the file for ``key``."""
        ...
    def publish(self, key: str) -> None:
        """Make the staged file available; called before the job is marked COMPLETED."""
        ...
    def locate(self, key: str) -> Path | str:
        """The published file: a local path to serve, or a URL to redirect to."""
        ...
    def read_chunks(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...


class LocalStorage:
    """Output files under one directory; a file's key is its capability."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    new_key = staticmethod(new_key)

    def path_for(self, key: str) -> Path:
        return self.root / check_key(key)

    def staging_path(self, key: str) -> Path:
        return self.path_for(key)

    def publish(self, key: str) -> None:
        pass  # the engine wrote it in place

    def existing_path(self, key: str) -> Path:
        path = self.path_for(key)
        if not path.is_file():
            raise NotFound("output not found (unknown or expired)")
        return path

    def locate(self, key: str) -> Path | str:
        return self.existing_path(key)

    def read_chunks(self, key: str) -> Iterator[bytes]:
        with self.existing_path(key).open("rb") as file:
            while chunk := file.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)


class StorageUnavailable(ReelserveError):
    pass


class S3Storage:
    """Outputs in ``s3://bucket/prefix`` through boto3 (AWS or any S3-compatible server)."""

    def __init__(self, url: str, staging: Path, *, endpoint_url: str = "",
                 link_ttl_s: float = 3600) -> None:
        try:
            import boto3
        except ImportError as error:
            raise StorageUnavailable(
                "S3 storage needs boto3: pip install 'reelserve[s3]'") from error
        parsed = urlparse(url)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.staging = staging
        staging.mkdir(parents=True, exist_ok=True)
        # Presigned links outlive the job's retention a little; S3 caps them at 7 days.
        self.link_ttl_s = int(min(max(link_ttl_s, 60) + 300, 7 * 86400))
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url or None)

    new_key = staticmethod(new_key)

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def staging_path(self, key: str) -> Path:
        return self.staging / check_key(key)

    def publish(self, key: str) -> None:
        path = self.staging_path(key)
        self.client.upload_file(str(path), self.bucket, self._object(key),
                                ExtraArgs={"ContentType": "video/mp4"})
        path.unlink(missing_ok=True)

    def locate(self, key: str) -> Path | str:
        return str(self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._object(key)},
            ExpiresIn=self.link_ttl_s))

    def read_chunks(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._object(key))["Body"]
        except ClientError as error:
            raise NotFound("output not found (unknown or expired)") from error
        yield from body.iter_chunks(CHUNK)

    def delete(self, key: str) -> None:
        self.staging_path(key).unlink(missing_ok=True)
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))


def open_storage(settings: Settings) -> Storage:
    """Local files by default; S3 when ``settings.storage`` is an s3:// URL."""
    if not settings.storage:
        return LocalStorage(settings.outputs_dir)
    if settings.storage.startswith("s3://") and urlparse(settings.storage).netloc:
        return S3Storage(settings.storage, settings.outputs_dir / "staging",
                         endpoint_url=settings.s3_endpoint_url,
                         link_ttl_s=settings.retention_s)
    raise StorageUnavailable(
        f"storage {settings.storage!r} is not supported: leave it empty for local files, "
        "or give s3://BUCKET/PREFIX")
