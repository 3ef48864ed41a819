"""Voices: ``POST /v2/kling-create-voice`` turns a speech sample into a ``voice_id``.

The sample (an audio or video file by http(s) or ``data:`` URL, 3 to 30 s) is
fetched under the same policy and caps as input images, decoded to 16 kHz mono
PCM and kept in the store with its measured pitch. A voice belongs to the key
that made it; ``voice_ids`` naming any other is a 400 at submit.

The router must be included before the submit router: ``/v2/{slug}`` matches
this path too.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.requests import Request

from reelserve.api.body import read_json_body
from reelserve.api.context import CallerKey, Context
from reelserve.catalog import schemas
from reelserve.errors import InputError, InvalidParameter
from reelserve.jobs import Voice
from reelserve.media.inputs import ImageFetcher
from reelserve.media.voices import decode_voice, estimate_pitch_hz
from reelserve.settings_sections import FetchSettings

router = APIRouter()
MAX_NAME_CHARS = 64
VOICE_URL_RULE = ("is required: an http(s) or data: URL of a speech sample (audio or video, "
                  "3 to 30 s)")


@router.post("/v2/kling-create-voice", response_model=schemas.VoiceBody,
             responses={400: {"model": schemas.ErrorBody}})
async def create_voice(request: Request, key: CallerKey, context: Context) -> JSONResponse:
    await context.store.count_submit(key.id)
    body = await read_json_body(request, context.api.max_body_bytes)
    url, name = _voice_request(body)
    data = await anyio.to_thread.run_sync(_fetch_sample, context.api.fetch, url)
    pitch_hz, sample = await anyio.to_thread.run_sync(_measure_sample, data)
    voice = await context.store.create_voice(key.id, name, pitch_hz, sample)
    return JSONResponse(_voice_body(voice))


@router.get("/v2/voices", response_model=schemas.VoiceList)
async def list_voices(key: CallerKey, context: Context) -> JSONResponse:
    voices = await context.store.list_voices(key.id)
    return JSONResponse({"voices": [_voice_body(voice) for voice in voices]})


def _fetch_sample(fetch: FetchSettings, url: str) -> bytes:
    try:
        return ImageFetcher.from_settings(fetch).load_bytes("voice_url", url)
    except InputError as error:
        raise InvalidParameter("voice_url", error.reason) from error


def _measure_sample(data: bytes) -> tuple[float | None, bytes]:
    """The sample's pitch and its 16 kHz mono PCM."""
    pcm = decode_voice("voice_url", data)
    return estimate_pitch_hz(pcm), pcm.tobytes()


def _voice_request(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise InvalidParameter("body", "must be a JSON object with voice_url")
    url = body.get("voice_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:")):
        raise InvalidParameter("voice_url", VOICE_URL_RULE)
    if not url.isprintable():
        raise InvalidParameter("voice_url", "must not contain control characters")
    name = body.get("voice_name", "voice")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS \
            or not name.isprintable():
        raise InvalidParameter("voice_name", f"must be 1 to {MAX_NAME_CHARS} printable "
                                             "characters")
    return url, name


def _voice_body(voice: Voice) -> dict[str, Any]:
    return {"voice_id": voice.id, "voice_name": voice.name, "pitch_hz": voice.pitch_hz,
            "duration_s": round(voice.duration_s, 2)}
