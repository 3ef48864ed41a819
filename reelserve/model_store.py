"""Model weights on disk: which variants exist, where they go, what is installed.

A model directory is a diffusers pipeline directory (``model_index.json`` and
one folder per component, ``latent_upsampler/`` included) plus, after a pull,
``reelserve-source.json`` naming the repository and commit it came from. How to
sample it is read from its own files (``engines/ltx2/profile.py``), never its name.

This module never imports torch; ``huggingface_hub`` is imported only to pull.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelserve.errors import EngineUnavailable, ReelserveError
from reelserve.settings_sections import ModelSettings

SOURCE_FILE = "reelserve-source.json"  # the repository and commit a pull came from
# Without square brackets: error lines go through rich, which reads "[gpu]" as markup.
INSTALL_HINT = ('pip install torch diffusers transformers accelerate huggingface_hub '
                '(the "gpu" extra of reelserve)')
# Exactly the diffusers components the engine loads; the repositories also hold
# single-file checkpoints (hundreds of GB) that are never taken.
COMPONENTS = ("model_index.json", "scheduler/*", "text_encoder/*", "tokenizer/*",
              "connectors/*", "transformer/*", "vae/*", "audio_vae/*", "vocoder/*",
              "latent_upsampler/*")


@dataclass(frozen=True)
class Variant:
    """One downloadable set of weights, pinned to a revision."""

    name: str  # also the folder name under the models directory
    repo_id: str
    about: str
    official: bool  # published by Lightricks itself
    allow: tuple[str, ...] = COMPONENTS
    # A branch, tag or commit; pull resolves it to the commit it downloads and
    # records that commit in SOURCE_FILE, so `--revision COMMIT` repeats a pull.
    revision: str = "main"


VARIANTS = {
    "ltx-2": Variant(
        "ltx-2", "Lightricks/LTX-2",
        "LTX-2 19B, full model: guided base stage, refine with the distilled LoRA", True,
        allow=(*COMPONENTS, "ltx-2-19b-distilled-lora-384.safetensors")),
    # Lightricks publishes the distilled weights only as a single-file checkpoint
    # (ltx-2-19b-distilled.safetensors); this is the diffusers layout of it.
    "ltx-2-distilled": Variant(
        "ltx-2-distilled", "rootonchair/LTX-2-19b-distilled",
        "LTX-2 19B distilled: 8 + 3 steps without guidance; a community conversion, "
        "Lightricks publishes no diffusers layout of it", False),
}
MODEL_NAMES = ("ltx-2",)
VARIANT_FLAVOURS = {"full": "ltx-2", "distilled": "ltx-2-distilled"}


@dataclass(frozen=True)
class InstalledModel:
    path: Path
    variant: str
    pipeline: str
    size_bytes: int
    steps: str = "?"


def variant_for(model: str, flavour: str) -> Variant:
    """``models pull ltx-2 --variant distilled`` -> the ``ltx-2-distilled`` variant."""
    if model not in MODEL_NAMES:
        raise ReelserveError(f"unknown model {model!r}; known: {', '.join(MODEL_NAMES)}")
    if flavour not in VARIANT_FLAVOURS:
        raise ReelserveError(
            f"unknown variant {flavour!r}; known: {', '.join(VARIANT_FLAVOURS)}")
    return VARIANTS[VARIANT_FLAVOURS[flavour]]


def resolve_model_path(settings: ModelSettings) -> Path:
    """The model directory the ltx2 engine loads, or ``EngineUnavailable`` naming the fix."""
    if settings.model_path is not None:
        path = settings.model_path
        if not (path / "model_index.json").is_file():
            raise EngineUnavailable(
                f"no LTX-2 model at {path} (model_index.json is missing): download one "
                f"with `reelserve models pull ltx-2 --dir {path}`, or pass --model-path "
                "with a diffusers LTX-2 directory")
        return path
    root = settings.models_dir
    for name in VARIANTS:
        if (root / name / "model_index.json").is_file():
            return root / name
    raise EngineUnavailable(
        f"no LTX-2 weights installed in {root}: run `reelserve models pull ltx-2` "
        "(or `--variant distilled`), or pass --model-path DIR")


def list_installed(settings: ModelSettings) -> list[InstalledModel]:
    """Model directories under the models directory, plus ``model_path`` when set."""
    candidates = []
    root = settings.models_dir
    if root.is_dir():
        candidates = sorted(child for child in root.iterdir() if child.is_dir())
    if settings.model_path is not None:
        candidates.append(settings.model_path)
    found: list[InstalledModel] = []
    for path in dict.fromkeys(candidates):
        index = path / "model_index.json"
        if not index.is_file():
            continue
        from reelserve.engines.ltx2.profile import read_model_profile

        try:
            pipeline = str(json.loads(index.read_text()).get("_class_name", "?"))
            profile = read_model_profile(path)
            variant = profile.variant
            steps = f"{profile.base_steps}+{profile.refine_steps}"
        except (OSError, ValueError, EngineUnavailable):
            pipeline, variant, steps = "unreadable", "?", "?"
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        found.append(InstalledModel(path, variant, pipeline, size, steps))
    return found


@dataclass(frozen=True)
class PullPlan:
    """What a pull will download: the resolved commit and the matching files' sizes."""

    variant: Variant
    commit: str
    files: dict[str, int]

    @property
    def size_bytes(self) -> int:
        return sum(self.files.values())


def plan_pull(variant: Variant, revision: str | None = None) -> PullPlan:
    """Resolve ``revision`` to a commit and list the files the allow patterns take."""
    from fnmatch import fnmatch

    hub = _hub()
    try:
        info = hub.HfApi().model_info(variant.repo_id, revision=revision or variant.revision,
                                      files_metadata=True)
    except (hub.errors.HfHubHTTPError, OSError) as error:
        raise _hub_error(variant, error) from error
    files = {sibling.rfilename: int(sibling.size or 0) for sibling in info.siblings or []
             if any(fnmatch(sibling.rfilename, pattern) for pattern in variant.allow)}
    return PullPlan(variant, str(info.sha), files)


def pull(plan: PullPlan, target: Path) -> Path:
    """Download exactly ``plan``'s files at its commit into ``target``."""
    hub = _hub()
    variant = plan.variant
    target.mkdir(parents=True, exist_ok=True)
    try:
        hub.snapshot_download(variant.repo_id, revision=plan.commit, local_dir=target,
                              allow_patterns=sorted(plan.files))
    except (hub.errors.HfHubHTTPError, OSError) as error:
        raise _hub_error(variant, error) from error
    if not (target / "model_index.json").is_file():
        raise ReelserveError(f"{variant.repo_id} has no model_index.json; nothing usable came")
    source = {"variant": variant.name, "repo_id": variant.repo_id, "revision": plan.commit,
              "official": variant.official}
    (target / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
    return target


def _hub() -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.errors
    except ImportError as error:
        raise ReelserveError(
            f"pulling weights needs huggingface_hub ({error}): {INSTALL_HINT}") from error
    return huggingface_hub


def _hub_error(variant: Variant, error: Exception) -> ReelserveError:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if "offline" in text.lower() or isinstance(error, ConnectionError):
        return ReelserveError(f"cannot download {variant.repo_id}: the hub cannot be reached "
                              f"or offline mode is on (HF_HUB_OFFLINE): {text}")
    if "401" in text or "403" in text or "gated" in text.lower():
        return ReelserveError(f"cannot download {variant.repo_id}: {text}. If the repository "
                              "is gated, accept its license on huggingface.co and set HF_TOKEN")
    return ReelserveError(f"cannot download {variant.repo_id}: {text}")
