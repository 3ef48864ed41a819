"""Where each component lives on a GPU of a given size, and the peak memory that gives.

Candidates are tried from fastest to leanest; the first whose estimated peak fits
the GPU is the plan, and the engine runs exactly it:

1. everything resident in bf16;
2. the text encoder offloaded (moved to the GPU for the prompt, once per job);
3. ... and the transformer stored in FP8 (computed in bf16);
4. the text encoder group-offloaded (blocks streamed) instead, FP8 transformer resident;
5. the transformer group-offloaded too.

Nothing fits: ``PlanDoesNotFit`` names the GiB the leanest candidate needs.

The peak is an estimate: resident weights, plus the weights a phase brings in, plus
that phase's working memory (see ``working_gib``), plus a CUDA context and 5% for
fragmentation. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelserve.errors import EngineUnavailable
from reelserve.settings_sections import LTX2_CHOICES

GIB = 1024**3
CONTEXT_GIB = 1.5  # CUDA context, cuBLAS workspaces, the allocator's slack
FRAGMENTATION = 0.05
STREAMED_BLOCKS = 2  # group offload with streams keeps about two blocks on the GPU
HIDDEN = 4096  # the transformer's width
ACTIVATION_COPIES = 12  # live hidden-state-sized tensors in a block (attention, FFN x4, ...)
DECODE_GIB = 4.0  # tiled VAE decode of a 1080p clip
PLACEMENTS = ("gpu", "offload", "group-offload")
# The components each phase runs, by model_index.json name.
PHASES = {
    "prompt": ("text_encoder", "connectors"),
    "denoise": ("transformer",),
    "upsample": ("latent_upsampler",),
    "decode": ("vae", "audio_vae", "vocoder"),
}


class PlanDoesNotFit(EngineUnavailable):
    """No placement fits the GPU: the message names the GiB needed."""

    def __init__(self, needed_gib: float, available_gib: float) -> None:
        super().__init__(f"LTX-2 needs at least {needed_gib:.1f} GiB of GPU memory with every "
                         f"component offloaded; this GPU has {available_gib:.1f} GiB")
        self.needed_gib = needed_gib
        self.available_gib = available_gib


@dataclass(frozen=True)
class Placement:
    """Where each component lives, how its weights are stored, and the peak it gives."""

    where: dict[str, str]  # component -> gpu / offload / group-offload
    storage: dict[str, str]  # component -> bf16 / fp8
    peak_gib: float


@dataclass(frozen=True)
class Workload:
    """What the largest phase of a job asks for, beyond the weights."""

    denoise_tokens: int  # video tokens of the largest stage
    denoise_batch: int  # 2 with classifier-free guidance, else 1
    num_layers: int = 48


def working_gib(phase: str, work: Workload) -> float:
    if phase == "denoise":
        bytes_ = work.denoise_tokens * HIDDEN * 2 * work.denoise_batch * ACTIVATION_COPIES
        return 1.0 + bytes_ / GIB
    if phase == "decode":
        return DECODE_GIB
    return 1.0


def peak_gib(sizes: dict[str, int], where: dict[str, str], storage: dict[str, str],
             work: Workload) -> float:
    """The estimated peak GPU memory of ``where``/``storage`` for ``work``."""
    stored = {name: size / (2 if storage.get(name) == "fp8" else 1) / GIB
              for name, size in sizes.items()}
    resident = sum(stored[name] for name in sizes if where[name] == "gpu")
    peak = 0.0
    for phase, names in PHASES.items():
        brought = 0.0
        for name in names:
            if name not in sizes or where[name] == "gpu":
                continue
            layers = work.num_layers if name == "transformer" else 48
            brought += stored[name] if where[name] == "offload" else (
                stored[name] * STREAMED_BLOCKS / layers)
        peak = max(peak, resident + brought + working_gib(phase, work))
    return (peak + CONTEXT_GIB) * (1 + FRAGMENTATION)


def candidates(names: list[str]) -> list[tuple[dict[str, str], dict[str, str]]]:
    """(where, storage) from fastest to leanest, as the module docstring lists them."""
    def layout(**changes: str) -> dict[str, str]:
        return {name: changes.get(name, "gpu") for name in names}

    bf16 = {name: "bf16" for name in names}
    fp8 = {**bf16, "transformer": "fp8"}
    return [
        (layout(), bf16),
        (layout(text_encoder="offload"), bf16),
        (layout(text_encoder="offload"), fp8),
        (layout(text_encoder="group-offload"), fp8),
        (layout(text_encoder="group-offload", transformer="group-offload"), fp8),
    ]


def choose_placement(sizes: dict[str, int], gpu_gib: float, work: Workload,
                     weights: str = "auto") -> Placement:
    """The first candidate that fits ``gpu_gib`` (``weights``: auto, bf16 or fp8)."""
    words = LTX2_CHOICES["ltx2_weights"]  # the settings check the same words at load
    if weights not in words:
        raise EngineUnavailable(f"REELSERVE_LTX2_WEIGHTS must be one of {', '.join(words)}, "
                                f"not {weights!r}")
    options = []
    for where, storage in candidates(list(sizes)):
        if weights != "auto":
            storage = {**storage, "transformer": weights}
        if (where, storage) not in options:
            options.append((where, storage))
    leanest = 0.0
    for where, storage in options:
        peak = peak_gib(sizes, where, storage, work)
        if peak <= gpu_gib:
            return Placement(where, storage, round(peak, 1))
        leanest = peak
    raise PlanDoesNotFit(leanest, gpu_gib)


def forced_placement(sizes: dict[str, int], offload: str, work: Workload,
                     weights: str = "bf16") -> Placement:
    """REELSERVE_LTX2_OFFLOAD forced: none, model (all offloaded) or sequential (all
    group-offloaded), whatever the GPU."""
    kind = {"none": "gpu", "model": "offload", "sequential": "group-offload"}[offload]
    where = {name: kind for name in sizes}
    storage = {name: "bf16" for name in sizes}
    if weights == "fp8":
        storage["transformer"] = "fp8"
    return Placement(where, storage, round(peak_gib(sizes, where, storage, work), 1))
