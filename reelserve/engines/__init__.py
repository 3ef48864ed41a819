"""Generation engines behind one protocol, looked up by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

from reelserve.engines.base import ElementImages, Engine, GenerationInputs
from reelserve.errors import EngineUnavailable
from reelserve.settings_sections import (
    CustomEngineSettings,
    EngineSections,
    Ltx2Settings,
    PreviewSettings,
)

# A factory takes its engine's own settings section: ``PreviewSettings``,
# ``Ltx2Settings``, or ``CustomEngineSettings`` for an engine named ``module:factory``.
EngineSection = PreviewSettings | Ltx2Settings | CustomEngineSettings
EngineFactory = Callable[[Any], Engine]

# Built-in engines by name; anything else may be given as "package.module:factory",
# which is how tests plug in their fixture engines.
BUILTIN = {
    "preview": "reelserve.engines.preview:create_engine",
    "ltx2": "reelserve.engines.ltx2:create_engine",
}


def load_engine(name: str, sections: EngineSections) -> Engine:
    """Build the engine called ``name`` (a built-in name or ``module:factory``).

    Its factory gets only its own section of ``sections``.
    """
    target = BUILTIN.get(name, name)
    if ":" not in target:
        known = ", ".join(sorted(BUILTIN))
        raise EngineUnavailable(f"unknown engine {name!r}; known engines: {known}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        factory = cast(EngineFactory, getattr(module, attr))
    except (ImportError, AttributeError) as error:
        raise EngineUnavailable(f"engine {name!r} cannot be loaded: {error}") from error
    return factory(_section_of(name, sections))


def _section_of(name: str, sections: EngineSections) -> EngineSection:
    if name == "preview":
        return sections.preview
    if name == "ltx2":
        return sections.ltx2
    return sections.custom


__all__ = ["BUILTIN", "ElementImages", "Engine", "GenerationInputs", "load_engine"]
