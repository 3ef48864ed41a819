"""``Ltx2Engine``: LTX-2 through diffusers, one generation per shot, muxed to the contract.

The pipelines are loaded once when the engine child starts and kept warm. Each
shot runs the stages of ``recipe.plan_stages``: the base at half resolution, the
x2 latent upsampler and a short refine at the output size rounded up to 64
(``two-stage``), or one stage (``fast``). The decoded frames are cropped to the
output, never upscaled (unless ``REELSERVE_LTX2_LONG_SIDE`` asks for a smaller
render), cut to exactly duration x 24 frames, and the model's own audio is
resampled to 48 kHz with a short crossfade at each cut. Frames go to the encoder one
at a time, converted on a thread ahead of it (``frames.planes_ahead``).
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from reelserve.catalog import JobParams
from reelserve.engines.base import GenerationInputs, ProgressCallback, StopCheck
from reelserve.engines.ltx2.audio import join_shots, to_output_rate
from reelserve.engines.ltx2.frames import ShotFrames, frames_to_host, planes_ahead
from reelserve.engines.ltx2.keyframes import PixelCondition
from reelserve.engines.ltx2.placement import Workload
from reelserve.engines.ltx2.plan import FPS, Guide, ShotJob, guidance_scale, plan_shots
from reelserve.engines.ltx2.profile import ModelProfile, read_model_profile
from reelserve.engines.ltx2.recipe import (
    Geometry,
    Stage,
    plan_stages,
    render_size,
)
from reelserve.engines.ltx2.runtime import (
    Runtime,
    apply_runtime,
    choose_runtime,
    component_bytes,
    import_torch,
    load_components,
)
from reelserve.engines.ltx2.schedule import StageSchedulers
from reelserve.errors import EngineError, EngineUnavailable, Interrupted
from reelserve.media.encode import AUDIO_RATE, Mp4Writer
from reelserve.model_store import resolve_model_path
from reelserve.settings_sections import Ltx2Settings

log = logging.getLogger("reelserve.engines.ltx2")
GENERATION_SHARE = 0.92  # of the progress bar; encoding the MP4 is the rest


class Ltx2Engine:
    """The GPU engine behind ``engine = "ltx2"`` (runs, slowly, on a CPU too)."""

    name = "ltx2"

    def __init__(self, settings: Ltx2Settings) -> None:
        self.settings = settings
        self.torch = import_torch()
        self.model_path = resolve_model_path(settings.models)
        self.profile: ModelProfile = read_model_profile(self.model_path, settings.steps)
        self.two_stage = settings.profile == "two-stage"
        if self.two_stage and not self.profile.has_upsampler:
            raise EngineUnavailable(
                f"{self.model_path} has no latent_upsampler/: the two-stage recipe needs it. "
                "Pull it with `reelserve models pull ltx-2`, or set REELSERVE_LTX2_PROFILE=fast")
        self.pipe, self.upsampler = load_components(
            self.model_path, self.torch, "float32" if settings.dtype == "auto"
            and not self.torch.cuda.is_available() else _load_dtype(settings, self.torch))
        self.geometry = Geometry(self.pipe.vae_spatial_compression_ratio,
                                 self.pipe.vae_temporal_compression_ratio)
        sizes = component_bytes(self.pipe, self.upsampler if self.two_stage else None)
        self.runtime: Runtime = choose_runtime(settings, self.torch, sizes, self._workload())
        if self.profile.refine_lora:
            self.pipe.load_lora_weights(str(self.model_path), adapter_name="distilled",
                                        weight_name=self.profile.refine_lora)
            self.pipe.disable_lora()  # on for the refine stage only
        self.offload_hooks = apply_runtime(self.pipe, self.upsampler if self.two_stage else None,
                                           self.runtime, self.torch)
        log.info("ltx2 %s from %s, %s profile, on %s", self.profile.variant, self.model_path,
                 settings.profile, self.runtime.describe())

    def check_inputs(self, params: JobParams, inputs: GenerationInputs) -> None:
        """Reject an image-to-video request whose images did not arrive decoded."""
        for field_name, url, image in (
            ("start_image_url", params.start_image_url, inputs.start_image),
            ("end_image_url", params.end_image_url, inputs.end_image),
        ):
            if url is not None and image is None:
                raise EngineError(f"{field_name} {url[:80]!r} was given but no decoded "
                                  "image reached the engine")
        if self.settings.long_side % 32:
            raise EngineError(f"REELSERVE_LTX2_LONG_SIDE must be a multiple of 32, "
                              f"not {self.settings.long_side}")

    def stages_for(self, params: JobParams, frames: int) -> list[Stage]:
        """The stages one shot of ``frames`` generated frames runs (what the plan prints)."""
        render = render_size(params.size, self.settings.long_side, self.two_stage,
                             self.geometry)
        return plan_stages(render, frames, self.two_stage, self.profile.base_steps,
                           self.profile.refine_steps, self.geometry)

    def generate(self, params: JobParams, inputs: GenerationInputs, output_path: Path,
                 progress: ProgressCallback, should_stop: StopCheck) -> None:
        """Generate every shot, then write the MP4 at ``output_path``."""
        self.check_inputs(params, inputs)
        shots = plan_shots(params, inputs)
        total = sum(stage.steps for shot in shots
                    for stage in self.stages_for(params, shot.generate_frames))
        done = [0]

        def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if should_stop():
                raise Interrupted("ltx2 generation was stopped")
            done[0] += 1
            progress(GENERATION_SHARE * done[0] / max(1, total))
            return {}

        prompts = PromptCache(self, params.negative_prompt)
        clips: list[ShotFrames] = []
        sounds: list[tuple[npt.NDArray[np.float32], int]] = []
        for shot in shots:
            if should_stop():
                raise Interrupted("ltx2 generation was stopped")
            video, audio, rate = self.render_shot(params, inputs, shot, prompts, on_step)
            clips.append(ShotFrames(video, shot.frames, params.size, self.torch))
            if params.generate_audio:
                sounds.append((to_output_rate(audio, rate), shot.frames * AUDIO_RATE // FPS))
        soundtrack = None
        if params.generate_audio:
            fade = self.settings.crossfade_ms * AUDIO_RATE // 1000
            soundtrack = join_shots(sounds, fade)
        self._write(params, clips, soundtrack, output_path, progress, should_stop)
        progress(1.0)

    def render_shot(self, params: JobParams, inputs: GenerationInputs, shot: ShotJob,
                    prompts: PromptCache, on_step: Any) -> tuple[Any, Any, int]:
        """One shot through every stage: (frames at render size on the CPU, a
        (frames, 3, height, width) tensor; raw audio; its rate)."""
        torch = self.torch
        stages = self.stages_for(params, shot.generate_frames)
        generator = torch.Generator(device="cpu").manual_seed(params.seed + shot.index)
        try:
            with torch.inference_mode():
                output = self._run_stages(params, inputs, shot, stages, prompts, generator,
                                          on_step)
        except torch.OutOfMemoryError as error:
            self._after_failure()
            raise EngineError(
                f"out of GPU memory at {stages[-1].width}x{stages[-1].height} (output "
                f"{params.size[0]}x{params.size[1]}), {shot.generate_frames} frames, running "
                f"the plan: {self.runtime.describe()}; try a shorter duration, "
                "REELSERVE_LTX2_OFFLOAD=sequential, REELSERVE_LTX2_WEIGHTS=fp8 or "
                f"REELSERVE_LTX2_PROFILE=fast: {str(error).splitlines()[0]}") from error
        except Interrupted:
            self._after_failure()
            raise
        # (frames, 3, height, width) in [0, 1]: on a GPU converted to uint8 there, so
        # only a quarter of the bytes cross to the CPU; on the CPU left as they are.
        video = frames_to_host(output.frames[0], torch)
        rate = int(getattr(self.pipe.vocoder.config, "output_sampling_rate", 24_000))
        return video, output.audio[0].float().cpu().numpy(), rate

    def _run_stages(self, params: JobParams, inputs: GenerationInputs, shot: ShotJob,
                    stages: list[Stage], prompts: PromptCache, generator: Any,
                    on_step: Any) -> Any:
        first = stages[0]
        base = self._sampling(self.profile.base, params.cfg_scale)
        embeds = prompts.get(shot.prompt, guided=_guided(base))
        common = {"num_frames": shot.generate_frames, "frame_rate": float(FPS),
                  "generator": generator, "callback_on_step_end": on_step,
                  "max_sequence_length": self.profile.max_sequence_length}
        conditions = shot_conditions(shot, inputs)
        last = "pt" if len(stages) == 1 else "latent"
        self.pipe.scheduler = self.schedulers.for_sampling(base)
        output = self.pipe(conditions=conditions or None, width=first.width, height=first.height,
                           output_type=last, **embeds, **common, **base)
        if len(stages) == 1:
            return output
        refine = stages[-1]
        upsampled = self.upsampler_pipe()(latents=output.frames, latents_normalized=False,
                                          output_type="latent", return_dict=False)[0]
        self._free_cache()
        refine_sampling = self._sampling(self.profile.refine, params.cfg_scale)
        embeds = prompts.get(shot.prompt, guided=_guided(refine_sampling))
        if self.profile.refine_lora:
            self.pipe.enable_lora()
        self.pipe.scheduler = self.schedulers.for_sampling(refine_sampling)
        try:
            return self.pipe(conditions=shot_conditions(shot, inputs) or None,
                             width=refine.width, height=refine.height, latents=upsampled,
                             audio_latents=output.audio, output_type="pt", **embeds, **common,
                             **refine_sampling)
        finally:
            if self.profile.refine_lora:
                self.pipe.disable_lora()

    @cached_property
    def schedulers(self) -> StageSchedulers:
        """Per stage: shifted for a step count, exact for listed sigmas (``schedule.py``)."""
        return StageSchedulers(self.pipe.scheduler)

    def upsampler_pipe(self) -> Any:
        from diffusers import LTX2LatentUpsamplePipeline

        pipeline_class: Any = LTX2LatentUpsamplePipeline  # untyped in diffusers
        pipe = pipeline_class(vae=self.pipe.vae, latent_upsampler=self.upsampler)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def encode_prompt(self, text: str) -> tuple[Any, Any]:
        """(embeddings, attention mask) of one text, without guidance batching."""
        with self.torch.inference_mode():
            embeds, mask, _, _ = self.pipe.encode_prompt(
                prompt=text, do_classifier_free_guidance=False,
                max_sequence_length=self.profile.max_sequence_length,
                device=self.pipe._execution_device)
        for hook in self.offload_hooks:  # the text encoder leaves the GPU once it is done
            hook.offload()
        return embeds, mask

    def _sampling(self, sampling: dict[str, Any], cfg_scale: float) -> dict[str, Any]:
        moved = dict(sampling)
        for key in ("guidance_scale", "audio_guidance_scale"):
            if key in moved:
                moved[key] = guidance_scale(cfg_scale, float(moved[key]))
        return moved

    def _workload(self) -> Workload:
        render = render_size((1920, 1088), self.settings.long_side, self.two_stage,
                             self.geometry)
        stages = plan_stages(render, 121, self.two_stage, 1, 1, self.geometry)
        tokens = max(s.latent_frames * (s.width // self.geometry.spatial)
                     * (s.height // self.geometry.spatial) for s in stages)
        return Workload(tokens, 2 if _guided(self.profile.base) else 1, self.profile.num_layers)

    def _write(self, params: JobParams, clips: list[ShotFrames],
               soundtrack: npt.NDArray[np.float32] | None, output_path: Path,
               progress: ProgressCallback, should_stop: StopCheck) -> None:
        width, height = params.size
        written = 0
        with Mp4Writer(output_path, width, height, frame_count=params.frame_count,
                       audio=soundtrack) as writer:
            frames = planes_ahead(clips)  # shots follow each other with hard cuts
            try:
                for planes in frames:
                    if should_stop():
                        raise Interrupted("ltx2 generation was stopped")
                    writer.write_i420(planes)
                    written += 1
                    if written % 12 == 0:
                        progress(GENERATION_SHARE + (1 - GENERATION_SHARE)
                                 * written / params.frame_count)
            finally:
                frames.close()

    def _free_cache(self) -> None:
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()

    def _after_failure(self) -> None:
        """Leave the pipeline ready for the next job: offload hooks reset, cache freed."""
        self.pipe.maybe_free_model_hooks()
        self._free_cache()


class PromptCache:
    """Embeddings of each text of one job, encoded once: shots and stages that share a
    prompt share its encoding, and the negative prompt is encoded once for all."""

    def __init__(self, engine: Ltx2Engine, negative: str | None) -> None:
        self.engine = engine
        self.negative = negative or ""
        self.found: dict[str, tuple[Any, Any]] = {}

    def get(self, prompt: str, guided: bool) -> dict[str, Any]:
        embeds, mask = self._text(prompt)
        found = {"prompt_embeds": embeds, "prompt_attention_mask": mask}
        if guided:
            negative, negative_mask = self._text(self.negative)
            found.update(negative_prompt_embeds=negative,
                         negative_prompt_attention_mask=negative_mask)
        return found

    def _text(self, text: str) -> tuple[Any, Any]:
        if text not in self.found:
            self.found[text] = self.engine.encode_prompt(text)
        return self.found[text]


def create_engine(settings: Ltx2Settings) -> Ltx2Engine:
    """Factory named by the engine registry."""
    return Ltx2Engine(settings)


def shot_conditions(shot: ShotJob, inputs: GenerationInputs) -> list[Any]:
    """The pipeline's conditions for one shot: each guide's image at its pixel frame.

    The full-resolution image, with no re-encode (crf 0): the pipeline resizes it to
    each stage's size itself, as Lightricks' code does.
    """
    return [PixelCondition(frames=_guide_image(guide, inputs).convert("RGB"),
                           index=0, strength=guide.strength, crf=0,
                           pixel_frame=guide.frame) for guide in shot.guides]


def _guided(sampling: dict[str, Any]) -> bool:
    return float(sampling.get("guidance_scale", 1.0)) > 1.0


def _load_dtype(settings: Ltx2Settings, torch: Any) -> str:
    if settings.dtype != "auto":
        return settings.dtype
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def _guide_image(guide: Guide, inputs: GenerationInputs) -> Image.Image:
    if guide.image == "start" and inputs.start_image is not None:
        return inputs.start_image
    if guide.image == "end" and inputs.end_image is not None:
        return inputs.end_image
    if guide.image.startswith("element:"):
        number, _, reference = guide.image.removeprefix("element:").partition(":")
        element = inputs.elements[int(number) - 1]
        image = element.references[int(reference) - 1] if reference else element.frontal
        if image is not None:
            return image
    raise EngineError(f"no image for the {guide.image} condition")
