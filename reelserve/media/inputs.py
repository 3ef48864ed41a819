"""Fetch and decode the images a request names (http(s) or ``data:`` URLs).

http(s) URLs go through ``FetchPolicy`` (public addresses only, checked
redirects, one deadline, a byte cap while streaming). The type is decided by
decoding with Pillow, not by headers, and only the formats in
``ACCEPTED_FORMATS`` are tried; Pillow's decompression-bomb limit is enforced
as an error, and EXIF orientation is applied. Any problem raises
``InputError`` naming the field, the URL and the reason, which fails the job
with that message.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import urllib.parse
import warnings
from collections.abc import Callable

from PIL import Image, ImageOps, UnidentifiedImageError

from reelserve.catalog import JobParams
from reelserve.engines.base import ElementImages, GenerationInputs
from reelserve.errors import FetchError, InputError, NotFound
from reelserve.media.fetch_policy import FetchPolicy
from reelserve.settings_sections import FetchSettings

# Formats a start image may come in; the rest of Pillow's readers (EPS through
# Ghostscript, PSD, ICNS, ...) are never tried on a stranger's bytes.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # JPEG covers MPO
# Pillow's own default for Image.MAX_IMAGE_PIXELS, kept here so that a library
# that turns Pillow's limit off cannot turn ours off too.
MAX_INPUT_PIXELS = 89_478_485
# What Pillow's decoders raise on damaged or hostile files.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError)


# An image sent inline at submit, kept as an input blob (reelserve.input_blobs).
INPUT_SCHEME = "reelserve-input:"
# Reads an input blob by name; raises NotFound when it is gone.
InputReader = Callable[[str], bytes]


class ImageFetcher:
    def __init__(self, *, max_bytes: int, timeout_s: float,
                 policy: FetchPolicy | None = None,
                 read_input: InputReader | None = None) -> None:
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.policy = policy or FetchPolicy()
        self.read_input = read_input

    @classmethod
    def from_settings(cls, fetch: FetchSettings,
                      read_input: InputReader | None = None) -> ImageFetcher:
        """The fetcher a worker uses: caps, deadline and allowlist from the fetch section."""
        return cls(max_bytes=fetch.max_input_bytes, timeout_s=fetch.input_timeout_s,
                   policy=FetchPolicy(fetch.allow_networks), read_input=read_input)

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
        return decode_image(field, url, self.load_bytes(field, url))

    def load_bytes(self, field: str, url: str) -> bytes:
        """The bytes behind a ``data:``, input-blob or http(s) URL, under the same caps."""
        if url.startswith(INPUT_SCHEME):
            return self._read_blob(field, url)
        return self._read_data_url(field, url) if url.startswith("data:") else \
            self._download(field, url)

    def _read_blob(self, field: str, url: str) -> bytes:
        if self.read_input is None:
            raise InputError(field, url, "input blobs cannot be read here")
        try:
            return self.read_input(url.removeprefix(INPUT_SCHEME))
        except NotFound as error:
            raise InputError(field, url, "the image sent with the request is gone") from error

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
        try:
            return self.policy.get_bytes(url, max_bytes=self.max_bytes, timeout_s=self.timeout_s,
                                         headers={"Accept": "image/*"})
        except FetchError as error:
            raise InputError(field, url, error.reason) from error


def decode_image(field: str, url: str, data: bytes) -> Image.Image:
    """Decode bytes as an accepted image format, upright and RGB; refuse bombs."""
    if not data:
        raise InputError(field, url, "is empty")
    Image.init()  # register every reader, so that ACCEPTED_FORMATS can name them
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; past the limit is refused.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
                pixels = image.width * image.height
                if pixels > MAX_INPUT_PIXELS:
                    raise InputError(field, url, f"is too large to decode ({image.width}x"
                                     f"{image.height} pixels, at most {MAX_INPUT_PIXELS})")
                image.load()
                upright = ImageOps.exif_transpose(image)
                return upright.convert("RGB")
    except UnidentifiedImageError as error:
        accepted = ", ".join(ACCEPTED_FORMATS)
        raise InputError(field, url, f"is not an image (no accepted format recognised: "
                         f"{accepted})") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(field, url, f"is too large to decode ({error})") from error
    except DECODE_ERRORS as error:
        raise InputError(field, url, f"is a damaged image ({error})") from error
