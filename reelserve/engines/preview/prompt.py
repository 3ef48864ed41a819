"""Read a shot's prompt into a ``SceneSpec``: named words first, the seed for the rest.

How words and the seed combine:

* Each category (light, places, atmosphere, subjects, camera) takes what the
  shot's own prompt names, else what the whole prompt names, else a seed choice.
* ``cfg_scale`` sets how far the words override the seed: at 0.5 and above a
  named category always wins; below, each survives with probability
  ``0.5 + cfg``. Seed-chosen extras (one more effect or subject) are added with
  probability ``0.6 * (1 - cfg)``, so cfg 1 renders exactly what was asked.
* The negative prompt (and "no X" / "without X" in the prompt) removes what it
  names, whatever the seed chose. Words it does not know are ignored, so the
  default "blur, distort, and low quality" removes nothing.
"""

from __future__ import annotations

import re

import numpy as np

from reelserve.engines.preview.camera import CameraMove
from reelserve.engines.preview.palette import PALETTE_NAMES
from reelserve.engines.preview.spec import SceneSpec, SpokenLine
from reelserve.engines.preview.vocabulary import (
    AMBIENCE_WORDS,
    ATMOSPHERE_WORDS,
    CAMERA_WORDS,
    DIRECTION_WORDS,
    ENVIRONMENT_WORDS,
    NEGATIVE_GROUPS,
    PALETTE_WORDS,
    SPEED_WORDS,
    SUBJECT_WORDS,
)

SEED_SCENES = (
    ("mountains",), ("sea", "mountains"), ("forest", "mountains"), ("desert",), ("city",),
    ("field", "forest"), ("valley",), ("temple", "mountains"), ("sea",), ("ruins", "desert"),
)
SEED_CAMERAS = ("push_in", "pull_back", "pan", "orbit", "crane", "truck")
QUOTE = re.compile(r'"([^"]+)"|“([^”]+)”|「([^」]+)」|『([^』]+)』')
VOICE_TAG = re.compile(r"<<<\s*voice_(\d+)\s*>>>", re.IGNORECASE)
ELEMENT_TAG = re.compile(r"@element\s*(\d+)", re.IGNORECASE)
NEGATION = re.compile(r"\b(?:no|without|not|zero)\s+([a-z][a-z-]*(?:\s+[a-z][a-z-]*)?)")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def _has(text: str, phrase: str) -> bool:
    if CJK.search(phrase):
        return phrase in text
    return re.search(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])", text) is not None


def named(text: str, table: dict[str, tuple[str, ...]]) -> list[str]:
    """Choices of ``table`` that ``text`` names, in the order they first appear."""
    found: list[tuple[int, str]] = []
    for choice, phrases in table.items():
        positions = [_first(text, p) for p in phrases if _has(text, p)]
        if positions:
            found.append((min(positions), choice))
    return [choice for _, choice in sorted(found)]


def _first(text: str, phrase: str) -> int:
    index = text.find(phrase)
    return index if index >= 0 else len(text)


def spoken_lines(prompt: str) -> tuple[SpokenLine, ...]:
    """Quoted text in ``prompt``, with the voice tag nearest before each quote."""
    lines = []
    for match in QUOTE.finditer(prompt):
        text = next(group for group in match.groups() if group).strip()
        if not text:
            continue
        tags = list(VOICE_TAG.finditer(prompt, 0, match.start()))
        voice = int(tags[-1].group(1)) if tags else 0
        language = "cmn" if CJK.search(text) else "en"
        lines.append(SpokenLine(text, language, voice))
    return tuple(lines)


def _scene_text(prompt: str) -> tuple[str, str]:
    """(words that describe the scene, words negated inline), both lower case."""
    text = QUOTE.sub(" ", prompt).lower()
    negated = " ".join(match.group(1) for match in NEGATION.finditer(text))
    return NEGATION.sub(" ", text), negated


def removed_by(negative: str) -> set[str]:
    """Every choice a negative text removes, across all categories."""
    text = negative.lower()
    gone: set[str] = set()
    for table in (ATMOSPHERE_WORDS, SUBJECT_WORDS, ENVIRONMENT_WORDS, CAMERA_WORDS):
        gone.update(named(text, table))
    for phrase, members in NEGATIVE_GROUPS.items():
        if _has(text, phrase):
            gone.update(members)
    return gone


class SceneReader:
    """Turns (shot prompt, whole prompt, negative, cfg, seed) into a ``SceneSpec``."""

    def __init__(self, negative_prompt: str, cfg_scale: float) -> None:
        self.negative = negative_prompt
        self.cfg = min(max(cfg_scale, 0.0), 1.0)

    def read(self, prompt: str, context: str, seed: int, framing: float = 1.0) -> SceneSpec:
        rng = np.random.default_rng([seed, 7])
        own, own_neg = _scene_text(prompt)
        whole, whole_neg = _scene_text(context)
        gone = removed_by(" , ".join((self.negative, own_neg, whole_neg)))

        def pick(table: dict[str, tuple[str, ...]]) -> list[str]:
            words = named(own, table) or named(whole, table)
            keep = self.cfg >= 0.5 or rng.random() < 0.5 + self.cfg
            return words if keep else []

        extra = 0.6 * (1.0 - self.cfg)
        palettes = pick(PALETTE_WORDS)
        palette = palettes[0] if palettes else str(rng.choice(PALETTE_NAMES[:7]))
        places = pick(ENVIRONMENT_WORDS)
        seeded_place = SEED_SCENES[int(rng.integers(len(SEED_SCENES)))]
        environments = tuple(places) if places else seeded_place
        atmosphere = pick(ATMOSPHERE_WORDS)
        if rng.random() < extra:
            atmosphere.append(str(rng.choice(("fog", "dust", "shafts", "fireflies"))))
        subjects = pick(SUBJECT_WORDS)
        if rng.random() < extra:
            subjects.append("birds")
        camera = self._camera(own or whole, rng, pick(CAMERA_WORDS), gone)
        environments = tuple(e for e in environments if e not in gone) or ("field",)
        spec = SceneSpec(
            palette=palette,
            environments=environments,
            atmosphere=tuple(dict.fromkeys(a for a in atmosphere if a not in gone)),
            subjects=tuple(dict.fromkeys(s for s in subjects if s not in gone)),
            camera=camera,
            elements=tuple(sorted({int(n) - 1 for n in ELEMENT_TAG.findall(prompt) if
                                   int(n) >= 1})),
            lines=spoken_lines(prompt),
            seed=int(rng.integers(0, 2**31)),
            framing=framing,
        )
        return _with_ambience(spec, own + " " + whole)

    def _camera(
        self, text: str, rng: np.random.Generator, moves: list[str], gone: set[str],
    ) -> CameraMove:
        allowed = [m for m in moves if m not in gone]
        if allowed:
            kind = allowed[0]
        elif moves or "push_in" in gone:
            kind = "static" if "camera movement" in self.negative.lower() else str(
                rng.choice([m for m in SEED_CAMERAS if m not in gone] or ["static"]))
        else:
            kind = "push_in"  # the documented default: a slow push-in
        directions = named(text, {str(k): v for k, v in DIRECTION_WORDS.items()})
        direction = int(directions[0]) if directions else int(rng.choice([-1, 1]))
        speeds = named(text, {str(k): v for k, v in SPEED_WORDS.items()})
        speed = float(speeds[0]) if speeds else float(rng.uniform(0.85, 1.15))
        return CameraMove(kind, direction, speed, float(rng.uniform(0.0, 6.28)))


def _with_ambience(spec: SceneSpec, text: str) -> SceneSpec:
    """Ambience follows from the scene: places and weather imply their sound."""
    sounds: list[str] = []
    env, atmos = set(spec.environments), set(spec.atmosphere)
    if atmos & {"rain"} or spec.palette == "storm":
        sounds.append("rain")
    if env & {"sea"}:
        sounds.append("water")
    if env & {"city"}:
        sounds.append("city")
    if env & {"forest", "field"} or "birds" in spec.subjects:
        sounds.append("forest")
    sounds += named(text, AMBIENCE_WORDS)
    if env & {"mountains", "valley", "desert", "ruins", "temple"} or "snow" in atmos or not sounds:
        sounds.append("wind")
    return SceneSpec(
        spec.palette, spec.environments, spec.atmosphere, spec.subjects,
        tuple(dict.fromkeys(sounds)), spec.camera, spec.elements, spec.lines, spec.seed,
        spec.framing,
    )
