"""Model weights on disk: which variants exist, where they go, what is installed.

A model directory is a diffusers pipeline directory (``model_index.json`` and
one folder per component) plus ``reelserve-ltx2.json``, the sampling profile the
engine uses for it (steps, guidance, ...). ``reelserve models pull`` writes both;
a directory downloaded by hand without a profile gets its variant's defaults.

This module never imports torch; ``huggingface_hub`` is imported only to pull.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelserve.errors import EngineUnavailable, ReelserveError
from reelserve.settings import Settings

PROFILE_FILE = "reelserve-ltx2.json"
# Without square brackets: error lines go through rich, which reads "[gpu]" as markup.
INSTALL_HINT = ('pip install torch diffusers transformers accelerate huggingface_hub '
                '(the "gpu" extra of reelserve)')

# The sampling defaults come from diffusers' LTX-2 documentation and docstrings:
# 40 steps at guidance 4 for the full model, STG on block 29 and the legacy
# (non-cross) timestep for LTX-2.0; 8 fixed sigmas without guidance for the
# distilled checkpoint (``diffusers.pipelines.ltx2.utils.DISTILLED_SIGMA_VALUES``).
FULL_SAMPLING: dict[str, Any] = {
    "num_inference_steps": 40,
    "guidance_scale": 4.0,
    "stg_scale": 1.0,
    "spatio_temporal_guidance_blocks": [29],
    "modality_scale": 3.0,
    "guidance_rescale": 0.7,
    "audio_guidance_scale": 7.0,
    "audio_stg_scale": 1.0,
    "audio_modality_scale": 3.0,
    "use_cross_timestep": False,
}
DISTILLED_SAMPLING: dict[str, Any] = {
    "num_inference_steps": 8,
    "sigmas": [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875],
    "guidance_scale": 1.0,
    "stg_scale": 0.0,
    "modality_scale": 1.0,
    "guidance_rescale": 0.0,
    "audio_guidance_scale": 1.0,
    "audio_stg_scale": 0.0,
    "audio_modality_scale": 1.0,
    "use_cross_timestep": False,
}


@dataclass(frozen=True)
class Variant:
    """One downloadable set of weights."""

    name: str  # also the folder name under the models directory
    repo_id: str
    sampling: dict[str, Any]
    about: str
    # Only the diffusers components (files in folders): the repositories also hold
    # single-file checkpoints and LoRAs at their root (hundreds of GB) and a latent
    # upsampler that this engine does not use.
    allow: tuple[str, ...] = ("model_index.json", "*/*")
    ignore: tuple[str, ...] = ("latent_upsampler/*",)


VARIANTS = {
    "ltx-2": Variant("ltx-2", "Lightricks/LTX-2", FULL_SAMPLING,
                     "LTX-2 19B, full model: best quality, 40 steps with guidance"),
    "ltx-2-distilled": Variant("ltx-2-distilled", "rootonchair/LTX-2-19b-distilled",
                               DISTILLED_SAMPLING,
                               "LTX-2 19B distilled: 8 steps, no guidance, several times faster"),
}
MODEL_NAMES = ("ltx-2",)
VARIANT_FLAVOURS = {"full": "ltx-2", "distilled": "ltx-2-distilled"}


@dataclass(frozen=True)
class InstalledModel:
    path: Path
    variant: str
    pipeline: str
    size_bytes: int
    sampling: dict[str, Any] = field(default_factory=dict)


def models_dir(settings: Settings) -> Path:
    return Path(settings.models_dir) if settings.models_dir else settings.data_dir / "models"


def variant_for(model: str, flavour: str) -> Variant:
    """``models pull ltx-2 --variant distilled`` -> the ``ltx-2-distilled`` variant."""
    if model not in MODEL_NAMES:
        raise ReelserveError(f"unknown model {model!r}; known: {', '.join(MODEL_NAMES)}")
    if flavour not in VARIANT_FLAVOURS:
        raise ReelserveError(
            f"unknown variant {flavour!r}; known: {', '.join(VARIANT_FLAVOURS)}")
    return VARIANTS[VARIANT_FLAVOURS[flavour]]


def resolve_model_path(settings: Settings) -> Path:
    """The model directory the ltx2 engine loads, or ``EngineUnavailable`` naming the fix."""
    if settings.model_path:
        path = Path(settings.model_path).expanduser()
        if not (path / "model_index.json").is_file():
            raise EngineUnavailable(
                f"no LTX-2 model at {path} (model_index.json is missing): download one "
                f"with `reelserve models pull ltx-2 --dir {path}`, or pass --model-path "
                "with a diffusers LTX-2 directory")
        return path
    root = models_dir(settings)
    for name in VARIANTS:
        if (root / name / "model_index.json").is_file():
            return root / name
    raise EngineUnavailable(
        f"no LTX-2 weights installed in {root}: run `reelserve models pull ltx-2` "
        "(or `--variant distilled`), or pass --model-path DIR")


def read_profile(path: Path) -> dict[str, Any]:
    """The sampling profile of a model directory; the variant's defaults when absent."""
    profile_file = path / PROFILE_FILE
    if profile_file.is_file():
        try:
            data = json.loads(profile_file.read_text())
        except (OSError, ValueError) as error:
            raise EngineUnavailable(f"{profile_file} is not valid JSON: {error}") from error
        sampling = data.get("sampling") if isinstance(data, dict) else None
        if not isinstance(sampling, dict):
            raise EngineUnavailable(f"{profile_file} has no \"sampling\" object")
        return {"variant": str(data.get("variant", "custom")), "sampling": sampling}
    guess = VARIANTS["ltx-2-distilled" if "distill" in path.name.lower() else "ltx-2"]
    return {"variant": guess.name, "sampling": dict(guess.sampling)}


def write_profile(path: Path, variant: Variant) -> None:
    profile = {"variant": variant.name, "repo_id": variant.repo_id, "sampling": variant.sampling}
    (path / PROFILE_FILE).write_text(json.dumps(profile, indent=2) + "\n")


def list_installed(settings: Settings) -> list[InstalledModel]:
    """Model directories under the models directory, plus ``model_path`` when set."""
    candidates = []
    root = models_dir(settings)
    if root.is_dir():
        candidates = sorted(child for child in root.iterdir() if child.is_dir())
    if settings.model_path:
        candidates.append(Path(settings.model_path).expanduser())
    found: list[InstalledModel] = []
    for path in dict.fromkeys(candidates):
        index = path / "model_index.json"
        if not index.is_file():
            continue
        try:
            pipeline = str(json.loads(index.read_text()).get("_class_name", "?"))
            profile = read_profile(path)
        except (OSError, ValueError, EngineUnavailable):
            pipeline, profile = "unreadable", {"variant": "?", "sampling": {}}
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        found.append(InstalledModel(path, profile["variant"], pipeline, size,
                                    profile["sampling"]))
    return found


def pull(variant: Variant, target: Path) -> Path:
    """Download ``variant``'s diffusers components into ``target`` and write its profile."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as error:
        raise ReelserveError(
            f"pulling weights needs huggingface_hub ({error}): {INSTALL_HINT}") from error
    target.mkdir(parents=True, exist_ok=True)
    try:
        snapshot_download(variant.repo_id, local_dir=target, allow_patterns=list(variant.allow),
                          ignore_patterns=list(variant.ignore))
    except LocalEntryNotFoundError as error:
        raise ReelserveError(
            f"cannot download {variant.repo_id}: the hub cannot be reached or offline mode "
            f"is on (HF_HUB_OFFLINE): {error}") from error
    except HfHubHTTPError as error:
        raise ReelserveError(
            f"cannot download {variant.repo_id}: {error}. If the repository is gated, accept "
            "its license on huggingface.co and set HF_TOKEN") from error
    except OSError as error:
        raise ReelserveError(f"cannot write {target}: {error}") from error
    if not (target / "model_index.json").is_file():
        raise ReelserveError(f"{variant.repo_id} has no model_index.json; nothing usable came")
    write_profile(target, variant)
    return target
