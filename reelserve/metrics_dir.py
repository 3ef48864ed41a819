"""Where this process and its children write Prometheus metric files.

Kept apart from ``reelserve.metrics`` because ``prometheus_client`` decides at
import time whether it runs in multiprocess mode: the directory must be set
before that module is imported.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_metrics_dir(path: Path, *, fresh: bool) -> None:
    """Point this process and the processes it starts at ``path`` for metric files.

    ``fresh`` empties it first: `reelserve serve` does, so counters start at zero
    with the service; a `reelserve worker` joining a running service does not.
    """
    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
