"""The preview engine speaks <<<voice_N>>> lines at the pitch of the N-th voice's sample."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from reelserve.catalog import get_model, parse_submit
from reelserve.engines.base import GenerationInputs, VoiceSample
from reelserve.engines.preview import create_engine
from reelserve.engines.preview.speech import shared_speech
from reelserve.media.voices import estimate_pitch_hz
from reelserve.settings_sections import PreviewSettings

LINE = "Hello there, the temple is empty and the wind is cold."


@pytest.mark.parametrize("hz", [110.0, 210.0])
def test_speech_is_spoken_at_the_asked_pitch(hz: float) -> None:
    synth = shared_speech()
    assert synth is not None, "espeak-ng from espeakng-loader must load"
    voice, setting = synth.voice_for_hz(hz, "en")
    audio = synth.speak(LINE, "en", voice, pitch=setting)
    heard = estimate_pitch_hz((audio * 32767).astype(np.int16), synth.rate)
    assert heard == pytest.approx(hz, rel=0.15)


def _speech_pitch(tmp_path: Path, sample_hz: float) -> float:
    params = parse_submit(get_model("kling-3-standard-text2video"), {
        "prompt": f'A quiet empty room. <<<voice_1>>> "{LINE}"', "duration": "3",
        "aspect_ratio": "1:1", "seed": 7, "voice_ids": ["voice_a"]})
    voice = VoiceSample("voice_a", "a", sample_hz, b"\0\0" * 16_000)
    output = tmp_path / f"{sample_hz}.mp4"
    create_engine(PreviewSettings()).generate(params, GenerationInputs(voices=(voice,)), output,
                                       lambda _: None, lambda: False)
    with av.open(str(output)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
        pcm = np.concatenate([out.to_ndarray().reshape(-1)
                              for frame in container.decode(audio=0)
                              for out in resampler.resample(frame)])
    heard = estimate_pitch_hz(pcm.astype(np.int16))
    assert heard is not None
    return heard


def test_the_voice_sample_sets_the_pitch_in_the_video(tmp_path: Path) -> None:
    low, high = _speech_pitch(tmp_path, 110.0), _speech_pitch(tmp_path, 210.0)
    assert low == pytest.approx(110, rel=0.2)
    assert high == pytest.approx(210, rel=0.2)
