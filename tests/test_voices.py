"""Voices made from samples, per key, checked at submit and handed to the engine."""

from __future__ import annotations

import base64
import io
import json
import time
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from reelserve.errors import ChildLimitExceeded, InvalidParameter
from reelserve.media.sandbox import ChildLimits, run_limited
from reelserve.media.voices import decode_voice, decode_voice_here, estimate_pitch_hz

from conftest import T2V, Service

RATE = 16_000


def speech_like(pitch_hz: float, seconds: float) -> bytes:
    """A WAV of a voiced, syllable-like sound at ``pitch_hz``: harmonics under an envelope."""
    t = np.arange(int(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * pitch_hz * k * t) / k for k in range(1, 6))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * t)
    pcm = (0.3 * voice * syllables / 2.3 * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "audio/wav") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def test_create_list_and_use_a_voice(shared_service: Service, tmp_path: Path) -> None:
    key = shared_service.create_key()
    with shared_service.client(key) as client:
        made = client.post("/v2/kling-create-voice", json={
            "voice_url": data_url(speech_like(180, 5)), "voice_name": "narrator"})
        assert made.status_code == 200, made.text
        voice = made.json()
        assert voice["voice_id"].startswith("voice_") and voice["voice_name"] == "narrator"
        assert voice["pitch_hz"] == pytest.approx(180, rel=0.05)
        assert voice["duration_s"] == pytest.approx(5, abs=0.05)
        assert [v["voice_id"] for v in client.get("/v2/voices").json()["voices"]] == [
            voice["voice_id"]]

        report = tmp_path / "voices.json"
        job = client.post(f"/v2/{T2V}", json={
            "prompt": f'<<<voice_1>>> says "hello" report-voices={report}', "duration": "3",
            "voice_ids": [voice["voice_id"]], "generate_audio": False})
        assert job.status_code == 200, job.text
        assert shared_service.wait_for(job.json()["request_id"], key=key)["status"] == "COMPLETED"
    [received] = json.loads(report.read_text())
    assert received["voice_id"] == voice["voice_id"]
    assert received["samples"] == pytest.approx(5 * RATE, abs=RATE * 0.05)
    assert received["pitch_hz"] == pytest.approx(180, rel=0.05)

    other = shared_service.create_key()
    with shared_service.client(other) as client:
        assert client.get("/v2/voices").json()["voices"] == []
        refused = client.post(f"/v2/{T2V}", json={"prompt": "x", "voice_ids": [
            voice["voice_id"]]})
    assert refused.status_code == 400 and "voice_ids[0]" in refused.json()["error"]


@pytest.mark.parametrize(("body", "field", "rule"), [
    ({"voice_name": "x"}, "voice_url", "is required"),
    ({"voice_url": data_url(speech_like(150, 1))}, "voice_url", "3 to 30 s"),
    ({"voice_url": data_url(b"not audio at all", "audio/wav")}, "voice_url", "not an audio"),
    ({"voice_url": data_url(speech_like(150, 4)), "voice_name": ""}, "voice_name", "1 to 64"),
])
def test_bad_voice_samples_are_400_naming_the_field(shared_service: Service, body: dict[str, str],
                                                    field: str, rule: str) -> None:
    with shared_service.client() as client:
        response = client.post("/v2/kling-create-voice", json=body)
        assert response.status_code == 400
        assert field in response.json()["error"] and rule in response.json()["error"]
        # the service keeps serving
        assert client.get("/v2/voices").status_code == 200


def test_unknown_voice_ids_are_400(shared_service: Service) -> None:
    with shared_service.client() as client:
        response = client.post(f"/v2/{T2V}", json={"prompt": "x", "voice_ids": ["voice_nope"]})
    assert response.status_code == 400
    assert "voice_ids[0]" in response.json()["error"]
    assert "kling-create-voice" in response.json()["error"]


def tiny_packet_sample(packets: int) -> bytes:
    """Matroska holding ``packets`` PCM packets of one sample each: the costly shape."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="matroska") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE)
        stream.layout = "mono"
        for index in range(packets):
            frame = av.AudioFrame.from_ndarray(
                np.array([[int(3000 * np.sin(index / 9))]], dtype=np.int16),
                format="s16", layout="mono")
            frame.sample_rate = RATE
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def test_decoding_many_tiny_packets_costs_time_linear_in_their_count() -> None:
    # The work is counted as this process's CPU time, a sample 4 times longer
    # may cost at most 8 times more: a decoder that re-reads what it kept
    # (quadratic) costs 16 times more and more.
    small, large = tiny_packet_sample(4_000), tiny_packet_sample(16_000)
    costs = []
    for data in (small, large):
        started = time.process_time()
        pcm = decode_voice_here(data)
        costs.append(time.process_time() - started)
        assert isinstance(pcm, bytes)
    assert len(decode_voice_here(large)) == 2 * 16_000  # type: ignore[arg-type]
    assert costs[1] <= 8 * max(costs[0], 0.01), costs


def test_a_sample_is_decoded_in_a_limited_child_not_in_the_caller() -> None:
    pcm = decode_voice("voice_url", speech_like(150, 4))
    assert len(pcm) == pytest.approx(4 * RATE, abs=RATE * 0.05)
    # A child that passes its CPU limit is killed; the caller gets a 400 naming the field.
    with pytest.raises(InvalidParameter, match=r"voice_url: could not be decoded within "
                                               r"the limits \(used more than 1 s of CPU\)"):
        run_voice_in(spin_forever, ChildLimits(cpu_s=1, memory_bytes=2**28, wall_s=30))
    with pytest.raises(ChildLimitExceeded, match=r"took longer than 0.5 s"):
        run_limited(time.sleep, (30,), ChildLimits(cpu_s=5, memory_bytes=2**28, wall_s=0.5))
    with pytest.raises(ChildLimitExceeded, match=r"needed more than 256 MB of memory"):
        run_limited(bytearray, (2**30,), ChildLimits(cpu_s=5, memory_bytes=2**28, wall_s=30))


def spin_forever(_: bytes) -> bytes:
    while True:
        pass


def run_voice_in(function: Callable[[bytes], bytes], limits: ChildLimits) -> None:
    try:
        run_limited(function, (b"",), limits)
    except ChildLimitExceeded as error:
        raise InvalidParameter("voice_url", f"could not be decoded within the limits "
                               f"({error.reason})") from error


def test_pitch_is_measured_from_the_decoded_pcm() -> None:
    pcm = decode_voice("voice_url", speech_like(220, 3.5))
    assert estimate_pitch_hz(pcm) == pytest.approx(220, rel=0.05)
    assert estimate_pitch_hz(np.zeros(RATE * 4, np.int16)) is None
    assert estimate_pitch_hz(np.zeros(10, np.int16)) is None
