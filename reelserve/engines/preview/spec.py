"""What one shot should show and sound like, decided from its prompt and seed.

``prompt.read_scene`` builds a ``SceneSpec``; the painters, the camera and the
soundtrack only ever read this object, never the prompt text, so every visible
choice can be traced to a word or to the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reelserve.engines.preview.camera import CameraMove


@dataclass(frozen=True)
class SpokenLine:
    """Quoted text to be spoken, with the voice and language to use."""

    text: str
    language: str = "en"  # "en" or "cmn"
    voice: int = 0  # 0 default, 1 and 2 for <<<voice_1>>> / <<<voice_2>>>


@dataclass(frozen=True)
class SceneSpec:
    """Every choice for one shot. Tuples keep it hashable and printable."""

    palette: str = "day"
    environments: tuple[str, ...] = ("mountains",)
    atmosphere: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    ambience: tuple[str, ...] = ("wind",)
    camera: CameraMove = field(default_factory=CameraMove)
    elements: tuple[int, ...] = ()  # 0-based indices of referenced @ElementN
    lines: tuple[SpokenLine, ...] = ()
    seed: int = 0
    # 1.0 is a wide shot; larger values frame tighter (used to vary cut shots).
    framing: float = 1.0

    @property
    def light_x(self) -> float:
        """Where the sun or moon sits across the view (0..1); sky and shafts agree on it."""
        return 0.25 + 0.5 * ((self.seed * 0.6180339887) % 1.0)
