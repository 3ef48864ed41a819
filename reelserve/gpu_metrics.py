"""Each pinned worker's GPU and its memory use, as Prometheus gauges.

Workers set them; ``/metrics`` and ``reelserve status`` read them from the
metrics directory. The gauges are "live": a worker's samples go when the pool
marks it dead. Import this module only after ``use_metrics_dir``.
"""

from __future__ import annotations

import threading

from prometheus_client import Gauge

from reelserve.gpus import gpu_memory, nvml_session

MEMORY_SAMPLE_S = 5.0

WORKER_GPU = Gauge("reelserve_worker_gpu", "The GPU index a worker is pinned to (always 1)",
                   ["worker", "gpu"], multiprocess_mode="livemostrecent")
GPU_MEMORY_USED = Gauge("reelserve_worker_gpu_memory_used_bytes",
                        "Memory in use on a worker's GPU, from NVML",
                        ["worker", "gpu"], multiprocess_mode="livemostrecent")
GPU_MEMORY_TOTAL = Gauge("reelserve_worker_gpu_memory_total_bytes",
                         "Memory of a worker's GPU, from NVML",
                         ["worker", "gpu"], multiprocess_mode="livemostrecent")


def report_worker_gpu(worker_id: str, gpu: int, stop: threading.Event) -> threading.Thread:
    """Publish ``gpu`` as this worker's, and its memory use every few seconds until ``stop``."""
    WORKER_GPU.labels(worker_id, str(gpu)).set(1)

    def sample() -> None:
        with nvml_session() as nvml:
            while nvml is not None:
                memory = gpu_memory(nvml, gpu)
                if memory is not None:
                    GPU_MEMORY_USED.labels(worker_id, str(gpu)).set(memory.used_bytes)
                    GPU_MEMORY_TOTAL.labels(worker_id, str(gpu)).set(memory.total_bytes)
                if stop.wait(MEMORY_SAMPLE_S):
                    return

    thread = threading.Thread(target=sample, name="gpu-memory", daemon=True)
    thread.start()
    return thread
