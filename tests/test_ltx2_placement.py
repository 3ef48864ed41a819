"""Placement against GPU memory: fake 24, 48, 80 and 141 GiB devices, full-size LTX-2.0 sizes.

The sizes are counted on the meta device from the configs the package keeps.
"""

from __future__ import annotations

import pytest

from reelserve.engines.ltx2.placement import (
    PlanDoesNotFit,
    Workload,
    choose_placement,
    forced_placement,
)

pytest.importorskip("torch")
REFINE_1080P = Workload(denoise_tokens=16 * 34 * 60, denoise_batch=1)  # distilled refine
BASE_FULL = Workload(denoise_tokens=16 * 17 * 30, denoise_batch=2)


@pytest.fixture(scope="module")
def sizes() -> dict[str, int]:
    from reelserve.engines.ltx2.sizing import model_sizes

    return dict(model_sizes("2.0").bf16_bytes)


def test_141_gib_keeps_everything_resident_in_bf16(sizes: dict[str, int]) -> None:
    placed = choose_placement(sizes, 141, REFINE_1080P)
    assert set(placed.where.values()) == {"gpu"} and set(placed.storage.values()) == {"bf16"}
    assert 64 < placed.peak_gib <= 141


def test_80_gib_keeps_the_transformer_resident_in_bf16(sizes: dict[str, int]) -> None:
    placed = choose_placement(sizes, 80, REFINE_1080P)
    assert placed.where["transformer"] == "gpu" and placed.storage["transformer"] == "bf16"
    assert placed.peak_gib <= 80


def test_48_gib_stores_the_transformer_in_fp8_and_streams_the_text_encoder(
        sizes: dict[str, int]) -> None:
    placed = choose_placement(sizes, 48, REFINE_1080P)
    assert placed.where["transformer"] == "gpu" and placed.storage["transformer"] == "fp8"
    assert placed.where["text_encoder"] == "group-offload"
    assert placed.peak_gib <= 48


def test_24_gib_group_offloads_the_transformer(sizes: dict[str, int]) -> None:
    placed = choose_placement(sizes, 24, BASE_FULL)
    assert placed.where["transformer"] == "group-offload"
    assert placed.storage["transformer"] == "fp8"
    assert placed.peak_gib <= 24


def test_too_little_memory_is_refused_naming_the_gib_needed(sizes: dict[str, int]) -> None:
    with pytest.raises(PlanDoesNotFit) as refused:
        choose_placement(sizes, 8, REFINE_1080P)
    assert refused.value.needed_gib > 8
    assert f"needs at least {refused.value.needed_gib:.1f} GiB" in refused.value.message
    assert "this GPU has 8.0 GiB" in refused.value.message


def test_peaks_fall_as_the_placement_gets_leaner(sizes: dict[str, int]) -> None:
    peaks = [choose_placement(sizes, gib, REFINE_1080P).peak_gib for gib in (141, 48, 24)]
    assert peaks[0] > peaks[1] > peaks[2]
    assert forced_placement(sizes, "sequential", REFINE_1080P).peak_gib < peaks[2]


def test_forcing_bf16_weights_on_48_gib_offloads_instead(sizes: dict[str, int]) -> None:
    placed = choose_placement(sizes, 48, REFINE_1080P, weights="bf16")
    assert placed.storage["transformer"] == "bf16"
    assert placed.where["transformer"] == "group-offload"
