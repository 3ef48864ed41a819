"""One typed settings object, built from the environment and the command line.

This is the only module that reads ``os.environ``. Everything else receives its
settings explicitly.

Values are parsed and checked once, when the object is built: a number that makes
no sense (a zero lease, a negative timeout) or a list that does not parse is refused
with ``InvalidSetting`` naming the ``REELSERVE_*`` variable and the rule, so no
component meets a bad value later.

Each component takes only its section, built by a property here: ``settings.api``
(the app factory and its routes), ``settings.worker``, ``settings.store_section``
(``open_store``), ``settings.storage_section`` (``open_storage``),
``settings.webhooks``, ``settings.fetch``, and ``settings.engines`` holding each
engine's own (``settings.ltx2``, the preview's, and ``settings.custom_engine`` for
an engine named ``module:factory``). Only the composition roots (the CLI commands,
``serve_startup``, ``supervisor``) hold a whole ``Settings``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from reelserve.errors import InvalidParameter, InvalidSetting
from reelserve.gpus import parse_gpu_list
from reelserve.settings_sections import (
    LTX2_CHOICES,
    ApiSettings,
    CustomEngineSettings,
    EngineChildSettings,
    EngineSections,
    FetchSettings,
    Ltx2Settings,
    ModelSettings,
    Network,
    PreviewSettings,
    RateLimitSettings,
    StorageSettings,
    StoreSettings,
    WebhookSettings,
    WorkerSettings,
)

ENV_PREFIX = "REELSERVE_"


@dataclass(frozen=True)
class Settings:
    """Everything a reelserve process needs to know, with its defaults.

    Each field can be set by the environment variable ``REELSERVE_<FIELD>``
    (upper case), and the CLI overrides both.
    """

    data_dir: Path = Path("./reelserve-data")
    # Where jobs, keys and credits live: empty for the SQLite file in data_dir, or a
    # redis:// URL shared by several API servers and workers (keys under redis_prefix).
    store: str = ""
    redis_prefix: str = "reelserve"
    # Where output MP4s go; empty for <data_dir>/outputs. Servers and workers on
    # several machines point this at one shared disk.
    output_dir: str = ""
    # Empty for output_dir, or s3://BUCKET/PREFIX (with s3_endpoint_url for an
    # S3-compatible server); credentials come from boto3's usual AWS_* variables.
    storage: str = ""
    s3_endpoint_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # The absolute base the API puts in URLs it hands out; derived from host and
    # port when empty. Set it when the service sits behind a proxy.
    public_url: str = ""
    workers: int = 1
    engine: str = "preview"
    # Seconds a finished job (status, body and file) stays answerable.
    retention_s: float = 3600.0
    sync_timeout_s: float = 600.0
    lease_s: float = 30.0
    max_attempts: int = 3
    # On SIGTERM a worker lets its job finish this long, then hands it back.
    shutdown_grace_s: float = 60.0
    # Workers write a heartbeat this often; /readyz wants one younger than worker_stale_s.
    worker_heartbeat_s: float = 1.0
    worker_stale_s: float = 10.0
    # Ready with no live worker: for API servers whose workers run elsewhere, on purpose.
    ready_without_workers: bool = False
    # How often an idle worker looks for a job; bounds dispatch latency.
    poll_interval_s: float = 0.02
    sweep_interval_s: float = 30.0
    # Submits per key per window; 0 turns the limit off.
    rate_limit: int = 120
    rate_window_s: float = 60.0
    starting_credits: float = 100.0
    # Seconds between webhook tries (the count of entries is the number of retries):
    # about 2.7 hours in all by default.
    webhook_backoff_s: str = "5,30,120,600,1800,3600,3600"
    webhook_timeout_s: float = 10.0
    max_input_bytes: int = 50 * 1024 * 1024
    input_timeout_s: float = 30.0
    # Networks input fetches (and later webhooks) may reach besides public addresses,
    # comma-separated CIDRs such as "10.0.0.0/8,::1/128"; empty keeps loopback and
    # private networks off.
    fetch_allow_cidrs: str = ""
    # Largest JSON body a submit may send: a 50 MB image as a base64 data: URL fits.
    max_body_bytes: int = 72 * 1024 * 1024
    # The ltx2 engine (docs/engines.md). model_path: a diffusers LTX-2 directory; empty
    # for the first one `reelserve models pull` put in models_dir (<data_dir>/models).
    model_path: str = ""
    models_dir: str = ""
    # "auto" picks from the device and its free memory; each can be forced.
    ltx2_device: str = "auto"  # auto, cuda, cuda:1, cpu
    ltx2_dtype: str = "auto"  # auto, bfloat16, float16, float32
    ltx2_offload: str = "auto"  # auto, none, model, sequential
    ltx2_vae_tiling: str = "auto"  # auto, on, off
    ltx2_steps: int = 0  # denoising steps; 0 for the model profile's
    # Width of a 16:9 generation (others keep its area); 0 renders at the output's own
    # size rounded up to 32 and crops, the true-1080p recipe. Smaller values are for tests
    # and previews: their frames are scaled up to the output.
    ltx2_long_side: int = 0
    # ltx2 engine (docs/engines.md, "Settings"): recipe and speed options.
    ltx2_profile: str = "two-stage"  # two-stage (1080p recipe) or fast (one stage)
    ltx2_gpu_memory_gib: float = 0.0  # plan for this much GPU memory; 0 for the free memory
    ltx2_weights: str = "auto"  # auto, bf16, fp8: weight storage of the transformer
    ltx2_compile: bool = False  # torch.compile the repeated transformer blocks
    ltx2_attention: str = "sdpa"  # sdpa, flash, sage (diffusers attention backends)
    ltx2_cache: str = "off"  # off, first-block: diffusers' first-block cache
    ltx2_cache_threshold: float = 0.05  # first-block cache: relative change that reruns
    ltx2_crossfade_ms: int = 20  # audio crossfade at each multi_prompt cut

    # store
    # A Redis store without AOF (persistence off or RDB snapshots only) is accepted
    # without a warning: for tests and demos whose data may be lost on purpose.
    redis_ephemeral: bool = False

    # first hour
    # GPUs `serve` pins one worker each to: "0,2,5"; empty for every GPU NVML finds when
    # the engine is ltx2 (none otherwise); "none" for no pinning (reelserve/gpus.py).
    gpus: str = ""
    # The GPU index this worker was pinned to by `serve`; empty when not pinned.
    worker_gpu: str = ""

    # hardening: per-key bounds on shared work (docs/security.md lists each one)
    # Webhook sends at once per API server, and at most this many for one key.
    webhook_concurrency: int = 16
    webhook_key_concurrency: int = 2
    # A receiver must accept the connection (and TLS) this fast; webhook_timeout_s
    # still bounds the whole call.
    webhook_connect_timeout_s: float = 3.0
    # After a failed call, a key's destination host rests this long, doubling per
    # failure up to webhook_host_backoff_max_s; its deliveries wait without a sender slot.
    webhook_host_backoff_s: float = 5.0
    webhook_host_backoff_max_s: float = 300.0

    # api
    # A store call from the API that takes longer than this answers 503 with
    # Retry-After (the call itself may still finish later); /healthz never waits on it.
    api_store_timeout_s: float = 5.0
    # Threads the API lends to store calls that may block (every Redis call, SQLite writes).
    api_store_threads: int = 32

    # scheduling (docs/contract-decisions.md, "Scheduling")
    # The models this worker claims, comma-separated slugs; empty: all its engine runs.
    worker_models: str = ""
    # Keys take turns by weight; false: one FIFO across keys (kept for comparison).
    fair_dispatch: bool = True
    # Idle workers block on a wake-up signal and look at the queue at least this often.
    idle_wait_s: float = 1.0
    # false: idle workers poll the store every poll_interval_s instead (as before).
    worker_wakeups: bool = True
    # An engine that dies mid-job is reloaded; a failed reload is retried this many
    # times, waiting engine_reload_backoff_s and doubling, before the worker gives up.
    engine_reload_attempts: int = 6
    engine_reload_backoff_s: float = 1.0

    def __post_init__(self) -> None:
        _check(self)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "reelserve.sqlite3"

    @property
    def metrics_dir(self) -> Path:
        return self.data_dir / "metrics"

    @property
    def outputs_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else self.data_dir / "outputs"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def worker_model_slugs(self) -> tuple[str, ...] | None:
        """``worker_models`` as a tuple of slugs, or None for every model."""
        slugs = tuple(slug.strip() for slug in self.worker_models.split(",") if slug.strip())
        return slugs or None

    @property
    def heartbeat_s(self) -> float:
        return max(self.lease_s / 3.0, 0.05)

    # Sections: the part of the settings each component reads.
    @property
    def api(self) -> ApiSettings:
        return ApiSettings(
            base_url=self.base_url, engine=self.engine, worker_stale_s=self.worker_stale_s,
            ready_without_workers=self.ready_without_workers,
            max_body_bytes=self.max_body_bytes, max_input_bytes=self.max_input_bytes,
            sync_timeout_s=self.sync_timeout_s, store_timeout_s=self.api_store_timeout_s,
            store_threads=self.api_store_threads, rate_limits=self.rate_limits,
            retention_s=self.retention_s, sweep_interval_s=self.sweep_interval_s,
            webhooks=self.webhooks, fetch=self.fetch)

    @property
    def rate_limits(self) -> RateLimitSettings:
        return RateLimitSettings(limit=self.rate_limit, window_s=self.rate_window_s)

    @property
    def worker(self) -> WorkerSettings:
        return WorkerSettings(
            lease_s=self.lease_s, lease_renew_s=self.heartbeat_s,
            max_attempts=self.max_attempts, shutdown_grace_s=self.shutdown_grace_s,
            heartbeat_s=self.worker_heartbeat_s, poll_interval_s=self.poll_interval_s,
            wakeups=self.worker_wakeups, idle_wait_s=self.idle_wait_s,
            reload_attempts=self.engine_reload_attempts,
            reload_backoff_s=self.engine_reload_backoff_s, models=self.worker_model_slugs,
            gpu=self.worker_gpu, engine=self.engine_child)

    @property
    def engine_child(self) -> EngineChildSettings:
        return EngineChildSettings(name=self.engine, engines=self.engines, fetch=self.fetch,
                                   storage=self.storage_section)

    @property
    def engines(self) -> EngineSections:
        return EngineSections(preview=PreviewSettings(), ltx2=self.ltx2,
                              custom=self.custom_engine)

    @property
    def models(self) -> ModelSettings:
        return ModelSettings(
            models_dir=Path(self.models_dir) if self.models_dir else self.data_dir / "models",
            model_path=Path(self.model_path).expanduser() if self.model_path else None)

    @property
    def ltx2(self) -> Ltx2Settings:
        return Ltx2Settings(
            models=self.models, device=self.ltx2_device, dtype=self.ltx2_dtype,
            offload=self.ltx2_offload, vae_tiling=self.ltx2_vae_tiling, steps=self.ltx2_steps,
            long_side=self.ltx2_long_side, profile=self.ltx2_profile,
            gpu_memory_gib=self.ltx2_gpu_memory_gib, weights=self.ltx2_weights,
            compile=self.ltx2_compile, attention=self.ltx2_attention, cache=self.ltx2_cache,
            cache_threshold=self.ltx2_cache_threshold, crossfade_ms=self.ltx2_crossfade_ms)

    @property
    def custom_engine(self) -> CustomEngineSettings:
        return CustomEngineSettings(data_dir=self.data_dir, models=self.models,
                                    device=self.ltx2_device, gpu=self.worker_gpu)

    @property
    def webhooks(self) -> WebhookSettings:
        return WebhookSettings(
            backoff_s=parse_seconds_list("webhook_backoff_s", self.webhook_backoff_s),
            timeout_s=self.webhook_timeout_s, connect_timeout_s=self.webhook_connect_timeout_s,
            concurrency=self.webhook_concurrency, key_concurrency=self.webhook_key_concurrency,
            host_backoff_s=self.webhook_host_backoff_s,
            host_backoff_max_s=self.webhook_host_backoff_max_s, fetch=self.fetch)

    @property
    def fetch(self) -> FetchSettings:
        return FetchSettings(
            allow_networks=parse_networks("fetch_allow_cidrs", self.fetch_allow_cidrs),
            max_input_bytes=self.max_input_bytes, input_timeout_s=self.input_timeout_s)

    @property
    def storage_section(self) -> StorageSettings:
        return StorageSettings(outputs_dir=self.outputs_dir, url=self.storage,
                               s3_endpoint_url=self.s3_endpoint_url,
                               link_ttl_s=self.retention_s)

    @property
    def store_section(self) -> StoreSettings:
        return StoreSettings(url=self.store, redis_prefix=self.redis_prefix, db_path=self.db_path,
                             redis_ephemeral=self.redis_ephemeral, retention_s=self.retention_s,
                             fair_dispatch=self.fair_dispatch)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; ``None`` values are ignored."""
        given = {name: value for name, value in overrides.items() if value is not None}
        if "data_dir" in given:
            given["data_dir"] = Path(given["data_dir"])
        return replace(self, **given)


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``REELSERVE_*`` variables, defaults for the rest."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in fields(Settings):
        raw = env.get(ENV_PREFIX + field.name.upper())
        if raw is None:
            continue
        values[field.name] = _parse(field.name, str(field.type), raw)
    return Settings(**values)


def _variable(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _parse(name: str, kind: str, raw: str) -> Any:
    if kind == "Path":
        return Path(raw)
    if kind == "bool":
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise InvalidSetting(_variable(name), f"must be true or false, not {raw!r}")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise InvalidSetting(_variable(name), f"must be a number, not {raw!r}") from None
    return raw


# What makes sense for each number; a field not named here takes any value.
_AT_LEAST_ONE = frozenset({
    "max_attempts", "api_store_threads", "webhook_concurrency", "webhook_key_concurrency",
    "engine_reload_attempts",
})
_POSITIVE = frozenset({
    "retention_s", "sync_timeout_s", "lease_s", "worker_heartbeat_s", "worker_stale_s",
    "poll_interval_s", "sweep_interval_s", "rate_window_s", "webhook_timeout_s",
    "max_input_bytes", "input_timeout_s", "max_body_bytes", "webhook_connect_timeout_s",
    "webhook_host_backoff_s", "webhook_host_backoff_max_s", "api_store_timeout_s",
    "ltx2_cache_threshold", "idle_wait_s",
})
_NOT_NEGATIVE = frozenset({
    "workers", "shutdown_grace_s", "rate_limit", "starting_credits", "ltx2_steps",
    "ltx2_long_side", "ltx2_gpu_memory_gib", "ltx2_crossfade_ms", "engine_reload_backoff_s",
})


def _check(settings: Settings) -> None:
    """Refuse values that make no sense, naming the variable and the rule."""
    for field in fields(settings):
        value = getattr(settings, field.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if field.name in _AT_LEAST_ONE and value < 1:
            raise InvalidSetting(_variable(field.name), f"must be at least 1, not {value}")
        if field.name in _POSITIVE and not value > 0:
            raise InvalidSetting(_variable(field.name), f"must be more than 0, not {value}")
        if field.name in _NOT_NEGATIVE and value < 0:
            raise InvalidSetting(_variable(field.name), f"must not be negative, not {value}")
    if not 0 <= settings.port < 65536:
        raise InvalidSetting(_variable("port"),
                             f"must be a TCP port (0-65535), not {settings.port}")
    for name, choices in LTX2_CHOICES.items():
        if getattr(settings, name) not in choices:
            raise InvalidSetting(_variable(name), f"must be one of {', '.join(choices)}, "
                                 f"not {getattr(settings, name)!r}")
    if not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", settings.ltx2_device):
        raise InvalidSetting(_variable("ltx2_device"), "must be auto, cpu, cuda or cuda:N, "
                             f"not {settings.ltx2_device!r}")
    parse_seconds_list("webhook_backoff_s", settings.webhook_backoff_s)
    parse_networks("fetch_allow_cidrs", settings.fetch_allow_cidrs)
    try:
        parse_gpu_list(settings.gpus)
    except InvalidParameter as error:
        raise InvalidSetting(_variable("gpus"), error.rule) from None


def parse_seconds_list(name: str, raw: str) -> tuple[float, ...]:
    """``"5,30,120"`` as seconds, each more than 0; ``InvalidSetting`` naming ``name``."""
    try:
        values = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise InvalidSetting(_variable(name), f"must be seconds separated by commas, not {raw!r}"
                             ) from None
    if any(not value > 0 for value in values):
        raise InvalidSetting(_variable(name), f"each entry must be more than 0: {raw!r}")
    return values


def parse_networks(name: str, raw: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs; ``InvalidSetting`` naming ``name`` for one that is not."""
    networks: list[Network] = []
    for part in (item.strip() for item in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise InvalidSetting(_variable(name), f"{part!r} is not a network such as "
                                 "10.0.0.0/8 or ::1/128") from None
    return tuple(networks)


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The ``REELSERVE_*`` variables that rebuild ``settings`` in a child process."""
    return {ENV_PREFIX + field.name.upper(): str(getattr(settings, field.name))
            for field in fields(Settings)}


# The sections are importable from here too, as they were before they had a module.
__all__ = [
    "ENV_PREFIX", "ApiSettings", "CustomEngineSettings", "EngineChildSettings", "EngineSections",
    "FetchSettings", "Ltx2Settings", "ModelSettings", "Network", "PreviewSettings",
    "RateLimitSettings", "Settings", "StorageSettings", "StoreSettings", "WebhookSettings",
    "WorkerSettings", "parse_networks", "parse_seconds_list", "settings_from_env",
    "settings_to_env",
]
