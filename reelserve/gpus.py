"""Which GPU each worker gets, and what NVML says about it.

``serve --engine ltx2`` starts one worker per GPU: the worker's environment gets
``CUDA_VISIBLE_DEVICES=<index>`` (with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so the
index means the same GPU to CUDA, NVML and ``nvidia-smi``), and its engine sees
that one GPU as ``cuda:0``. The GPUs are ``--gpus 0,2,5`` when given, else every
GPU NVML reports. NVML comes from ``nvidia-ml-py`` (the ``gpu`` extra); without it,
or without a driver, no GPU is found and memory use is not reported.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reelserve.errors import InvalidParameter

NO_GPUS = "none"  # --gpus none: start workers without pinning them


def parse_gpu_list(text: str) -> tuple[int, ...] | None:
    """``"0,2,5"`` as (0, 2, 5); ``""`` as None (detect); ``"none"`` as ()."""
    value = text.strip().lower()
    if not value:
        return None
    if value == NO_GPUS:
        return ()
    indexes: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if not part.isdigit():
            raise InvalidParameter("gpus", f"must be GPU indexes like 0,2,5 or 'none', "
                                           f"not {text!r}")
        if int(part) in indexes:
            raise InvalidParameter("gpus", f"lists GPU {part} twice")
        indexes.append(int(part))
    return tuple(indexes)


def _nvml() -> Any | None:
    """The initialised ``pynvml`` module, or None without the package or a driver."""
    try:
        nvml: Any = importlib.import_module("pynvml")
        nvml.nvmlInit()
    except Exception:  # no package, no driver, no device: all mean "no NVML here"
        return None
    return nvml


@contextlib.contextmanager
def nvml_session() -> Iterator[Any | None]:
    nvml = _nvml()
    try:
        yield nvml
    finally:
        if nvml is not None:
            with contextlib.suppress(Exception):
                nvml.nvmlShutdown()


def detect_gpus() -> tuple[int, ...]:
    """Every GPU NVML can see, by PCI bus order; () without NVML."""
    with nvml_session() as nvml:
        if nvml is None:
            return ()
        try:
            return tuple(range(int(nvml.nvmlDeviceGetCount())))
        except Exception:
            return ()


def worker_gpus(chosen: tuple[int, ...] | None, engine: str, workers: int | None
                ) -> tuple[int, tuple[int | None, ...]]:
    """How many workers to start and the GPU of each (None: not pinned).

    ``chosen`` is ``--gpus`` (None when not given). Without it only the ltx2 engine
    looks for GPUs. Pinned workers default to one per GPU; more workers than GPUs
    share them in turn.
    """
    gpus = chosen if chosen is not None else (detect_gpus() if engine == "ltx2" else ())
    if not gpus:
        count = 1 if workers is None else workers
        return count, (None,) * count
    count = len(gpus) if workers is None else workers
    return count, tuple(gpus[index % len(gpus)] for index in range(count))


def pinned_env(gpu: int | None) -> dict[str, str]:
    """The environment that pins a worker (and its engine child) to ``gpu``."""
    if gpu is None:
        return {}
    return {"CUDA_VISIBLE_DEVICES": str(gpu), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


@dataclass(frozen=True)
class GpuMemory:
    used_bytes: int
    total_bytes: int


def gpu_memory(nvml: Any, gpu: int) -> GpuMemory | None:
    """Memory in use on ``gpu`` (the whole device: one worker per GPU), or None."""
    try:
        info = nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(gpu))
    except Exception:
        return None
    return GpuMemory(int(info.used), int(info.total))
