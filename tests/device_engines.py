"""The GPU-pinning seam: a fixture engine that writes down the device it was given.

Selected with ``--engine device_engines:create_engine``. Each engine child writes
``<data dir>/devices/<pid>.json`` with what its worker pinned it to: the
``CUDA_VISIBLE_DEVICES`` it inherited and the settings' ``worker_gpu`` and
``ltx2_device``. It then behaves as the fixture engine.
"""

from __future__ import annotations

import json
import os

from reelserve.settings import Settings

from fixture_engines import FixtureEngine


def create_engine(settings: Settings) -> FixtureEngine:
    reports = settings.data_dir / "devices"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{os.getpid()}.json").write_text(json.dumps({
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
        "worker_gpu": settings.worker_gpu,
        "ltx2_device": settings.ltx2_device,
    }))
    return FixtureEngine()
