"""The preview engine: a deterministic, CPU-only storyboard renderer.

It reads the prompt's words (light, places, weather, camera moves, quoted
speech) and renders a layered 2.5D animated scene, or moves and morphs the
given images, with a matching ambience and offline speech. See
``docs/preview-engine.md`` for the vocabulary and what is approximated.
"""

from __future__ import annotations

from reelserve.engines.preview.engine import PreviewEngine, create_engine

__all__ = ["PreviewEngine", "create_engine"]
