"""The settings sections: the part of the settings each component reads.

``Settings`` (``reelserve/settings.py``) builds each one from values it has already
parsed and checked; a component takes its section, never the whole settings, so a
unit test builds one with the few values it cares about.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class FetchSettings:
    """What outbound fetches (input images, webhooks) may reach, and how much they take."""

    allow_networks: tuple[Network, ...]
    max_input_bytes: int
    input_timeout_s: float


@dataclass(frozen=True)
class WebhookSettings:
    """How webhooks are sent: tries, deadlines and the per-key bounds on shared work."""

    backoff_s: tuple[float, ...]
    timeout_s: float
    connect_timeout_s: float
    concurrency: int
    key_concurrency: int
    host_backoff_s: float
    host_backoff_max_s: float
    fetch: FetchSettings


@dataclass(frozen=True)
class StorageSettings:
    """Where output files and input blobs live."""

    outputs_dir: Path
    url: str
    s3_endpoint_url: str
    link_ttl_s: float  # how long a presigned output link lives: the retention


@dataclass(frozen=True)
class StoreSettings:
    """Where jobs, keys and credits live."""

    url: str
    redis_prefix: str
    db_path: Path
    redis_ephemeral: bool
    retention_s: float
    fair_dispatch: bool  # keys take turns by weight; False: one FIFO across keys


@dataclass(frozen=True)
class RateLimitSettings:
    """Submits per key per window; a ``limit`` of 0 turns the limit off."""

    limit: int
    window_s: float


@dataclass(frozen=True)
class ApiSettings:
    """What the API server reads: its URLs, readiness, caps, timeouts and retention."""

    base_url: str  # the absolute base put in the URLs the API hands out
    engine: str  # the engine name submits log (the workers run it)
    worker_stale_s: float  # /readyz wants a worker heartbeat younger than this
    ready_without_workers: bool
    max_body_bytes: int
    max_input_bytes: int
    sync_timeout_s: float
    store_timeout_s: float  # a store call slower than this answers 503
    store_threads: int
    rate_limits: RateLimitSettings
    retention_s: float
    sweep_interval_s: float
    webhooks: WebhookSettings
    fetch: FetchSettings  # voice samples fetched by the API itself


@dataclass(frozen=True)
class ModelSettings:
    """Where model weights live: ``models_dir`` holds pulls; ``model_path`` forces one."""

    models_dir: Path
    model_path: Path | None


@dataclass(frozen=True)
class PreviewSettings:
    """The preview engine takes no options; the section keeps every factory one shape."""


# The words each ltx2 option takes (docs/engines.md, "Settings"); ``Settings`` refuses any
# other at load, naming the variable, so the engine never meets one.
LTX2_CHOICES: dict[str, tuple[str, ...]] = {
    "ltx2_dtype": ("auto", "bfloat16", "float16", "float32"),
    "ltx2_offload": ("auto", "none", "model", "sequential"),
    "ltx2_vae_tiling": ("auto", "on", "off"),
    "ltx2_profile": ("two-stage", "fast"),
    "ltx2_weights": ("auto", "bf16", "fp8"),
    "ltx2_attention": ("sdpa", "flash", "sage"),
    "ltx2_cache": ("off", "first-block"),
}


@dataclass(frozen=True)
class Ltx2Settings:
    """The ltx2 engine's options (``REELSERVE_LTX2_*``, docs/engines.md "Settings")."""

    models: ModelSettings
    device: str  # auto, cuda, cuda:1, cpu
    dtype: str  # auto, bfloat16, float16, float32
    offload: str  # auto, none, model, sequential
    vae_tiling: str  # auto, on, off
    steps: int  # 0 for the model profile's
    long_side: int  # 0 renders at the output's own size
    profile: str  # two-stage or fast
    gpu_memory_gib: float  # 0 for the free memory
    weights: str  # auto, bf16, fp8
    compile: bool
    attention: str  # sdpa, flash, sage
    cache: str  # off, first-block
    cache_threshold: float
    crossfade_ms: int


@dataclass(frozen=True)
class CustomEngineSettings:
    """What an engine named ``module:factory`` receives (docs/engines.md)."""

    data_dir: Path  # a place of its own may go under it
    models: ModelSettings
    device: str  # REELSERVE_LTX2_DEVICE: cuda when ``serve`` pinned the worker to one GPU
    gpu: str  # the GPU index ``serve`` pinned the worker to; empty when not pinned


@dataclass(frozen=True)
class EngineSections:
    """Every engine's own options; ``load_engine`` hands each factory only its own."""

    preview: PreviewSettings
    ltx2: Ltx2Settings
    custom: CustomEngineSettings


@dataclass(frozen=True)
class EngineChildSettings:
    """What the engine child process needs: the engine, and where inputs come from."""

    name: str  # a built-in engine name or ``module:factory``
    engines: EngineSections
    fetch: FetchSettings
    storage: StorageSettings  # inline input images are read back from it


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker reads: leases, attempts, waits, and the engine child it runs."""

    lease_s: float
    lease_renew_s: float  # a running job's lease is renewed this often
    max_attempts: int
    shutdown_grace_s: float
    heartbeat_s: float  # the worker's own liveness heartbeat
    poll_interval_s: float
    wakeups: bool  # False: poll every poll_interval_s instead of waiting for a wake-up
    idle_wait_s: float
    reload_attempts: int
    reload_backoff_s: float
    models: tuple[str, ...] | None  # the slugs it claims; None for all its engine runs
    gpu: str  # the GPU index ``serve`` pinned it to; empty when not pinned
    engine: EngineChildSettings
