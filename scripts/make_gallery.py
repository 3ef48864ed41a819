"""Render a handful of requests with the preview engine and lay their frames out as a contact sheet.

    .venv/bin/python scripts/make_gallery.py [--out docs/preview-gallery.png]

Each row is one request (text to video, multi-shot, image to video), rendered to a
real MP4 by ``PreviewEngine.generate`` and decoded back; the columns are frames
spread over the clip, so a reader sees the light, the layers, the camera move and
the cuts. Image-to-video inputs are drawn here, so the script needs no files.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from reelserve.catalog import JobParams, Shot
from reelserve.engines import GenerationInputs, load_engine
from reelserve.engines.base import ElementImages
from reelserve.settings import Settings

Rgb = npt.NDArray[np.uint8]
ROOT = Path(__file__).resolve().parent.parent
THUMB = (288, 162)
COLUMNS = 5
GAP, LABEL_H = 6, 22
BASE = JobParams(slug="kling-3-standard-text2video", prompt="", negative_prompt="",
                 duration=3, aspect_ratio="16:9", cfg_scale=0.8, generate_audio=False,
                 shot_type="customize", seed=7)
IMAGE = "https://example.com/image.png"


def painted_photo(sun_x: int, sun_y: int) -> Image.Image:
    """A stand-in photograph: sky gradient, a low sun, textured hills and a cabin."""
    h, w = 720, 1280
    sky = np.linspace([250, 170, 110], [90, 120, 190], h // 2 + 80).astype(np.uint8)
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 2 + 80] = sky[::-1][:, None, :]
    cv2.circle(image, (sun_x, sun_y), 60, (255, 225, 150), -1, cv2.LINE_AA)
    rng = np.random.default_rng(5)
    for depth, (base_y, colour) in enumerate([(420, (90, 110, 120)), (500, (60, 95, 70)),
                                              (590, (40, 70, 45))]):
        xs = np.arange(0, w + 40, 40)
        ys = base_y + np.cumsum(rng.normal(0, 10 + 6 * depth, xs.size)).astype(int)
        outline = np.stack([xs, ys], axis=1)
        polygon = np.concatenate([outline, [[w, h], [0, h]]]).astype(np.int32)
        cv2.fillPoly(image, [polygon], colour, cv2.LINE_AA)
    noise = rng.normal(0, 6, (h, w, 1))
    image = np.clip(image + noise * (np.arange(h)[:, None, None] > 420), 0, 255).astype(np.uint8)
    cv2.rectangle(image, (820, 560), (940, 640), (120, 60, 40), -1)
    cv2.fillPoly(image, [np.array([[805, 560], [880, 505], [955, 560]])], (70, 30, 25))
    return Image.fromarray(image)


def walker() -> Image.Image:
    """A frontal element on a flat backdrop, which the engine keys out."""
    image = Image.new("RGB", (300, 520), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    draw.ellipse((110, 30, 190, 110), fill=(230, 190, 150))
    draw.rounded_rectangle((90, 115, 210, 330), 30, fill=(200, 40, 50))
    draw.rectangle((100, 330, 140, 500), fill=(40, 50, 90))
    draw.rectangle((160, 330, 200, 500), fill=(40, 50, 90))
    return image


def requests() -> list[tuple[str, JobParams, GenerationInputs]]:
    """(row label, request, inputs) for every row of the sheet."""
    text = [
        ("A lone traveler on a misty mountain ridge at golden hour, light shafts, slow push-in",
         7),
        ("A neon city street at night in the rain, handheld", 3),
        ("Ancient temple ruins in the desert at sunset, dust, orbit", 7),
        ("A sailboat on a calm sea at dawn, gulls, pan right", 11),
        ("A lighthouse at night in the rain, slow pan (the README's example)", 3),
    ]
    rows = [(prompt, dataclasses.replace(BASE, prompt=prompt, seed=seed), GenerationInputs())
            for prompt, seed in text]
    shots = (Shot("Snowy pine forest at blue hour, fireflies, crane up", 2),
             Shot("City lights across a lake at night, static", 2),
             Shot("Golden field at sunrise, birds, pull back", 2))
    rows.append(("multi_prompt, 3 shots: snowy forest at blue hour | city across a lake at night | "
                 "golden field at sunrise",
                 dataclasses.replace(BASE, prompt="A journey", duration=6, shots=shots),
                 GenerationInputs()))
    i2v = dataclasses.replace(BASE, slug="kling-3-standard-image2video",
                              prompt="@Element1 walks past the cabin as the sun climbs",
                              start_image_url=IMAGE, end_image_url=IMAGE)
    inputs = GenerationInputs(start_image=painted_photo(300, 330),
                              end_image=painted_photo(345, 300),
                              elements=(ElementImages(frontal=walker()),))
    rows.append(("image to video: start image -> end image (flow morph), @Element1 cut-out",
                 i2v, inputs))
    return rows


def sampled_frames(path: Path, count: int) -> list[Rgb]:
    with av.open(str(path)) as container:
        frames = [np.asarray(f.to_ndarray(format="rgb24"), np.uint8)
                  for f in container.decode(video=0)]
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [frames[i] for i in picks]


def contact_sheet(rows: list[tuple[str, list[Rgb]]]) -> Image.Image:
    width = COLUMNS * THUMB[0] + (COLUMNS + 1) * GAP
    row_h = LABEL_H + THUMB[1] + GAP
    sheet = Image.new("RGB", (width, GAP + len(rows) * row_h), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    for r, (label, frames) in enumerate(rows):
        top = GAP + r * row_h
        draw.text((GAP, top + 5), label, fill=(225, 225, 225))
        for c, frame in enumerate(frames):
            thumb = cv2.resize(frame, THUMB, interpolation=cv2.INTER_AREA)
            sheet.paste(Image.fromarray(thumb), (GAP + c * (THUMB[0] + GAP), top + LABEL_H))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "preview-gallery.png")
    args = parser.parse_args()
    engine = load_engine("preview", Settings().engines)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n, (label, job, inputs) in enumerate(requests()):
            path = Path(folder) / f"{n}.mp4"
            engine.generate(job, inputs, path, lambda f: None, lambda: False)
            rows.append((label, sampled_frames(path, COLUMNS)))
            print(f"rendered {label[:60]}")
    contact_sheet(rows).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
