"""Large inputs live outside the job row: inline images become input blobs at submit.

A ``data:`` URL in a submit can be ~70 MB of base64. Kept in the job's params,
every status poll, event-stream tick, ``/v1`` wait and history page would load
and parse it again. Instead ``InputBlobs.store_inline`` decodes each ``data:`` URL
once, writes the bytes to storage beside the outputs (``Storage.put_input``:
a local folder or S3) and puts a short ``reelserve-input:<name>`` reference in
its place, so the store only ever holds small rows. The worker's engine child
reads the blob by that reference (``ImageFetcher``).

Lifetime: ``InputBlobs.bind`` writes ``<name>.job`` (the job id) beside each blob
once the job exists; ``InputBlobs.sweep`` deletes a blob with its marker when the
store no longer knows the job (it expired with its retention, or was never
kept), and an unbound blob (its submit failed, or the server died before the
store write) once it is older than ``UNBOUND_GRACE_S``. The request body the
client sent is untouched: ``webhook_url`` and the idempotency digest read it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import logging
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator

import anyio

from reelserve.catalog import JobParams
from reelserve.errors import InvalidParameter, NotFound
from reelserve.jobs import Job
from reelserve.media.inputs import INPUT_SCHEME
from reelserve.storage import Storage

log = logging.getLogger("reelserve.inputs")
UNBOUND_GRACE_S = 3600.0  # far longer than any submit takes from blob to store write
MARKER = ".job"


class InputBlobs:
    """Inline images of submits, kept as blobs in ``storage`` (at most ``max_bytes`` each)."""

    def __init__(self, storage: Storage, max_bytes: int) -> None:
        self.storage = storage
        self.max_bytes = max_bytes

    async def store_inline(self, params: JobParams) -> JobParams:
        """``params`` with each inline ``data:`` image stored as a blob and referenced.

        The one call the submit path makes before the store write. A payload that is
        not valid base64, or larger than ``max_bytes`` decoded, is a 400 naming its field.
        """
        inline = [(field, url) for field, url in image_urls(params)
                  if url[:5].lower() == "data:"]
        if not inline:
            return params
        return await anyio.to_thread.run_sync(_store_all, params, inline, self.storage,
                                              self.max_bytes)

    async def bind(self, params: JobParams, job: Job) -> None:
        """Tie the blobs ``params`` names to ``job``; drop them if the job is an earlier one.

        (An idempotent replay answers the earlier job, which has blobs of its own.)
        """
        names = input_names(params)
        if names:
            kept = set(input_names(job.params))
            await anyio.to_thread.run_sync(_bind, self.storage, names, kept, job.id)

    async def sweep(self, job_known: Callable[[str], Awaitable[bool]],
                    now: float | None = None) -> int:
        """Delete blobs whose job is no longer known, and unbound ones past the grace."""
        now = time.time() if now is None else now
        listed = dict(await anyio.to_thread.run_sync(lambda: list(self.storage.list_inputs())))
        doomed: list[str] = []
        for name, written_at in listed.items():
            if name.endswith(MARKER):
                continue
            marker = name + MARKER
            if marker in listed:
                job_id = await anyio.to_thread.run_sync(_read_marker, self.storage, marker)
                if job_id is not None and await job_known(job_id):
                    continue
            elif now - written_at < UNBOUND_GRACE_S:
                continue
            doomed.extend((name, marker))
        doomed.extend(name for name in listed  # markers whose blob is already gone
                      if name.endswith(MARKER) and name.removesuffix(MARKER) not in listed)
        for name in doomed:
            await anyio.to_thread.run_sync(self.storage.delete_input, name)
        deleted = len([name for name in doomed if not name.endswith(MARKER)])
        if deleted:
            log.info("deleted %d input blobs", deleted)
        return deleted


def image_urls(params: JobParams) -> Iterator[tuple[str, str]]:
    """(field, URL) of every image the request names."""
    if params.start_image_url is not None:
        yield "start_image_url", params.start_image_url
    if params.end_image_url is not None:
        yield "end_image_url", params.end_image_url
    for i, element in enumerate(params.elements):
        if element.frontal_image_url is not None:
            yield f"elements[{i}].frontal_image_url", element.frontal_image_url
        for j, url in enumerate(element.reference_image_urls):
            yield f"elements[{i}].reference_image_urls[{j}]", url


def input_names(params: JobParams) -> list[str]:
    return [url.removeprefix(INPUT_SCHEME) for _, url in image_urls(params)
            if url.startswith(INPUT_SCHEME)]


def decode_data_url(field: str, url: str, max_bytes: int) -> bytes:
    """The bytes of a ``data:`` URL, decoded once; a 400 naming ``field`` if it is bad."""
    header, sep, payload = url.partition(",")
    if not sep:
        raise InvalidParameter(field, "a data: URL needs a comma before its payload")
    if len(payload) * 3 // 4 > max_bytes:  # base64 grows data by 4/3: refuse before decoding
        raise InvalidParameter(field, f"must be at most {max_bytes} bytes once decoded")
    try:
        if header.endswith(";base64"):
            data = base64.b64decode(payload, validate=False)
        else:
            data = urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as error:
        raise InvalidParameter(field, f"must be valid base64 ({error})") from error
    if len(data) > max_bytes:
        raise InvalidParameter(field, f"must be at most {max_bytes} bytes once decoded")
    return data


def _store_all(params: JobParams, inline: list[tuple[str, str]], storage: Storage,
               max_bytes: int) -> JobParams:
    refs: dict[str, str] = {}
    for field, url in inline:
        if url not in refs:  # the same image twice is one blob
            name = secrets.token_urlsafe(24)
            storage.put_input(name, decode_data_url(field, url, max_bytes))
            refs[url] = INPUT_SCHEME + name
    return _replace_urls(params, refs)


def _replace_urls(params: JobParams, refs: dict[str, str]) -> JobParams:
    def swap(url: str | None) -> str | None:
        return None if url is None else refs.get(url, url)

    elements = tuple(
        dataclasses.replace(e, frontal_image_url=swap(e.frontal_image_url),
                            reference_image_urls=tuple(refs.get(u, u)
                                                       for u in e.reference_image_urls))
        for e in params.elements)
    return dataclasses.replace(params, start_image_url=swap(params.start_image_url),
                               end_image_url=swap(params.end_image_url), elements=elements)


def _bind(storage: Storage, names: list[str], kept: set[str], job_id: str) -> None:
    for name in names:
        if name in kept:
            storage.put_input(name + MARKER, job_id.encode())
        else:
            storage.delete_input(name)


def _read_marker(storage: Storage, marker: str) -> str | None:
    with contextlib.suppress(NotFound):
        return storage.read_input(marker).decode("ascii", "replace")
    return None
