"""Each component takes only its settings section; only the composition roots hold all.

The sections are built from the environment through ``Settings``, so a bad value in
one still names its ``REELSERVE_*`` variable.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import reelserve
from reelserve.api.app import build_context, create_app
from reelserve.api.sweeping import sweep_forever
from reelserve.engine_process import EngineProcess, engine_main
from reelserve.engines import load_engine
from reelserve.engines.preview import create_engine as create_preview
from reelserve.errors import InvalidSetting
from reelserve.jobs.backends import open_rate_limiter, open_store
from reelserve.media.inputs import ImageFetcher
from reelserve.model_store import list_installed, resolve_model_path
from reelserve.settings import settings_from_env, settings_to_env
from reelserve.settings_sections import (
    ApiSettings,
    CustomEngineSettings,
    EngineChildSettings,
    EngineSections,
    FetchSettings,
    Ltx2Settings,
    ModelSettings,
    PreviewSettings,
    RateLimitSettings,
    StorageSettings,
    StoreSettings,
    WebhookSettings,
    WorkerSettings,
)
from reelserve.storage import open_storage
from reelserve.webhooks import WebhookSender
from reelserve.worker import Worker
from reelserve.worker_lease import WorkerTiming

PACKAGE = Path(reelserve.__file__).parent
# The modules that build a whole Settings from the environment and the command line and
# hand each component its section. Every other module sees sections only.
COMPOSITION_ROOTS = frozenset({
    "settings.py", "cli.py", "cli_store.py", "cli_status.py", "cli_models.py",
    "serve_startup.py", "supervisor.py", "__main__.py",
})
ROOT_MODULES = frozenset(f"reelserve.{name.removesuffix('.py')}" for name in COMPOSITION_ROOTS)


def whole_settings_uses(source: str) -> list[str]:
    """Where ``source`` imports or names the whole ``Settings``, or a composition root."""
    return [f"line {node.lineno}: {ast.unparse(node)[:80]}"
            for node in ast.walk(ast.parse(source)) if _reaches_whole_settings(node)]


def _reaches_whole_settings(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        if node.module == "reelserve":
            return any(f"reelserve.{alias.name}" in ROOT_MODULES for alias in node.names)
        return node.module in ROOT_MODULES
    if isinstance(node, ast.Import):
        return any(alias.name in ROOT_MODULES for alias in node.names)
    if isinstance(node, ast.Name):
        return node.id == "Settings"
    if isinstance(node, ast.Attribute):
        return node.attr == "Settings"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        return node.value.replace(" ", "") in {"Settings", "Settings|None"}
    return False


def component_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py")
                  if str(path.relative_to(PACKAGE)) not in COMPOSITION_ROOTS)


@pytest.mark.parametrize("path", component_modules(),
                         ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_component_imports_or_names_the_whole_settings(path: Path) -> None:
    assert whole_settings_uses(path.read_text()) == []


@pytest.mark.parametrize("source", [
    "from reelserve.settings import Settings\n",
    "from reelserve.settings import settings_from_env\n",
    "from reelserve import settings\n",
    "import reelserve.settings\n",
    "from reelserve.cli_store import settings_with\n",
    "def open_store(settings: 'Settings') -> None: ...\n",
    "def f(s: reelserve.settings.Settings) -> None: ...\n",
])
def test_the_check_catches_a_component_given_the_whole_settings(source: str) -> None:
    assert whole_settings_uses(source) != []


def test_the_check_lets_sections_through() -> None:
    assert whole_settings_uses(
        "from reelserve.settings_sections import StoreSettings\n"
        "def open_store(settings: StoreSettings) -> None: ...\n") == []


def _annotation(function: Callable[..., Any], parameter: str) -> Any:
    """The object a parameter's annotation names, looked up in the function's module."""
    annotation = inspect.signature(function).parameters[parameter].annotation
    module = importlib.import_module(function.__module__)
    return vars(module)[annotation] if isinstance(annotation, str) else annotation


@pytest.mark.parametrize(("function", "parameter", "section"), [
    (open_store, "settings", StoreSettings),
    (open_rate_limiter, "limits", RateLimitSettings),
    (open_storage, "settings", StorageSettings),
    (create_app, "settings", ApiSettings),
    (build_context, "settings", ApiSettings),
    (sweep_forever, "settings", ApiSettings),
    (Worker.__init__, "settings", WorkerSettings),
    (WorkerTiming.from_settings, "settings", WorkerSettings),
    (EngineProcess.__init__, "settings", EngineChildSettings),
    (engine_main, "settings", EngineChildSettings),
    (load_engine, "sections", EngineSections),
    (create_preview, "settings", PreviewSettings),
    (resolve_model_path, "settings", ModelSettings),
    (list_installed, "settings", ModelSettings),
    (WebhookSender.__init__, "settings", WebhookSettings),
    (ImageFetcher.from_settings, "fetch", FetchSettings),
], ids=lambda value: getattr(value, "__qualname__", None))
def test_each_factory_takes_its_own_section(
        function: Callable[..., Any], parameter: str, section: type) -> None:
    assert _annotation(function, parameter) is section


def test_the_ltx2_engine_factories_take_the_ltx2_section() -> None:
    from reelserve.engines import ltx2
    from reelserve.engines.ltx2 import runtime

    assert _annotation(ltx2.create_engine, "settings") is Ltx2Settings
    assert _annotation(runtime.choose_runtime, "settings") is Ltx2Settings
    assert _annotation(runtime.speed_options, "settings") is Ltx2Settings


def test_the_api_section_comes_from_its_variables() -> None:
    api = settings_from_env({
        "REELSERVE_PUBLIC_URL": "https://video.example/", "REELSERVE_WORKER_STALE_S": "7",
        "REELSERVE_API_STORE_TIMEOUT_S": "2.5", "REELSERVE_API_STORE_THREADS": "4",
        "REELSERVE_RATE_LIMIT": "9", "REELSERVE_RATE_WINDOW_S": "30",
        "REELSERVE_WEBHOOK_BACKOFF_S": "1,2", "REELSERVE_FETCH_ALLOW_CIDRS": "10.0.0.0/8",
        "REELSERVE_MAX_BODY_BYTES": "1000", "REELSERVE_SYNC_TIMEOUT_S": "12",
    }).api
    assert api.base_url == "https://video.example"
    assert (api.worker_stale_s, api.store_timeout_s, api.store_threads) == (7.0, 2.5, 4)
    assert api.rate_limits == RateLimitSettings(limit=9, window_s=30.0)
    assert (api.max_body_bytes, api.sync_timeout_s) == (1000, 12.0)
    assert api.webhooks.backoff_s == (1.0, 2.0)
    assert [str(network) for network in api.fetch.allow_networks] == ["10.0.0.0/8"]


def test_the_worker_section_comes_from_its_variables(tmp_path: Path) -> None:
    worker = settings_from_env({
        "REELSERVE_LEASE_S": "9", "REELSERVE_MAX_ATTEMPTS": "5",
        "REELSERVE_WORKER_HEARTBEAT_S": "0.5", "REELSERVE_WORKER_WAKEUPS": "false",
        "REELSERVE_WORKER_MODELS": "kling-3-standard-text2video, ",
        "REELSERVE_ENGINE_RELOAD_ATTEMPTS": "2", "REELSERVE_WORKER_GPU": "3",
        "REELSERVE_ENGINE": "ltx2", "REELSERVE_DATA_DIR": str(tmp_path),
        "REELSERVE_STORAGE": "", "REELSERVE_INPUT_TIMEOUT_S": "4",
    }).worker
    assert (worker.lease_s, worker.lease_renew_s, worker.max_attempts) == (9.0, 3.0, 5)
    assert (worker.heartbeat_s, worker.wakeups, worker.reload_attempts) == (0.5, False, 2)
    assert worker.models == ("kling-3-standard-text2video",)
    assert worker.gpu == "3"
    assert worker.engine.name == "ltx2"
    assert worker.engine.storage.outputs_dir == tmp_path / "outputs"
    assert worker.engine.fetch.input_timeout_s == 4.0


def test_the_store_section_comes_from_its_variables(tmp_path: Path) -> None:
    store = settings_from_env({
        "REELSERVE_DATA_DIR": str(tmp_path), "REELSERVE_STORE": "redis://127.0.0.1:6379/0",
        "REELSERVE_REDIS_PREFIX": "p", "REELSERVE_FAIR_DISPATCH": "no",
        "REELSERVE_RETENTION_S": "60",
    }).store_section
    assert store == StoreSettings(url="redis://127.0.0.1:6379/0", redis_prefix="p",
                                  db_path=tmp_path / "reelserve.sqlite3",
                                  redis_ephemeral=False, retention_s=60.0, fair_dispatch=False)


def test_each_engine_section_comes_from_its_variables(tmp_path: Path) -> None:
    engines = settings_from_env({
        "REELSERVE_DATA_DIR": str(tmp_path), "REELSERVE_MODEL_PATH": str(tmp_path / "m"),
        "REELSERVE_LTX2_STEPS": "4", "REELSERVE_LTX2_LONG_SIDE": "256",
        "REELSERVE_LTX2_COMPILE": "1", "REELSERVE_LTX2_DEVICE": "cuda",
        "REELSERVE_WORKER_GPU": "1",
    }).engines
    assert engines.preview == PreviewSettings()
    assert (engines.ltx2.steps, engines.ltx2.long_side, engines.ltx2.compile) == (4, 256, True)
    assert engines.ltx2.models == ModelSettings(models_dir=tmp_path / "models",
                                                model_path=tmp_path / "m")
    assert engines.custom == CustomEngineSettings(data_dir=tmp_path, models=engines.ltx2.models,
                                                  device="cuda", gpu="1")


def test_models_dir_defaults_under_the_data_dir_and_can_be_moved(tmp_path: Path) -> None:
    assert settings_from_env({"REELSERVE_DATA_DIR": str(tmp_path)}).models == \
        ModelSettings(models_dir=tmp_path / "models", model_path=None)
    moved = settings_from_env({"REELSERVE_MODELS_DIR": str(tmp_path / "weights")}).models
    assert moved.models_dir == tmp_path / "weights"


def test_the_engine_child_rebuilds_the_same_sections_from_the_environment() -> None:
    settings = settings_from_env({"REELSERVE_ENGINE": "ltx2", "REELSERVE_LTX2_STEPS": "3",
                                  "REELSERVE_FETCH_ALLOW_CIDRS": "127.0.0.0/8"})
    assert settings_from_env(settings_to_env(settings)).worker == settings.worker


@pytest.mark.parametrize(("variable", "raw", "section"), [
    ("REELSERVE_API_STORE_THREADS", "0", "api"),
    ("REELSERVE_SWEEP_INTERVAL_S", "-1", "api"),
    ("REELSERVE_ENGINE_RELOAD_BACKOFF_S", "-0.5", "worker"),
    ("REELSERVE_IDLE_WAIT_S", "0", "worker"),
    ("REELSERVE_RETENTION_S", "0", "store_section"),
    ("REELSERVE_LTX2_STEPS", "-2", "ltx2"),
    ("REELSERVE_LTX2_CACHE_THRESHOLD", "0", "ltx2"),
    ("REELSERVE_WEBHOOK_BACKOFF_S", "5,-1", "webhooks"),
    ("REELSERVE_LTX2_OFFLOAD", "turbo", "ltx2"),
    ("REELSERVE_LTX2_PROFILE", "three-stage", "ltx2"),
    ("REELSERVE_LTX2_ATTENTION", "xformers", "ltx2"),
    ("REELSERVE_LTX2_CACHE", "step", "ltx2"),
    ("REELSERVE_LTX2_WEIGHTS", "int4", "ltx2"),
    ("REELSERVE_LTX2_DTYPE", "float64", "ltx2"),
    ("REELSERVE_LTX2_VAE_TILING", "maybe", "ltx2"),
    ("REELSERVE_LTX2_DEVICE", "cuda:x", "ltx2"),
    ("REELSERVE_LTX2_DEVICE", "mps", "ltx2"),
    ("REELSERVE_GPUS", "0,x", "worker"),
    ("REELSERVE_GPUS", "1,1", "worker"),
])
def test_a_bad_value_for_a_section_is_refused_naming_its_variable(
        variable: str, raw: str, section: str) -> None:
    with pytest.raises(InvalidSetting) as refused:
        getattr(settings_from_env({variable: raw}), section)
    assert refused.value.variable == variable


@pytest.mark.parametrize(("variable", "raw"), [
    ("REELSERVE_LTX2_OFFLOAD", "sequential"), ("REELSERVE_LTX2_PROFILE", "fast"),
    ("REELSERVE_LTX2_ATTENTION", "flash"), ("REELSERVE_LTX2_CACHE", "first-block"),
    ("REELSERVE_LTX2_WEIGHTS", "fp8"), ("REELSERVE_LTX2_DTYPE", "float16"),
    ("REELSERVE_LTX2_VAE_TILING", "off"), ("REELSERVE_LTX2_DEVICE", "cuda:1"),
])
def test_each_word_an_ltx2_option_takes_is_accepted(variable: str, raw: str) -> None:
    ltx2 = settings_from_env({variable: raw}).ltx2
    assert getattr(ltx2, variable.removeprefix("REELSERVE_LTX2_").lower()) == raw


def test_a_word_an_ltx2_option_does_not_take_is_named_with_the_words_it_does() -> None:
    with pytest.raises(InvalidSetting, match="REELSERVE_LTX2_OFFLOAD: must be one of auto, "
                       "none, model, sequential, not 'turbo'"):
        settings_from_env({"REELSERVE_LTX2_OFFLOAD": "turbo"})
