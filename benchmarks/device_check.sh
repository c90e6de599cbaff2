#!/usr/bin/env bash
# The GPU check of the published setting (gpu_chain.py and gpu_step.py, plus the CUDA-only tests),
# on a lent device machine: image 'cuda' (Python 3.12 with its own torch), no package registry.
#
# Prepare here, once (about 30 MB of wheels of what the image lacks, in the git-ignored .device/):
#     .venv/bin/python benchmarks/device_wheels.py
# Then one call of the device tool (a session has 15 minutes of device time, the machine's start
# included, and a call at most 10):
#     run(command="bash benchmarks/device_check.sh all", carry=[".device"], timeout_s=600)
# `all` runs the chain first (the issue's figures), then the CUDA-only tests and the step benchmark in
# what is left of BUDGET_S (default 560 s, counted from this script's start); `chain` or `step` runs
# one; `held` measures evaluation on streamed JPEGs decoded per variant against decoded once and held
# (eval_held.py; not part of `all`). Each JSON is rewritten after every phase ("complete": false until
# its end) and a compiled re-run that would not fit in the budget is skipped and named, so a call cut
# short still brings back what it measured: gpu_chain_<gpu>.json, gpu_step_<gpu>.json, the environment
# and the tests' output, under $OUT.
#
# DEVICE=cpu rehearses the same script on a CPU at tiny size (files named _cpu), e.g. under a Python
# 3.12 venv that holds the image's torch (README, "The GPU check on a machine without a registry").
set -euo pipefail
cd "$(dirname "$0")/.."
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 GX_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1
export DVC_STUDIO_OFFLINE=1 MPLBACKEND=Agg
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
what=${1:?usage: device_check.sh all|chain|step|held}

site=.device-site  # installed once per machine (ignored outputs stay while it is warm), never carried
if [ ! -f "$site/.installed" ]; then
    ls .device/wheels/*.whl >/dev/null || { echo "no .device/wheels: run benchmarks/device_wheels.py here first" >&2; exit 2; }
    python3 -m pip install --quiet --no-index --no-deps --target "$site" .device/wheels/*.whl
    touch "$site/.installed"
fi
export PYTHONPATH="$PWD/$site:$PWD/src"
DEVICE=${DEVICE:-cuda}
tiny=()  # gpu_step's size: the published one on a GPU, seconds on a CPU
if [ "$DEVICE" = cpu ]; then
    gpu=cpu
    tiny=(--device cpu --model TinyCLIP-ViT-P8-32 --batch 8 --steps 3 --warmup 1 --curve-steps 4)
else
    gpu=$(python3 -c 'import torch; print(next(w for w in torch.cuda.get_device_name().lower().split() if w[0] in "abhl" and w[1:].isdigit()))')
fi
python3 - >"$OUT/environment_$gpu.txt" <<'EOF'
import importlib.metadata as m, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
for name in ("kedro", "kedro-datasets", "open-clip-torch", "great-expectations", "dvclive", "lightning-fabric", "pydantic"):
    print(name, m.version(name))
EOF
cat "$OUT/environment_$gpu.txt"

CUDA_TESTS=(tests/training/test_host_sync.py tests/clip/test_inference.py)  # skipped without CUDA
BUDGET_S=${BUDGET_S:-560}
STEP_RESERVE_S=${STEP_RESERVE_S:-150}  # the tests and gpu_step's eager runs, when `all` runs both
left() { echo $((BUDGET_S - SECONDS)); }  # SECONDS: bash's count since this script started

chain() {
    python3 benchmarks/gpu_chain.py --device "$DEVICE" --output "$OUT/gpu_chain_$gpu.json" --budget-s "$1"
}
step() {
    # the CUDA-only tests first (no host sync per step; models moved to the device for inference and
    # back; a fresh process's first CUDA use), then the step benchmark eager and compiled
    # (a failing test does not stop the benchmark: both outputs come back, the exit status says)
    local tests=0 bench=0
    python3 -m pytest -q -p no:cacheprovider "${CUDA_TESTS[@]}" 2>&1 | tee "$OUT/pytest_$gpu.txt" || tests=$?
    python3 benchmarks/gpu_step.py "${tiny[@]}" --compile --output "$OUT/gpu_step_$gpu.json" --budget-s "$(left)" || bench=$?
    return $((bench ? bench : tests))
}

held() {
    local size=(--model ViT-B-16 --classes 40 --test-per-class 10 --workers 8 --batch 256)
    [ "$DEVICE" = cpu ] && size=(--classes 2 --test-per-class 3 --variants 1 --repeats 1 --workers 0)
    python3 benchmarks/eval_held.py --device "$DEVICE" "${size[@]}" --output "$OUT/eval_held_$gpu.json"
}

case "$what" in
    step) step ;;
    held) held ;;
    chain) chain "$(left)" ;;
    all)
        status=0
        chain $(($(left) - STEP_RESERVE_S)) || status=$?
        if [ "$(left)" -ge 60 ]; then
            step || status=$?
        else
            echo "step skipped: $(left) s of BUDGET_S=$BUDGET_S left after the chain" | tee "$OUT/step_skipped.txt"
        fi
        exit "$status"
        ;;
    *)
        echo "unknown check '$what': expected all, chain, step or held" >&2
        exit 2
        ;;
esac
