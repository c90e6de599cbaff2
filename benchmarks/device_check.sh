#!/usr/bin/env bash
# The GPU check of the published setting (gpu_step.py and gpu_chain.py, plus the CUDA-only tests),
# on a lent device machine: image 'cuda' (Python 3.12 with its own torch), no package registry.
#
# Prepare here, once (about 30 MB of wheels of what the image lacks, in the git-ignored .device/):
#     .venv/bin/python benchmarks/device_wheels.py
# Then two calls of the device tool on the same warm machine, each within one call's 10 minutes:
#     run(command="bash benchmarks/device_check.sh step",  carry=[".device"], timeout_s=560)
#     run(command="bash benchmarks/device_check.sh chain", carry=[".device"], timeout_s=560)
# Each writes under $OUT: the environment, the tests' output, and gpu_step_<gpu>.json or
# gpu_chain_<gpu>.json for benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 GX_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1
export DVC_STUDIO_OFFLINE=1 MPLBACKEND=Agg
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
what=${1:?usage: device_check.sh step|chain}

site=.device-site  # installed once per machine (ignored outputs stay while it is warm), never carried
if [ ! -f "$site/.installed" ]; then
    ls .device/wheels/*.whl >/dev/null || { echo "no .device/wheels: run benchmarks/device_wheels.py here first" >&2; exit 2; }
    python3 -m pip install --quiet --no-index --no-deps --target "$site" .device/wheels/*.whl
    touch "$site/.installed"
fi
export PYTHONPATH="$PWD/$site:$PWD/src"
gpu=$(python3 -c 'import torch; print(next(w for w in torch.cuda.get_device_name().lower().split() if w[0] in "abhl" and w[1:].isdigit()))')
python3 - >"$OUT/environment_$gpu.txt" <<'EOF'
import importlib.metadata as m, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name(), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
for name in ("kedro", "kedro-datasets", "open-clip-torch", "great-expectations", "dvclive", "lightning-fabric", "pydantic"):
    print(name, m.version(name))
EOF
cat "$OUT/environment_$gpu.txt"

case "$what" in
    step)
        # the CUDA-only tests first (no host sync per step), then the step benchmark eager and compiled
        # (a failing test does not stop the benchmark: both outputs come back, the exit status says)
        tests=0
        python3 -m pytest -q -p no:cacheprovider tests/training/test_host_sync.py 2>&1 | tee "$OUT/pytest_$gpu.txt" || tests=$?
        python3 benchmarks/gpu_step.py --compile --output "$OUT/gpu_step_$gpu.json"
        exit "$tests"
        ;;
    chain)
        python3 benchmarks/gpu_chain.py --output "$OUT/gpu_chain_$gpu.json"
        ;;
    *)
        echo "unknown check '$what': expected step or chain" >&2
        exit 2
        ;;
esac
