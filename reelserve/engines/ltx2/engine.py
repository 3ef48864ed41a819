"""``Ltx2Engine``: LTX-2 through diffusers, one generation per shot, muxed to the contract.

The pipeline is loaded once when the engine child starts and kept warm. Each
shot is generated at a multiple-of-32 size and 8k+1 frames, trimmed to exactly
its duration x 24 frames, resized to the contract's 1080p-class size and
streamed into the MP4; the model's own audio is resampled to 48 kHz stereo.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from reelserve.catalog import JobParams
from reelserve.engines.base import GenerationInputs, ProgressCallback, StopCheck
from reelserve.engines.ltx2.audio import fit_samples, to_output_rate
from reelserve.engines.ltx2.plan import (
    FPS,
    Guide,
    ShotJob,
    generation_size,
    guidance_scale,
    plan_shots,
)
from reelserve.engines.ltx2.runtime import Runtime, choose_runtime, import_torch, load_pipeline
from reelserve.errors import EngineError, Interrupted
from reelserve.media.encode import AUDIO_RATE, Mp4Writer
from reelserve.model_store import read_profile, resolve_model_path
from reelserve.settings import Settings

log = logging.getLogger("reelserve.engines.ltx2")
Rgb = npt.NDArray[np.uint8]
GENERATION_SHARE = 0.92  # of the progress bar; encoding the MP4 is the rest
# Sampling keys a profile may set; anything else in it is ignored.
SAMPLING_KEYS = frozenset({
    "num_inference_steps", "sigmas", "guidance_scale", "stg_scale", "modality_scale",
    "guidance_rescale", "audio_guidance_scale", "audio_stg_scale", "audio_modality_scale",
    "audio_guidance_rescale", "spatio_temporal_guidance_blocks", "use_cross_timestep",
    "max_sequence_length", "decode_timestep", "decode_noise_scale",
})


class Ltx2Engine:
    """The GPU engine behind ``engine = "ltx2"`` (runs, slowly, on a CPU too)."""

    name = "ltx2"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.torch = import_torch()
        self.model_path = resolve_model_path(settings)
        profile = read_profile(self.model_path)
        self.variant: str = profile["variant"]
        self.sampling = {k: v for k, v in profile["sampling"].items() if k in SAMPLING_KEYS}
        if settings.ltx2_steps > 0:
            self.sampling["num_inference_steps"] = settings.ltx2_steps
            self.sampling.pop("sigmas", None)  # fixed sigmas fix the step count too
        self.runtime: Runtime = choose_runtime(settings, self.torch)
        self.pipe: Any = load_pipeline(self.model_path, self.runtime, self.torch)
        log.info("ltx2 %s from %s on %s", self.variant, self.model_path,
                 self.runtime.describe())

    def check_inputs(self, params: JobParams, inputs: GenerationInputs) -> None:
        """Reject an image-to-video request whose images did not arrive decoded."""
        for field_name, url, image in (
            ("start_image_url", params.start_image_url, inputs.start_image),
            ("end_image_url", params.end_image_url, inputs.end_image),
        ):
            if url is not None and image is None:
                raise EngineError(f"{field_name} {url[:80]!r} was given but no decoded "
                                  "image reached the engine")
        if self.settings.ltx2_long_side % 32:
            raise EngineError(f"REELSERVE_LTX2_LONG_SIDE must be a multiple of 32, "
                              f"not {self.settings.ltx2_long_side}")

    def generate(
        self,
        params: JobParams,
        inputs: GenerationInputs,
        output_path: Path,
        progress: ProgressCallback,
        should_stop: StopCheck,
    ) -> None:
        """Generate every shot, then write the MP4 at ``output_path``."""
        self.check_inputs(params, inputs)
        shots = plan_shots(params, inputs)
        size = generation_size(params.aspect_ratio, self.settings.ltx2_long_side)
        steps_done = [0]
        total_steps = len(shots) * self._steps()

        def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if should_stop():
                raise Interrupted("ltx2 generation was stopped")
            steps_done[0] += 1
            progress(GENERATION_SHARE * steps_done[0] / total_steps)
            return {}

        clips: list[Rgb] = []
        sounds: list[npt.NDArray[np.float32]] = []
        for shot in shots:
            if should_stop():
                raise Interrupted("ltx2 generation was stopped")
            video, audio = self._generate_shot(params, inputs, shot, size, on_step)
            clips.append(_exact_frames(video, shot.frames))
            if params.generate_audio:
                sounds.append(fit_samples(to_output_rate(audio, self._audio_rate()),
                                          shot.frames * AUDIO_RATE // FPS))
        soundtrack = np.concatenate(sounds, axis=1) if params.generate_audio else None
        self._write(params, clips, soundtrack, output_path, progress, should_stop)
        progress(1.0)

    def _generate_shot(self, params: JobParams, inputs: GenerationInputs, shot: ShotJob,
                       size: tuple[int, int], on_step: Any) -> tuple[Rgb, Any]:
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        torch = self.torch
        width, height = size
        sampling = dict(self.sampling)
        sampling["guidance_scale"] = guidance_scale(params.cfg_scale,
                                                    float(sampling.get("guidance_scale", 1.0)))
        conditions = [LTX2VideoCondition(frames=_fit(_guide_image(guide, inputs), size),
                                         index=guide.index, strength=guide.strength)
                      for guide in shot.guides]
        # A CPU generator gives the same noise on every device; one seed per shot.
        generator = torch.Generator(device="cpu").manual_seed(params.seed + shot.index)
        try:
            with torch.inference_mode():
                output = self.pipe(
                    conditions=conditions or None, prompt=shot.prompt,
                    negative_prompt=params.negative_prompt, width=width, height=height,
                    num_frames=shot.generate_frames, frame_rate=float(FPS), generator=generator,
                    output_type="np", callback_on_step_end=on_step, **sampling,
                )
        except torch.OutOfMemoryError as error:
            self._after_failure()
            raise EngineError(
                f"out of GPU memory at {width}x{height} (output {params.size[0]}x"
                f"{params.size[1]}), {shot.generate_frames} frames, on "
                f"{self.runtime.describe()}; try a shorter duration, "
                "REELSERVE_LTX2_OFFLOAD=sequential, REELSERVE_LTX2_VAE_TILING=on or a smaller "
                f"REELSERVE_LTX2_LONG_SIDE: {str(error).splitlines()[0]}") from error
        except Interrupted:
            self._after_failure()
            raise
        frames = np.asarray(output.frames[0])  # (frames, height, width, 3) floats in [0, 1]
        video = np.clip(frames * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return video, output.audio[0].float().cpu().numpy()

    def _write(self, params: JobParams, clips: list[Rgb],
               soundtrack: npt.NDArray[np.float32] | None, output_path: Path,
               progress: ProgressCallback, should_stop: StopCheck) -> None:
        width, height = params.size
        written = 0
        with Mp4Writer(output_path, width, height, frame_count=params.frame_count,
                       audio=soundtrack) as writer:
            for clip in clips:  # shots follow each other with hard cuts
                for frame in clip:
                    if should_stop():
                        raise Interrupted("ltx2 generation was stopped")
                    writer.write(_cover(frame, params.size))
                    written += 1
                    if written % 12 == 0:
                        progress(GENERATION_SHARE + (1 - GENERATION_SHARE)
                                 * written / params.frame_count)

    def _steps(self) -> int:
        sigmas = self.sampling.get("sigmas")
        return len(sigmas) if sigmas else int(self.sampling.get("num_inference_steps", 40))

    def _audio_rate(self) -> int:
        config = self.pipe.vocoder.config
        return int(getattr(config, "output_sampling_rate", 24_000))

    def _after_failure(self) -> None:
        """Leave the pipeline ready for the next job: offload hooks reset, cache freed."""
        self.pipe.maybe_free_model_hooks()
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()


def create_engine(settings: Settings) -> Ltx2Engine:
    """Factory named by the engine registry."""
    return Ltx2Engine(settings)


def _guide_image(guide: Guide, inputs: GenerationInputs) -> Image.Image:
    if guide.image == "start" and inputs.start_image is not None:
        return inputs.start_image
    if guide.image == "end" and inputs.end_image is not None:
        return inputs.end_image
    if guide.image.startswith("element:"):
        frontal = inputs.elements[int(guide.image.partition(":")[2]) - 1].frontal
        if frontal is not None:
            return frontal
    raise EngineError(f"no image for the {guide.image} condition")


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image cropped to the generation's aspect ratio and scaled to its size."""
    return ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)


def _exact_frames(video: Rgb, frames: int) -> Rgb:
    """Exactly ``frames`` frames: the 8k+1 extra is cut; a short clip holds its last frame."""
    if len(video) >= frames:
        return video[:frames]
    hold = np.repeat(video[-1:], frames - len(video), axis=0)
    return np.concatenate([video, hold], axis=0)


def _cover(frame: Rgb, size: tuple[int, int]) -> Rgb:
    """Scale ``frame`` to cover ``size`` and crop the centre: no stretching."""
    width, height = size
    h, w = frame.shape[:2]
    scale = max(width / w, height / h)
    scaled_w, scaled_h = max(width, round(w * scale)), max(height, round(h * scale))
    resized = cv2.resize(frame, (scaled_w, scaled_h), interpolation=cv2.INTER_CUBIC)
    left, top = (scaled_w - width) // 2, (scaled_h - height) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])
