"""Split a job into shots: the multi_prompt segments, or sentences for "intelligent".

Cuts land on whole frames: a segment of ``d`` seconds is exactly ``d * 24``
frames, so the first frame of shot k is the sum of the earlier segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from reelserve.catalog import JobParams

FPS = 24
MAX_INTELLIGENT_SHOTS = 3
# Sentence ends in English and CJK text (the ideographic full stop and the full-width
# ! and ?); a quote's own punctuation stays inside it.
_CJK_ENDS = "\u3002\uff01\uff1f"
_SENTENCE_END = re.compile(
    rf'(?<=[.!?{_CJK_ENDS}])\s+(?=(?:[^"]*"[^"]*")*[^"]*$)|(?<=[{_CJK_ENDS}])'
)


class ShotRenderer(Protocol):
    """Anything that can draw frame ``index`` (0-based within its shot) as RGB uint8."""

    def render(self, index: int) -> npt.NDArray[np.uint8]: ...


@dataclass(frozen=True)
class ShotPlan:
    """One shot: its own prompt, the whole prompt for context, and its frames."""

    index: int
    prompt: str
    context: str
    start_frame: int
    frame_count: int


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, keeping quoted speech whole."""
    parts = [part.strip() for part in _SENTENCE_END.split(text)]
    return [part for part in parts if part]


def _group(sentences: list[str], groups: int) -> list[str]:
    # Contiguous groups of nearly equal sentence counts, earlier groups larger.
    size, extra = divmod(len(sentences), groups)
    out, pos = [], 0
    for k in range(groups):
        take = size + (1 if k < extra else 0)
        out.append(" ".join(sentences[pos:pos + take]))
        pos += take
    return out


def plan_shots(params: JobParams) -> list[ShotPlan]:
    """The shots of ``params`` in order; their frame counts add up to ``frame_count``."""
    total = params.frame_count
    if params.shots:
        plans, start = [], 0
        for index, shot in enumerate(params.shots):
            frames = shot.duration * FPS
            if index == len(params.shots) - 1:
                frames = total - start  # defensive: the segments must fill the video
            plans.append(ShotPlan(index, shot.prompt, params.prompt, start, frames))
            start += frames
        return [plan for plan in plans if plan.frame_count > 0]
    if params.shot_type == "intelligent":
        sentences = split_sentences(params.prompt)
        count = min(MAX_INTELLIGENT_SHOTS, len(sentences), max(1, total // FPS))
        if count > 1:
            prompts = _group(sentences, count)
            bounds = [round(total * k / count) for k in range(count + 1)]
            return [
                ShotPlan(k, prompts[k], params.prompt, bounds[k], bounds[k + 1] - bounds[k])
                for k in range(count)
            ]
    return [ShotPlan(0, params.prompt, params.prompt, 0, total)]
