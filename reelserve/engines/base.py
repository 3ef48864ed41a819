"""The small protocol every generation engine implements.

Shaped like a diffusers pipeline adapter: ``check_inputs`` rejects what the
engine cannot do with a message that shows the bad value, ``generate`` reports
per-step progress through a callback and stops between steps once
``should_stop`` answers True (raising ``Interrupted``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from PIL import Image

from reelserve.catalog import JobParams

ProgressCallback = Callable[[float], None]
StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class ElementImages:
    """The decoded images of one ``elements`` entry (``@ElementN`` in a prompt)."""

    frontal: Image.Image | None
    references: tuple[Image.Image, ...] = ()


@dataclass(frozen=True)
class VoiceSample:
    """A voice named in ``voice_ids`` (``<<<voice_N>>>`` in a prompt): its sample and pitch."""

    voice_id: str
    name: str
    pitch_hz: float | None
    pcm: bytes  # 16 kHz mono int16
    rate: int = 16_000


@dataclass(frozen=True)
class GenerationInputs:
    """Input images, already fetched and decoded (RGB), and voices, for one job."""

    start_image: Image.Image | None = None
    end_image: Image.Image | None = None
    elements: tuple[ElementImages, ...] = field(default=())
    voices: tuple[VoiceSample, ...] = field(default=())


class Engine(Protocol):
    """A video generator. One instance lives in a worker's child process.

    An engine that runs only some models says so with a ``models`` attribute (a
    tuple of slugs); its workers then claim only those (see ``declared_models``).
    """

    name: str

    def check_inputs(self, params: JobParams, inputs: GenerationInputs) -> None:
        """Raise ``EngineError`` for a request this engine cannot serve."""

    def generate(
        self,
        params: JobParams,
        inputs: GenerationInputs,
        output_path: Path,
        progress: ProgressCallback,
        should_stop: StopCheck,
    ) -> None:
        """Write the finished MP4 to ``output_path``; raise ``Interrupted`` when stopped."""


def declared_models(engine: object) -> tuple[str, ...] | None:
    """The model slugs an engine declares it can run (its ``models``); None: every model."""
    models = getattr(engine, "models", None)
    return None if models is None else tuple(str(slug) for slug in models)
