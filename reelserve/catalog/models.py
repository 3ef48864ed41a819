"""The two model slugs of the Kling 3.0 Standard contract."""

from __future__ import annotations

from dataclasses import dataclass

from reelserve.errors import ModelNotFound

TEXT2VIDEO = "kling-3-standard-text2video"
IMAGE2VIDEO = "kling-3-standard-image2video"


@dataclass(frozen=True)
class ModelSpec:
    slug: str
    title: str
    takes_images: bool


MODELS: dict[str, ModelSpec] = {
    TEXT2VIDEO: ModelSpec(TEXT2VIDEO, "Kling 3.0 Standard text to video", takes_images=False),
    IMAGE2VIDEO: ModelSpec(IMAGE2VIDEO, "Kling 3.0 Standard image to video", takes_images=True),
}


def get_model(slug: str) -> ModelSpec:
    try:
        return MODELS[slug]
    except KeyError:
        raise ModelNotFound(slug) from None
