"""The GPU-pinning seam: a fixture engine that writes down the device it was given.

Selected with ``--engine device_engines:create_engine``. Each engine child writes
``<data dir>/devices/<pid>.json`` with what its worker pinned it to: the
``CUDA_VISIBLE_DEVICES`` it inherited and its section's ``gpu`` and ``device``
(``REELSERVE_WORKER_GPU`` and ``REELSERVE_LTX2_DEVICE``). It then behaves as the fixture engine.
"""

from __future__ import annotations

import json
import os

from reelserve.settings_sections import CustomEngineSettings

from fixture_engines import FixtureEngine


def create_engine(settings: CustomEngineSettings) -> FixtureEngine:
    reports = settings.data_dir / "devices"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{os.getpid()}.json").write_text(json.dumps({
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
        "worker_gpu": settings.gpu,
        "ltx2_device": settings.device,
    }))
    return FixtureEngine()
