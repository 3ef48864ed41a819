"""Prompt embeddings are computed once per text per job: shots, stages and the negative
prompt share them. Also: the compile setting wraps the repeated transformer blocks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tiny_ltx2 import save_tiny_ltx2

from reelserve.engines import load_engine
from reelserve.settings import Settings

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ltx2(tmp_path_factory.mktemp("tiny-ltx2"))


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Iterator[Any]:
    yield load_engine("ltx2", Settings(model_path=str(tiny_model), ltx2_long_side=128).engines)


def test_each_text_is_encoded_once_per_job(engine: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from reelserve.engines.ltx2.engine import PromptCache

    encoded: list[str] = []
    real = engine.pipe.encode_prompt

    def counting(*args: Any, **kwargs: Any) -> Any:
        encoded.append(kwargs["prompt"])
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.pipe, "encode_prompt", counting)
    prompts = PromptCache(engine, "blur low quality")
    first = prompts.get("a cat", guided=True)
    again = prompts.get("a cat", guided=False)  # the refine stage of the same shot
    prompts.get("a robot", guided=True)  # the next shot
    assert encoded == ["a cat", "blur low quality", "a robot"]
    assert again["prompt_embeds"] is first["prompt_embeds"]
    assert "negative_prompt_embeds" in first and "negative_prompt_embeds" not in again


# Importing torch's compiler stack warns about torch.jit.script_method inside torch.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compile_wraps_each_repeated_transformer_block(tiny_model: Path) -> None:
    compiled = load_engine("ltx2", Settings(model_path=str(tiny_model), ltx2_long_side=128,
                                            ltx2_compile=True).engines)
    blocks = compiled.pipe.transformer.transformer_blocks  # type: ignore[attr-defined]
    assert all(block._compiled_call_impl is not None for block in blocks)
    plain = load_engine("ltx2", Settings(model_path=str(tiny_model), ltx2_long_side=128).engines)
    assert all(block._compiled_call_impl is None
               for block in plain.pipe.transformer.transformer_blocks)  # type: ignore[attr-defined]
