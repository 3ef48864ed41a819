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
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from reelserve.errors import NotFound, ReelserveError, StorageError
from reelserve.settings_sections import StorageSettings

_KEY = re.compile(r"^[A-Za-z0-9_-]{20,80}\.mp4$")
# Input blobs (images sent inline at submit) and the small files beside them.
_INPUT = re.compile(r"^[A-Za-z0-9_-]{20,80}(\.job)?$")
INPUTS = "inputs"
CHUNK = 1024 * 1024


def new_key() -> str:
    return secrets.token_urlsafe(32) + ".mp4"


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise NotFound(f"no output {key!r}")
    return key


def check_input_name(name: str) -> str:
    if not _INPUT.match(name):
        raise NotFound(f"no input {name!r}")
    return name


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

    # input blobs, beside the outputs (reelserve.input_blobs)
    def put_input(self, name: str, data: bytes) -> None: ...
    def read_input(self, name: str) -> bytes:
        """The input's bytes; ``NotFound`` when it is gone."""
        ...
    def delete_input(self, name: str) -> None: ...
    def list_inputs(self) -> Iterator[tuple[str, float]]:
        """Every input's name and when it was written (Unix time)."""
        ...


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

    def _input_path(self, name: str) -> Path:
        return self.root / INPUTS / check_input_name(name)

    def put_input(self, name: str, data: bytes) -> None:
        path = self._input_path(name)
        make_folder(path.parent)
        partial = path.with_name(path.name + ".partial")
        try:
            partial.write_bytes(data)
            partial.replace(path)  # readers never see half a file
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise StorageError(f"cannot write input {name}: {error}") from error

    def read_input(self, name: str) -> bytes:
        try:
            return self._input_path(name).read_bytes()
        except FileNotFoundError as error:
            raise NotFound(f"input {name} is gone") from error

    def delete_input(self, name: str) -> None:
        self._input_path(name).unlink(missing_ok=True)

    def list_inputs(self) -> Iterator[tuple[str, float]]:
        folder = self.root / INPUTS
        if not folder.is_dir():
            return
        for entry in os.scandir(folder):
            if _INPUT.match(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    yield entry.name, entry.stat().st_mtime


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

    def _input_object(self, name: str) -> str:
        path = f"{INPUTS}/{check_input_name(name)}"
        return f"{self.prefix}/{path}" if self.prefix else path

    def put_input(self, name: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._input_object(name), Body=data)
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"cannot write input {name}: {error}") from error

    def read_input(self, name: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._input_object(name))
        except ClientError as error:
            raise NotFound(f"input {name} is gone") from error
        data: bytes = body["Body"].read()
        return data

    def delete_input(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._input_object(name))

    def list_inputs(self) -> Iterator[tuple[str, float]]:
        folder = self._input_object("x" * 20).rsplit("/", 1)[0] + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder)
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[1]
                if _INPUT.match(name):
                    yield name, item["LastModified"].timestamp()


def open_storage(settings: StorageSettings) -> Storage:
    """Local files by default; S3 when the storage section's URL is an s3:// URL."""
    if not settings.url:
        return LocalStorage(settings.outputs_dir)
    if settings.url.startswith("s3://") and urlparse(settings.url).netloc:
        return S3Storage(settings.url, settings.outputs_dir / "staging",
                         endpoint_url=settings.s3_endpoint_url, link_ttl_s=settings.link_ttl_s)
    raise StorageUnavailable(
        f"storage {settings.url!r} is not supported: leave it empty for local files, "
        "or give s3://BUCKET/PREFIX")
