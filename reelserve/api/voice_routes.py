"""Voices: ``POST /v2/kling-create-voice`` turns a speech sample into a ``voice_id``.

The sample (an audio or video file by http(s) or ``data:`` URL, 3 to 30 s) is
fetched under the same policy and caps as input images, decoded to 16 kHz mono
PCM and kept in the store with its measured pitch. A voice belongs to the key
that made it; ``voice_ids`` naming any other is a 400 at submit.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from reelserve.errors import InputError, InvalidParameter
from reelserve.jobs import Voice
from reelserve.media.inputs import ImageFetcher
from reelserve.media.voices import decode_voice, estimate_pitch_hz

if TYPE_CHECKING:
    from reelserve.api.app import Service

MAX_NAME_CHARS = 64


def add_voice_routes(app: FastAPI, service: Service) -> None:
    """Register before the ``/v2/{slug}`` submit route, which would match this path too."""
    fetcher = ImageFetcher.from_settings(service.settings)

    @app.post("/v2/kling-create-voice")
    async def create_voice(request: Request) -> JSONResponse:
        key = service.require_key(request)
        service.limiter.hit(key.id)
        try:
            body = json.loads(await request.body())
        except (UnicodeDecodeError, ValueError) as error:
            raise InvalidParameter("body", f"must be valid JSON ({error})") from error
        url, name = _voice_request(body)

        def make() -> Voice:
            try:
                data = fetcher.load_bytes("voice_url", url)
            except InputError as error:
                raise InvalidParameter("voice_url", error.reason) from error
            pcm = decode_voice("voice_url", data)
            return service.store.create_voice(key.id, name, estimate_pitch_hz(pcm),
                                              pcm.tobytes())

        voice = await anyio.to_thread.run_sync(make)
        return JSONResponse(_voice_body(voice))

    @app.get("/v2/voices")
    async def list_voices(request: Request) -> JSONResponse:
        key = service.require_key(request)
        return JSONResponse({"voices": [_voice_body(v) for v in service.store.list_voices(key.id)]})


def check_voice_ids(service: Service, key_id: int, voice_ids: tuple[str, ...]) -> None:
    for index, voice_id in enumerate(voice_ids):
        voice = service.store.get_voice(voice_id)
        if voice is None or voice.key_id != key_id:
            raise InvalidParameter(f"voice_ids[{index}]", f"no voice {voice_id!r} for this key; "
                                   "create one with POST /v2/kling-create-voice")


def _voice_request(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise InvalidParameter("body", "must be a JSON object with voice_url")
    url = body.get("voice_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:")):
        raise InvalidParameter("voice_url", "is required: an http(s) or data: URL of a speech "
                               "sample (audio or video, 3 to 30 s)")
    name = body.get("voice_name", "voice")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS \
            or not name.isprintable():
        raise InvalidParameter("voice_name", f"must be 1 to {MAX_NAME_CHARS} printable "
                               "characters")
    return url, name


def _voice_body(voice: Voice) -> dict[str, Any]:
    return {"voice_id": voice.id, "voice_name": voice.name, "pitch_hz": voice.pitch_hz,
            "duration_s": round(voice.duration_s, 2)}
