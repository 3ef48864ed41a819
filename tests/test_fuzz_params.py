"""Property tests of parameter validation: valid bodies are accepted as sent, and a body
with one bad field gets ``InvalidParameter`` naming that field, whatever else it holds."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reelserve.catalog import get_model, parse_submit
from reelserve.catalog.params import (
    ASPECT_RATIOS,
    DURATIONS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    SHOT_TYPES,
    Element,
    JobParams,
    Shot,
)
from reelserve.errors import InvalidParameter

from conftest import I2V, T2V

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None)
# Text a person may type: any Unicode but control characters and lone surrogates.
TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=300)
PROMPT = TEXT.filter(lambda text: text.strip())
URL = st.sampled_from(["https://images.example/cat.png", "http://10.0.0.1/a.jpg",
                       "data:image/png;base64,iVBORw0KGgo="])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)

VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "negative_prompt": TEXT,
    "duration": st.sampled_from(DURATIONS) | st.integers(3, 15),
    "aspect_ratio": st.sampled_from(ASPECT_RATIOS),
    "cfg_scale": st.floats(0, 1) | st.integers(0, 1),
    "generate_audio": st.booleans(),
    "shot_type": st.sampled_from(SHOT_TYPES),
    "seed": st.integers(0, MAX_SEED),
}
NOT_STRING = st.integers() | st.floats() | st.booleans() | st.lists(st.integers(), max_size=2)
CONTROL = st.characters(categories=("Cc",), exclude_characters="\t\n\r")
BAD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "prompt": NOT_STRING | st.text(" \t\n", max_size=5) | st.tuples(PROMPT, CONTROL).map("".join)
    | st.text(min_size=MAX_PROMPT_CHARS + 1, max_size=MAX_PROMPT_CHARS + 50).filter(str.strip),
    "negative_prompt": NOT_STRING | st.tuples(TEXT, CONTROL, TEXT).map("".join),
    "duration": st.integers().filter(lambda n: not 3 <= n <= 15) | st.booleans()
    | st.text(max_size=4).filter(lambda text: text.strip() not in DURATIONS)
    | st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer() and 3 <= x <= 15)),
    "aspect_ratio": st.text(max_size=6).filter(lambda text: text not in ASPECT_RATIOS)
    | NOT_STRING,
    "cfg_scale": st.floats().filter(lambda x: not 0 <= x <= 1) | st.text() | st.booleans(),
    "generate_audio": st.integers() | st.text() | st.floats(),
    "shot_type": st.text(max_size=12).filter(lambda text: text not in SHOT_TYPES),
    "seed": st.integers().filter(lambda n: not 0 <= n <= MAX_SEED) | st.text() | st.booleans()
    | st.floats(),
    "voice_ids": st.lists(TEXT, min_size=3, max_size=5) | st.text() | st.integers(),
}


@st.composite
def valid_bodies(draw: st.DrawFn, slug: str) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": draw(PROMPT)}
    for name, values in VALID_FIELDS.items():
        if draw(st.booleans()):
            body[name] = draw(values)
    if slug == I2V:
        body["start_image_url"] = draw(URL)
    body.update(draw(st.dictionaries(st.text(max_size=10).filter(
        lambda name: name not in VALID_FIELDS and name not in ("prompt", "start_image_url",
                                                               "multi_prompt", "voice_ids",
                                                               "end_image_url", "elements")),
        JSON, max_size=3)))
    return body


@FUZZ
@given(data=st.data(), slug=st.sampled_from([T2V, I2V]))
def test_valid_bodies_are_accepted_as_sent(data: st.DataObject, slug: str) -> None:
    body = data.draw(valid_bodies(slug))
    params = parse_submit(get_model(slug), body)
    assert params.prompt == body["prompt"]
    assert params.duration == int(str(body.get("duration", "5")).strip())
    assert params.aspect_ratio == body.get("aspect_ratio", "16:9")
    assert params.cfg_scale == float(body.get("cfg_scale", 0.5))
    assert params.generate_audio is body.get("generate_audio", True)
    assert 0 <= params.seed <= MAX_SEED
    if "seed" in body:
        assert params.seed == body["seed"]


@FUZZ
@given(data=st.data(), slug=st.sampled_from([T2V, I2V]), field=st.sampled_from(list(BAD_FIELDS)))
def test_one_bad_field_is_named_in_the_error(data: st.DataObject, slug: str, field: str) -> None:
    body = data.draw(valid_bodies(slug))
    body[field] = data.draw(BAD_FIELDS[field])
    try:
        parse_submit(get_model(slug), body)
    except InvalidParameter as error:
        assert error.field.split("[")[0] == field, (error.field, body[field])
        assert error.message.startswith(f"{error.field}: ")
    else:
        raise AssertionError(f"{field}={body[field]!r} was accepted")


@FUZZ
@given(body=JSON, slug=st.sampled_from([T2V, I2V]))
def test_any_json_is_accepted_or_refused_by_name(body: Any, slug: str) -> None:
    try:
        parse_submit(get_model(slug), body)
    except InvalidParameter as error:
        assert error.field


SHOTS = st.lists(st.builds(Shot, TEXT, st.integers(1, 15)), max_size=3).map(tuple)
ELEMENTS = st.lists(st.builds(Element, URL | st.none(), st.lists(URL, max_size=3).map(tuple)),
                    max_size=3).map(tuple)


@FUZZ
@given(params=st.builds(
    JobParams, slug=st.sampled_from([T2V, I2V]), prompt=PROMPT, negative_prompt=TEXT,
    duration=st.integers(3, 15), aspect_ratio=st.sampled_from(ASPECT_RATIOS),
    cfg_scale=st.floats(0, 1), generate_audio=st.booleans(),
    shot_type=st.sampled_from(SHOT_TYPES), seed=st.integers(0, MAX_SEED), shots=SHOTS,
    voice_ids=st.lists(TEXT, max_size=3).map(tuple), start_image_url=URL | st.none(),
    end_image_url=URL | st.none(), elements=ELEMENTS))
def test_params_json_is_asdict_and_reads_back(params: JobParams) -> None:
    """The store writes ``to_json``: the same keys, order and values as ``asdict``."""
    encoded = params.to_json()
    assert encoded == asdict(params)
    assert json.dumps(encoded) == json.dumps(asdict(params))
    assert JobParams.from_json(json.loads(json.dumps(encoded))) == params
