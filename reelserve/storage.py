"""Where output files live, addressed by unguessable keys.

``LocalStorage`` keeps them in a directory (on one machine, or a shared disk).
``S3Storage`` keeps them in an S3-compatible bucket: the engine writes to a local
staging file, the worker uploads it before the job is marked COMPLETED, and the
API answers ``/outputs/<key>`` with a redirect to a presigned URL, so the URL it
handed out stays the same capability URL whichever backend holds the file.

Folders are made again whenever they are needed, so removing one (by hand, by
a cleanup job) costs the files in it, not every job after. A write that fails
raises ``StorageError``: the worker retries the attempt like a lost worker, and
the client reads "storage error", never a path or an exception name.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from reelserve.errors import NotFound, ReelserveError, StorageError
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
        with contextlib.suppress(StorageError):  # made again, or reported, at each write
            make_folder(root)

    new_key = staticmethod(new_key)

    def path_for(self, key: str) -> Path:
        return self.root / check_key(key)

    def staging_path(self, key: str) -> Path:
        path = self.path_for(key)
        make_folder(path.parent)
        return path

    def publish(self, key: str) -> None:
        # The engine wrote it in place; it must still be there (the folder may have gone).
        if not self.path_for(key).is_file():
            raise StorageError(f"output {key} vanished from {self.root} before it was published")

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


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) if it is missing; ``StorageError`` if it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(f"cannot create {folder}: {type(error).__name__}: {error}") from error


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
        with contextlib.suppress(StorageError):
            make_folder(staging)
        # Presigned links outlive the job's retention a little; S3 caps them at 7 days.
        self.link_ttl_s = int(min(max(link_ttl_s, 60) + 300, 7 * 86400))
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url or None)

    new_key = staticmethod(new_key)

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def staging_path(self, key: str) -> Path:
        make_folder(self.staging)
        return self.staging / check_key(key)

    def publish(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        path = self.staging / check_key(key)
        try:
            self.client.upload_file(str(path), self.bucket, self._object(key),
                                    ExtraArgs={"ContentType": "video/mp4"})
        except (BotoCoreError, ClientError, OSError) as error:
            raise StorageError(f"upload of {key} to s3://{self.bucket} failed: "
                               f"{type(error).__name__}: {error}") from error
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
