"""Hostile files: the type comes from decoding, only image formats, no bombs, upright."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from reelserve.errors import InputError
from reelserve.media.inputs import ImageFetcher, decode_image

from conftest import png_bytes


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * 64)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_accepted_formats_decode_whatever_they_are_called(fmt: str) -> None:
    data = encoded(Image.new("RGB", (32, 16), (200, 30, 30)), fmt)
    image = decode_image("start_image_url", "http://x/not-a-real-name.txt", data)
    assert image.size == (32, 16)
    assert image.mode == "RGB"


@pytest.mark.parametrize(("name", "data"), [
    ("eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
    ("pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\n"),
    ("html", b"<html><body>not a picture</body></html>"),
    ("ico", encoded(Image.new("RGB", (16, 16)), "ICO")),
    ("mp4", b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom"),
])
def test_other_formats_are_refused(name: str, data: bytes) -> None:
    with pytest.raises(InputError, match=r"is not an image"):
        decode_image("start_image_url", f"http://x/{name}", data)


@pytest.mark.parametrize("size", [(10_000, 10_000), (40_000, 40_000)],
                         ids=["past-the-limit", "past-twice-the-limit"])
def test_decompression_bombs_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(InputError, match=r"too large to decode"):
        decode_image("start_image_url", "data:bomb", png_claiming(*size))


def test_damaged_and_empty_files_are_refused() -> None:
    whole = png_bytes((64, 64))
    with pytest.raises(InputError, match=r"damaged image"):
        decode_image("end_image_url", "http://x/cut.png", whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"is empty"):
        decode_image("end_image_url", "http://x/empty.png", b"")


@pytest.mark.parametrize(("orientation", "size"), [(1, (40, 20)), (6, (20, 40)), (8, (20, 40))])
def test_exif_orientation_is_applied(orientation: int, size: tuple[int, int]) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encoded(Image.new("RGB", (40, 20), (0, 120, 0)), "JPEG", exif=exif)
    assert decode_image("start_image_url", "http://x/phone.jpg", data).size == size


def test_data_url_over_the_cap_is_refused() -> None:
    fetcher = ImageFetcher(max_bytes=1000, timeout_s=5)
    big = "data:image/png;base64," + base64.b64encode(b"\0" * 2000).decode()
    with pytest.raises(InputError, match=r"start_image_url .*larger than"):
        fetcher.load_image("start_image_url", big)
    small = "data:image/png;base64," + base64.b64encode(png_bytes((8, 8))).decode()
    assert fetcher.load_image("start_image_url", small).size == (8, 8)
