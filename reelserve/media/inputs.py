"""Fetch and decode the images a request names (http(s) or ``data:`` URLs).

The bytes are capped while they stream in, whatever Content-Length says, and
the type is decided by decoding them with Pillow, not by headers. Any problem
raises ``InputError`` naming the field, the URL and the reason, which fails
the job with that message.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
import urllib.parse

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from reelserve.catalog import JobParams
from reelserve.engines.base import ElementImages, GenerationInputs
from reelserve.errors import InputError


class ImageFetcher:
    def __init__(self, *, max_bytes: int, timeout_s: float,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._transport = transport

    def load_inputs(self, params: JobParams) -> GenerationInputs:
        def load(field: str, url: str | None) -> Image.Image | None:
            return None if url is None else self.load_image(field, url)

        elements = tuple(
            ElementImages(
                load(f"elements[{i}].frontal_image_url", e.frontal_image_url),
                tuple(self.load_image(f"elements[{i}].reference_image_urls[{j}]", ref)
                      for j, ref in enumerate(e.reference_image_urls)),
            )
            for i, e in enumerate(params.elements)
        )
        return GenerationInputs(load("start_image_url", params.start_image_url),
                                load("end_image_url", params.end_image_url), elements)

    def load_image(self, field: str, url: str) -> Image.Image:
        data = self._read_data_url(field, url) if url.startswith("data:") else \
            self._download(field, url)
        return decode_image(field, url, data)

    def _read_data_url(self, field: str, url: str) -> bytes:
        header, sep, payload = url.partition(",")
        if not sep:
            raise InputError(field, url, "a data: URL needs a comma before its payload")
        # base64 grows data by 4/3; refuse before decoding something too big
        if len(payload) * 3 // 4 > self.max_bytes:
            raise InputError(field, url, f"larger than {self.max_bytes // 2**20} MB")
        try:
            if header.endswith(";base64"):
                return base64.b64decode(payload, validate=False)
            return urllib.parse.unquote_to_bytes(payload)
        except (binascii.Error, ValueError) as error:
            raise InputError(field, url, f"invalid base64 payload ({error})") from error

    def _download(self, field: str, url: str) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        try:
            with httpx.Client(transport=self._transport, timeout=self.timeout_s,
                              follow_redirects=True, max_redirects=5) as client, \
                    client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise InputError(field, url, f"the server answered HTTP {response.status_code}")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise InputError(field, url, f"larger than {self.max_bytes // 2**20} MB")
                    if time.monotonic() > deadline:
                        raise InputError(field, url, f"took longer than {self.timeout_s:g} s")
                    chunks.append(chunk)
        except httpx.HTTPError as error:
            reason = str(error) or type(error).__name__
            raise InputError(field, url, f"could not be fetched: {reason}") from error
        return b"".join(chunks)


def decode_image(field: str, url: str, data: bytes) -> Image.Image:
    """Decode bytes as an image (any format Pillow reads), upright and RGB."""
    if not data:
        raise InputError(field, url, "is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return upright.convert("RGB")
    except UnidentifiedImageError as error:
        raise InputError(field, url, "is not an image (no image format recognised)") from error
    except Image.DecompressionBombError as error:
        raise InputError(field, url, f"is too large to decode ({error})") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(field, url, f"is a damaged image ({error})") from error
