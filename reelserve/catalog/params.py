"""Request parameters: the contract's rules, checked field by field.

``parse_submit`` turns a JSON body into ``JobParams`` or raises
``InvalidParameter`` naming the field and the rule it broke. Unknown fields
are ignored; image fields sent to text2video are ignored too.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from reelserve.catalog.models import ModelSpec
from reelserve.errors import InvalidParameter

DURATIONS = tuple(str(seconds) for seconds in range(3, 16))
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
SHOT_TYPES = ("customize", "intelligent")
DEFAULT_NEGATIVE_PROMPT = "blur, distort, and low quality"
MAX_PROMPT_CHARS = 2500
MAX_SEGMENT_PROMPT_CHARS = 512
MAX_SEGMENTS = 5
MAX_VOICES = 2
MAX_ELEMENTS = 3
MAX_REFERENCE_IMAGES = 3
MAX_SEED = 2**32 - 1
MAX_VOICE_ID_CHARS = 128
MAX_URL_CHARS = 8192  # http(s) URLs; data: URLs are bounded by the body cap
URL_SCHEMES = ("http://", "https://", "data:")
FRAME_SIZES = {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080)}
FPS = 24
# C0 and C1 control characters (tab, newline and carriage return allowed in text)
# and lone surrogates, which JSON's \uD800 escapes can produce.
_TEXT_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_URL_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class Shot:
    prompt: str
    duration: int


@dataclass(frozen=True)
class Element:
    frontal_image_url: str | None
    reference_image_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobParams:
    """A validated request, with every default filled in and the seed chosen."""

    slug: str
    prompt: str
    negative_prompt: str
    duration: int
    aspect_ratio: str
    cfg_scale: float
    generate_audio: bool
    shot_type: str
    seed: int
    shots: tuple[Shot, ...] = ()
    voice_ids: tuple[str, ...] = ()
    start_image_url: str | None = None
    end_image_url: str | None = None
    elements: tuple[Element, ...] = field(default=())

    @property
    def size(self) -> tuple[int, int]:
        """Output (width, height) for the aspect ratio."""
        return FRAME_SIZES[self.aspect_ratio]

    @property
    def frame_count(self) -> int:
        return self.duration * FPS

    def to_json(self) -> dict[str, Any]:
        """What ``dataclasses.asdict`` gives, built without its deep copies.

        Every submit's store write encodes one, on the thread that holds the write
        lock, where ``asdict`` was 40 % of the time per job.
        """
        data = dict(self.__dict__)  # fields in declaration order, as asdict has them
        data["shots"] = tuple({"prompt": shot.prompt, "duration": shot.duration}
                              for shot in self.shots)
        data["elements"] = tuple({"frontal_image_url": element.frontal_image_url,
                                  "reference_image_urls": element.reference_image_urls}
                                 for element in self.elements)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobParams:
        values = dict(data)
        values["shots"] = tuple(Shot(**shot) for shot in data.get("shots", ()))
        values["voice_ids"] = tuple(data.get("voice_ids", ()))
        values["elements"] = tuple(
            Element(e["frontal_image_url"], tuple(e.get("reference_image_urls", ())))
            for e in data.get("elements", ())
        )
        return cls(**values)


def parse_submit(model: ModelSpec, body: Any, rng: random.Random | None = None) -> JobParams:
    """Validate a submit body for ``model``; raise ``InvalidParameter`` on the first bad field."""
    if not isinstance(body, dict):
        raise InvalidParameter("body", "the request body must be a JSON object")
    prompt = _text(body, "prompt", required=True, max_chars=MAX_PROMPT_CHARS)
    assert prompt is not None
    shots = _shots(body.get("multi_prompt"))
    duration = _duration(body.get("duration"), "duration") if "duration" in body else None
    if shots:
        total = sum(shot.duration for shot in shots)
        if not 3 <= total <= 15:
            raise InvalidParameter(
                "multi_prompt", f"the segments' durations must add up to 3..15 s, not {total}"
            )
        if duration is not None and duration != total:
            raise InvalidParameter(
                "duration",
                f"must equal the sum of the multi_prompt durations ({total}), not {duration}",
            )
        duration = total
    images = _image_fields(body) if model.takes_images else {}
    return JobParams(
        slug=model.slug,
        prompt=prompt,
        negative_prompt=_text(body, "negative_prompt", default=DEFAULT_NEGATIVE_PROMPT,
                              max_chars=MAX_PROMPT_CHARS) or "",
        duration=5 if duration is None else duration,
        aspect_ratio=_choice(body, "aspect_ratio", ASPECT_RATIOS, "16:9"),
        cfg_scale=_cfg_scale(body.get("cfg_scale", 0.5)),
        generate_audio=_boolean(body, "generate_audio", default=True),
        shot_type=_choice(body, "shot_type", SHOT_TYPES, "customize"),
        seed=_seed(body.get("seed"), rng),
        shots=shots,
        voice_ids=_voice_ids(body.get("voice_ids")),
        **images,
    )


def _text(
    body: dict[str, Any], name: str, *, required: bool = False, default: str | None = None,
    max_chars: int,
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidParameter(name, "is required")
        return default
    return _check_text(value, name, max_chars=max_chars, allow_empty=not required)


def _check_text(value: Any, name: str, *, max_chars: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidParameter(name, f"must be a string, not {_kind(value)}")
    if not allow_empty and not value.strip():
        raise InvalidParameter(name, "must not be empty")
    if len(value) > max_chars:
        raise InvalidParameter(name, f"must be at most {max_chars} characters, not {len(value)}")
    _refuse_control_chars(value, name, allow_whitespace=True)
    return value


def _refuse_control_chars(value: str, name: str, *, allow_whitespace: bool = False) -> None:
    """400 for NUL, C0/C1 control characters and lone surrogates (not valid Unicode text)."""
    found = (_TEXT_FORBIDDEN if allow_whitespace else _URL_FORBIDDEN).search(value)
    if found is None:
        return
    code, where = ord(found.group()), found.start()
    if 0xD800 <= code < 0xE000:
        raise InvalidParameter(
            name, f"must be valid Unicode text (lone surrogate U+{code:04X} at position {where})")
    raise InvalidParameter(
        name, f"must not contain NUL or other control characters (U+{code:04X} at position "
              f"{where})")


def _duration(value: Any, name: str) -> int:
    rule = 'must be one of "3" ... "15" (seconds, as a string or an integer)'
    if isinstance(value, bool):
        raise InvalidParameter(name, rule)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not (isinstance(value, int) or (math.isfinite(value) and value.is_integer())):
            raise InvalidParameter(name, rule)
        value = str(int(value))
    if not isinstance(value, str) or value.strip() not in DURATIONS:
        raise InvalidParameter(name, rule)
    return int(value.strip())


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name, default)
    if value not in allowed or not isinstance(value, str):
        raise InvalidParameter(name, f"must be one of {', '.join(allowed)}")
    return value


def _cfg_scale(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameter("cfg_scale", f"must be a number from 0 to 1, not {_kind(value)}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidParameter("cfg_scale", f"must be a number from 0 to 1, not {value}")
    return float(value)


def _boolean(body: dict[str, Any], name: str, *, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise InvalidParameter(name, f"must be a boolean (true or false), not {_kind(value)}")
    return value


def _seed(value: Any, rng: random.Random | None) -> int:
    if value is None:
        # 32 random bits are a uniform 0..MAX_SEED seed. A seed is no secret, so the
        # process's Mersenne Twister (reseeded from the OS after a fork) serves: no
        # system call, which on the submit path would hand the GIL to the store's
        # writing thread and wait to get it back; randint's general path costs more.
        return rng.randint(0, MAX_SEED) if rng else random.getrandbits(32)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise InvalidParameter("seed", f"must be an integer from 0 to {MAX_SEED}")
    return int(value)


def _shots(value: Any) -> tuple[Shot, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SEGMENTS:
        raise InvalidParameter("multi_prompt", f"must be an array of 1 to {MAX_SEGMENTS} segments")
    shots = []
    for index, segment in enumerate(value):
        where = f"multi_prompt[{index}]"
        if not isinstance(segment, dict):
            raise InvalidParameter(where, "must be an object with prompt and duration")
        if segment.get("prompt") is None:
            raise InvalidParameter(f"{where}.prompt", "is required")
        prompt = _check_text(segment["prompt"], f"{where}.prompt",
                             max_chars=MAX_SEGMENT_PROMPT_CHARS)
        duration = _duration(segment.get("duration", "5"), f"{where}.duration")
        shots.append(Shot(prompt, duration))
    return tuple(shots)


def _voice_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_VOICES:
        raise InvalidParameter("voice_ids", f"must be an array of at most {MAX_VOICES} strings")
    for index, voice in enumerate(value):
        if not isinstance(voice, str) or not voice.strip():
            raise InvalidParameter(f"voice_ids[{index}]", "must be a non-empty string")
        _check_text(voice, f"voice_ids[{index}]", max_chars=MAX_VOICE_ID_CHARS)
    return tuple(value)


def _url(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter(name, "must be an http(s) or data: URL string")
    if not value.lower().startswith(URL_SCHEMES):
        raise InvalidParameter(name, "must be an http(s) or data: URL")
    if not value.lower().startswith("data:") and len(value) > MAX_URL_CHARS:
        raise InvalidParameter(name, f"must be at most {MAX_URL_CHARS} characters, "
                                     f"not {len(value)}")
    _refuse_control_chars(value, name)
    return value


def _image_fields(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("start_image_url") is None:
        raise InvalidParameter("start_image_url", "is required for image to video")
    end = body.get("end_image_url")
    return {
        "start_image_url": _url(body["start_image_url"], "start_image_url"),
        "end_image_url": None if end is None else _url(end, "end_image_url"),
        "elements": _elements(body.get("elements")),
    }


def _elements(value: Any) -> tuple[Element, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ELEMENTS:
        raise InvalidParameter("elements", f"must be an array of at most {MAX_ELEMENTS} elements")
    elements = []
    for index, item in enumerate(value):
        where = f"elements[{index}]"
        if not isinstance(item, dict):
            raise InvalidParameter(where, "must be an object with frontal_image_url")
        refs = item.get("reference_image_urls") or []
        if not isinstance(refs, list) or len(refs) > MAX_REFERENCE_IMAGES:
            raise InvalidParameter(
                f"{where}.reference_image_urls",
                f"must be an array of at most {MAX_REFERENCE_IMAGES} URLs",
            )
        frontal = item.get("frontal_image_url")
        if frontal is None and not refs:
            raise InvalidParameter(where, "needs a frontal_image_url or reference_image_urls")
        elements.append(Element(
            None if frontal is None else _url(frontal, f"{where}.frontal_image_url"),
            tuple(_url(ref, f"{where}.reference_image_urls[{i}]") for i, ref in enumerate(refs)),
        ))
    return tuple(elements)


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object", type(None): "null"}.get(type(value), "a value")
