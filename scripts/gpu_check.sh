#!/usr/bin/env bash
# One command for the day a GPU is lent: the ltx2 engine on CUDA, in at most 8 minutes.
#
#   scripts/gpu_check.sh            # from the repository root, with .venv built (".[gpu,test]")
#
# 1. the tiny-model ltx2 tests on CUDA in bf16 (REELSERVE_LTX2_DEVICE=cuda, _DTYPE=bfloat16);
# 2. each placement (resident, offload, group offload, FP8) and each speed option (compile,
#    attention backend, first-block cache) on the tiny model, checking the MP4 decodes,
#    with a table of timings;
# 3. with real weights (REELSERVE_MODEL_PATH set), one 5 s 1080p clip end to end with the
#    stage times, and the gpu-marked real-weights test.
# Put the figures in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export REELSERVE_LTX2_DEVICE=cuda REELSERVE_LTX2_DTYPE=bfloat16
deadline=$((SECONDS + 480))
left() { echo $((deadline - SECONDS)); }

"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.cuda.get_device_name(0), f'{torch.cuda.mem_get_info()[0] / 2**30:.0f} GiB free')"

echo "== 1. tiny-model ltx2 tests on CUDA, bf16"
timeout "$(left)" "$PY" -m pytest -x -q -p no:cacheprovider \
    tests/test_ltx2_keyframes.py tests/test_ltx2_stages.py tests/test_ltx2_failures.py \
    tests/test_ltx2_engine.py || echo "tests FAILED (see above)"

echo "== 2. placements and speed options on the tiny model"
timeout "$(left)" "$PY" - <<'EOF' || echo "placement/speed check FAILED (see above)"
import random, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, "tests")
import av
from tiny_ltx2 import save_tiny_ltx2
from reelserve.catalog import MODELS
from reelserve.catalog.params import parse_submit
from reelserve.engines import load_engine
from reelserve.engines.base import GenerationInputs
from reelserve.settings import Settings

params = parse_submit(MODELS["kling-3-standard-text2video"],
                      {"prompt": "a cat in the city", "duration": "3"}, random.Random(3))
cases = {
    "resident": {"ltx2_offload": "none"},
    "offload": {"ltx2_offload": "model"},
    "group offload": {"ltx2_offload": "sequential"},
    "fp8": {"ltx2_weights": "fp8"},
    "compile": {"ltx2_compile": True},
    "attention flash": {"ltx2_attention": "flash"},
    "attention sage": {"ltx2_attention": "sage"},
    "first-block cache": {"ltx2_cache": "first-block"},
    "fast profile": {"ltx2_profile": "fast"},
}
rows = []
with tempfile.TemporaryDirectory() as tmp:
    model = save_tiny_ltx2(Path(tmp) / "tiny")
    for name, extra in cases.items():
        settings = Settings(model_path=str(model), ltx2_long_side=256, ltx2_steps=2,
                            ltx2_device="cuda", ltx2_dtype="bfloat16", **extra)
        try:
            started = time.perf_counter()
            engine = load_engine("ltx2", settings.engines)
            loaded = time.perf_counter() - started
            times = []
            for round_ in range(2):  # the second run shows the warm (compiled) speed
                out = Path(tmp) / f"{name}-{round_}.mp4".replace(" ", "_")
                started = time.perf_counter()
                engine.generate(params, GenerationInputs(), out, lambda f: None, lambda: False)
                times.append(time.perf_counter() - started)
            with av.open(str(out)) as container:
                frames = sum(1 for _ in container.decode(video=0))
            rows.append((name, f"{loaded:.1f}", f"{times[0]:.1f}", f"{times[1]:.1f}",
                         "ok" if frames == 72 else f"{frames} frames"))
            del engine
        except Exception as error:  # a table row per case, whatever fails
            rows.append((name, "-", "-", "-", f"{type(error).__name__}: {str(error)[:70]}"))
print(f"{'case':<18} {'load s':>7} {'job1 s':>7} {'job2 s':>7}  result")
for row in rows:
    print(f"{row[0]:<18} {row[1]:>7} {row[2]:>7} {row[3]:>7}  {row[4]}")
EOF

if [[ -n "${REELSERVE_MODEL_PATH:-}" ]]; then
    echo "== 3. real weights: one 5 s 1080p clip, stage times"
    timeout "$(left)" "$PY" - <<'EOF' || echo "real-weights clip FAILED (see above)"
import random, time
from pathlib import Path
from reelserve.catalog import MODELS
from reelserve.catalog.params import parse_submit
from reelserve.engines import load_engine
from reelserve.engines.base import GenerationInputs
from reelserve.settings import settings_from_env

started = time.perf_counter()
engine = load_engine("ltx2", settings_from_env().engines)
print(f"load {time.perf_counter() - started:.1f} s; {engine.runtime.describe()}")
stage_times = []  # each pipeline call: base (latent out) and refine (decoded frames out)
original = engine.pipe.__class__.__call__
def timed(self, *args, **kwargs):
    t = time.perf_counter()
    try:
        return original(self, *args, **kwargs)
    finally:
        stage_times.append((kwargs.get("width"), kwargs.get("height"),
                            kwargs.get("output_type"), time.perf_counter() - t))
engine.pipe.__class__.__call__ = timed
params = parse_submit(MODELS["kling-3-standard-text2video"],
                      {"prompt": "waves roll onto a beach at sunset, slow push in",
                       "duration": "5"}, random.Random(1))
started = time.perf_counter()
engine.generate(params, GenerationInputs(), Path("/tmp/gpu_check_5s.mp4"), lambda f: None,
                lambda: False)
total = time.perf_counter() - started
for width, height, kind, seconds in stage_times:
    print(f"stage {width}x{height} ({kind}): {seconds:.1f} s")
print(f"5 s 1080p clip end to end: {total:.1f} s")
EOF
    timeout "$(left)" "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_ltx2_gpu.py \
        || echo "gpu test FAILED"
else
    echo "== 3. skipped: set REELSERVE_MODEL_PATH to time a real 5 s 1080p clip"
fi
