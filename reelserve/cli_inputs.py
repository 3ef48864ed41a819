"""The CLI's inputs, checked on this machine before anything is sent.

A file given as an image must be one (PIL reads its header): a text file, a key
or a video is refused here with exit 1, and its bytes are never printed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

MAX_IMAGE_BYTES = 50 * 1024 * 1024  # the server's default REELSERVE_MAX_INPUT_BYTES
IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp",
                 "GIF": "image/gif", "BMP": "image/bmp", "TIFF": "image/tiff"}
MAX_SHOTS = 5


class BadInput(Exception):
    """An input the CLI refuses before submitting; the message names the option."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def image_url(value: str, option: str) -> str:
    """An http(s) or data: URL as it is; a local image file as a ``data:`` URL."""
    if value.startswith(("http://", "https://", "data:")):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise BadInput(f"{option} {value}: no such file")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise BadInput(f"{option} {value}: {size} bytes, more than the "
                       f"{MAX_IMAGE_BYTES // 2**20} MiB an input image may have")
    try:
        with Image.open(path) as image:
            kind = image.format or ""
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadInput(f"{option} {value}: not an image (PNG, JPEG, WebP, GIF, BMP or "
                       "TIFF expected)") from None
    if kind not in IMAGE_FORMATS:
        raise BadInput(f"{option} {value}: {kind} images are not accepted (PNG, JPEG, WebP, "
                       "GIF, BMP or TIFF expected)")
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{IMAGE_FORMATS[kind]};base64,{encoded}"


def parse_shot(value: str) -> dict[str, Any]:
    """``"3:a lighthouse at dusk"`` as ``{"prompt": ..., "duration": "3"}``."""
    seconds, sep, prompt = value.partition(":")
    if not sep or not seconds.strip().isdigit() or not prompt.strip():
        raise BadInput(f'--shot {value!r}: expected "SECONDS:PROMPT", e.g. "3:a lighthouse '
                       'at dusk"')
    return {"prompt": prompt.strip(), "duration": seconds.strip()}


def read_shots_file(path: Path) -> list[dict[str, Any]]:
    """A JSON file holding the contract's ``multi_prompt`` list."""
    try:
        shots = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BadInput(f"--shots-file {path}: {error.strerror}") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise BadInput(f"--shots-file {path}: not valid JSON ({error})") from None
    if not isinstance(shots, list) or not all(
            isinstance(shot, dict) and "prompt" in shot and "duration" in shot for shot in shots):
        raise BadInput(f'--shots-file {path}: expected a JSON list of '
                       '{"prompt": ..., "duration": ...} objects')
    return [{"prompt": shot["prompt"], "duration": str(shot["duration"])} for shot in shots]


def multi_prompt(shots: list[str], shots_file: Path | None) -> list[dict[str, Any]] | None:
    """The shots from ``--shot`` options or ``--shots-file``; None when neither is given."""
    if shots and shots_file is not None:
        raise BadInput("give the shots with --shot or --shots-file, not both")
    found = read_shots_file(shots_file) if shots_file is not None else \
        [parse_shot(shot) for shot in shots]
    if len(found) > MAX_SHOTS:
        raise BadInput(f"at most {MAX_SHOTS} shots, not {len(found)}")
    return found or None


def element(value: str) -> dict[str, Any]:
    """``"front.png,side.png,back.png"``: a frontal image, then up to 3 references."""
    images = [part.strip() for part in value.split(",") if part.strip()]
    if not images or len(images) > 4:
        raise BadInput(f"--element {value!r}: a frontal image, then up to 3 reference images, "
                       "separated by commas")
    return {"frontal_image_url": image_url(images[0], "--element"),
            "reference_image_urls": [image_url(image, "--element") for image in images[1:]]}
