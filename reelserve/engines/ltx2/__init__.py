"""The LTX-2 engine: real video and audio generation with diffusers' LTX-2 pipelines.

Needs ``pip install "reelserve[gpu]"`` and weights from ``reelserve models pull
ltx-2``. Nothing here imports torch until the engine is created, and a missing
torch or model becomes ``EngineUnavailable`` with the command that fixes it.
See ``docs/engines.md`` for the parameter mapping and memory needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelserve.settings_sections import Ltx2Settings

if TYPE_CHECKING:
    from reelserve.engines.ltx2.engine import Ltx2Engine


def create_engine(settings: Ltx2Settings) -> Ltx2Engine:
    """Factory named by the engine registry: checks torch before importing the engine."""
    from reelserve.engines.ltx2.runtime import import_torch

    import_torch()
    try:
        from reelserve.engines.ltx2.engine import create_engine as create
    except Exception as error:
        from reelserve.engines.ltx2.runtime import root_cause
        from reelserve.errors import EngineUnavailable
        from reelserve.model_store import INSTALL_HINT

        raise EngineUnavailable(f"the ltx2 engine cannot be imported ({root_cause(error)}): "
                                f"{INSTALL_HINT}") from error
    return create(settings)


__all__ = ["create_engine"]
