"""Which GPU each worker gets, and reading its memory: the rules, without a GPU."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from reelserve.errors import InvalidParameter
from reelserve.gpus import GpuMemory, gpu_memory, parse_gpu_list, pinned_env, worker_gpus


def test_gpu_lists_parse_and_bad_ones_name_the_option() -> None:
    assert parse_gpu_list("") is None
    assert parse_gpu_list("none") == ()
    assert parse_gpu_list(" 0, 2,5 ") == (0, 2, 5)
    for bad in ("0,x", "-1", "1,1", "0;1"):
        with pytest.raises(InvalidParameter) as refused:
            parse_gpu_list(bad)
        assert refused.value.message.startswith("gpus")


def test_one_worker_per_gpu_unless_a_count_is_given() -> None:
    assert worker_gpus((0, 2, 5), "preview", None) == (3, (0, 2, 5))
    assert worker_gpus((0, 2), "ltx2", 5) == (5, (0, 2, 0, 2, 0))
    assert worker_gpus((), "ltx2", None) == (1, (None,))  # --gpus none
    assert worker_gpus((1,), "ltx2", 0) == (0, ())
    # No list: only ltx2 looks for GPUs, and the preview engine never pins.
    assert worker_gpus(None, "preview", 3) == (3, (None, None, None))


def test_pinning_sets_the_cuda_environment() -> None:
    assert pinned_env(None) == {}
    assert pinned_env(5) == {"CUDA_VISIBLE_DEVICES": "5", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


class FakeNvml:
    """The NVML seam: the calls gpu_memory makes, answering for two devices."""

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index > 1:
            raise RuntimeError("NVML_ERROR_INVALID_ARGUMENT")
        return index

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(used=(handle + 1) * 2**30, total=80 * 2**30, free=0)


def test_memory_is_read_per_gpu_and_a_missing_gpu_reads_as_unknown() -> None:
    nvml = FakeNvml()
    assert gpu_memory(nvml, 1) == GpuMemory(2 * 2**30, 80 * 2**30)
    assert gpu_memory(nvml, 7) is None
