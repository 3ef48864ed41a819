"""From a contract request to LTX-2 generations: sizes, frames, guidance, shots, prompts.

Pure Python, no torch: every mapping rule of ``docs/engines.md`` lives here so it
can be read (and tested) without a model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from reelserve.catalog import JobParams
from reelserve.engines.base import GenerationInputs, VoiceSample

FPS = 24
FRAME_STEP = 8  # ... and 8x in time, after a first frame: 8k+1 frames
DEFAULT_CFG = 0.5  # the contract's default cfg_scale maps to the model's own guidance
ELEMENT_GUIDE_STRENGTH = 0.4  # how hard an element's image pulls the frame it is pinned to
# Element images one shot takes as keyframes. The pipeline takes any number, but each
# one adds a latent frame of tokens to every step (1/16 of a 5 s clip's work).
MAX_ELEMENT_GUIDES = 4

_ELEMENT = re.compile(r"@Element([1-9])\b", re.IGNORECASE)
_VOICE = re.compile(r"<<<voice_([1-9])>>>", re.IGNORECASE)
_ORDINALS = ("first", "second", "third", "fourth", "fifth")


@dataclass(frozen=True)
class Guide:
    """An image pinned to a pixel frame of one generation (``keyframes.PixelCondition``)."""

    # "start", "end", "element:N" (element N's frontal image) or "element:N:R" (its
    # reference image R); N and R 1-based, resolved by the engine
    image: str
    frame: int  # pixel frame: 0 for the first, the shot's last output frame for the end
    strength: float = 1.0


@dataclass(frozen=True)
class ShotJob:
    """One generation: a shot of the output video."""

    index: int
    prompt: str
    frames: int  # frames this shot contributes to the output (duration x 24)
    generate_frames: int  # what the model generates: 8k+1, at least ``frames``
    guides: tuple[Guide, ...] = field(default=())


def generation_frames(frames: int) -> int:
    """The smallest 8k+1 frame count that covers ``frames`` (72 -> 73, 120 -> 121)."""
    return max(1, math.ceil((frames - 1) / FRAME_STEP)) * FRAME_STEP + 1


def guidance_scale(cfg_scale: float, model_default: float) -> float:
    """cfg_scale 0..1 to guidance: 0 turns guidance off (1.0), 0.5 is the model's
    default (Lightricks' 3.0 for video, 7.0 for audio), 1 is as far above the
    default as 0 is below it (5.0 and 13.0).

    A model sampled without guidance (the distilled one, default 1.0) stays at 1.0.
    """
    if model_default <= 1.0:
        return model_default
    return 1.0 + (model_default - 1.0) * cfg_scale / DEFAULT_CFG


def plan_shots(params: JobParams, inputs: GenerationInputs) -> list[ShotJob]:
    """One generation per ``multi_prompt`` segment (or one for the whole prompt).

    The start image is pinned to pixel frame 0 of the first shot and the end image
    to the last output frame of the last shot (frame 119 of a 5 s shot, whose
    generation has 121 frames and is then cut to 120). The images of the elements a
    shot names become weak guides (``element_guides``).
    """
    if params.shots:
        segments = [(shot.prompt, shot.duration * FPS) for shot in params.shots]
    else:
        segments = [(params.prompt, params.frame_count)]
    count = len(segments)
    jobs = []
    for index, (text, frames) in enumerate(segments):
        guides: list[Guide] = []
        starts = index == 0 and inputs.start_image is not None
        if starts:
            guides.append(Guide("start", 0))
        guides.extend(element_guides(text, inputs, frames, first_frame_free=not starts))
        if index == count - 1 and inputs.end_image is not None:
            guides.append(Guide("end", frames - 1))  # the last frame the output keeps
        prompt = rewrite_prompt(text, params.prompt if params.shots else "", inputs)
        jobs.append(ShotJob(index, prompt, frames, generation_frames(frames), tuple(guides)))
    return jobs


def rewrite_prompt(text: str, context: str, inputs: GenerationInputs) -> str:
    """The prompt LTX-2 reads: references it cannot resolve are put into words.

    ``@ElementN`` becomes "the first subject" (and so on); ``<<<voice_N>>>``
    becomes a description of that voice from its sample's pitch and name. A
    ``multi_prompt`` segment is followed by the overall prompt as context, so
    every shot keeps the same scene.
    """
    prompt = _ELEMENT.sub(lambda m: f"the {_ordinal(int(m.group(1)))} subject", text)
    prompt = _VOICE.sub(lambda m: _voice_words(int(m.group(1)), inputs.voices), prompt)
    if context and context.strip() != text.strip():
        prompt = f"{prompt.rstrip()} Scene: {rewrite_prompt(context, '', inputs)}"
    return prompt


def element_guides(text: str, inputs: GenerationInputs, frames: int,
                   first_frame_free: bool) -> list[Guide]:
    """Weak guides (strength 0.4) for the images of the elements ``text`` names.

    The images, in order: the frontal image of each named element (in the order they
    are first named), then their reference images in turn (every element's first,
    then every element's second, ...), at most ``MAX_ELEMENT_GUIDES``. When frame 0 is
    free (no start image) and the first is a frontal image, it guides frame 0; the
    others sit evenly spaced strictly between the first and the last output frame.
    """
    named = list(dict.fromkeys(int(m.group(1)) for m in _ELEMENT.finditer(text)))
    elements = [(n, inputs.elements[n - 1]) for n in named if n <= len(inputs.elements)]
    images = [f"element:{n}" for n, element in elements if element.frontal is not None]
    depth = max((len(element.references) for _, element in elements), default=0)
    images += [f"element:{n}:{r + 1}" for r in range(depth)
               for n, element in elements if r < len(element.references)]
    images = images[:MAX_ELEMENT_GUIDES]
    guides = []
    if first_frame_free and images and images[0].count(":") == 1:
        guides.append(Guide(images.pop(0), 0, ELEMENT_GUIDE_STRENGTH))
    spaced = len(images) + 1
    guides += [Guide(image, round((i + 1) * (frames - 1) / spaced), ELEMENT_GUIDE_STRENGTH)
               for i, image in enumerate(images)]
    return guides


def _voice_words(number: int, voices: tuple[VoiceSample, ...]) -> str:
    if number > len(voices):
        return "a voice"
    voice = voices[number - 1]
    pitch = voice.pitch_hz
    if pitch is None:
        register = "a"
    elif pitch < 140:
        register = "a deep, low-pitched"
    elif pitch < 200:
        register = "a mid-pitched"
    else:
        register = "a high-pitched"
    named = f" ({voice.name})" if voice.name else ""
    return f"{register} voice{named}"


def _ordinal(number: int) -> str:
    return _ORDINALS[number - 1] if number <= len(_ORDINALS) else f"number {number}"
