#!/usr/bin/env bash
# The GPU check, for a Linux x86-64 machine with an NVIDIA GPU and its driver (within 8 minutes):
#   1. installs recsys with the `gpu` extra (TensorFlow's CUDA build and NVIDIA's libraries) into
#      a fresh virtual environment, and says whether TensorFlow sees the GPU;
#   2. runs the GPU test (tests/unit/test_gpu.py), failing where it would be skipped;
#   3. trains and scores a 1M-interaction synthetic graph on the GPU beside the CPU
#      (bench/gpu_check.py): seconds per epoch, peak GPU memory against the run's estimate, and
#      whether the published lists match the CPU's within float tolerance.
#
#   bash bench/gpu_check.sh                 # from a checkout; the venv is .venv-gpu
#   VENV=/path SKIP_INSTALL=1 bash bench/gpu_check.sh   # an environment already installed
#   INTERACTIONS=200000 EPOCHS=2 bash bench/gpu_check.sh   # smaller
#   ALLOW_CPU=1 ...                         # go on without a GPU (a dry run of the script)
# Offline, point pip at a wheelhouse as usual (PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-gpu}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
INTERACTIONS=${INTERACTIONS:-1000000}
EPOCHS=${EPOCHS:-3}
BUDGET=${BUDGET:-480}  # seconds for the whole check
started=$SECONDS
left() {  # seconds the check has left, at least 1 (timeout 0 would mean no limit)
  local seconds=$((BUDGET - (SECONDS - started)))
  echo $((seconds > 0 ? seconds : 1))
}
say() { echo "== [$((SECONDS - started)) s] $*"; }

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  say "installing recsys[gpu] into $VENV"
  "$PYTHON" -m venv "$VENV"
  timeout "$(left)" "$VENV/bin/python" -m pip install --quiet --upgrade pip
  timeout "$(left)" "$VENV/bin/python" -m pip install --quiet -e '.[gpu]' 'pytest>=8'
fi
PY="$VENV/bin/python"

say "what TensorFlow sees"
if [ "${ALLOW_CPU:-0}" = 1 ]; then severity=warning; else severity=error; fi
"$PY" - "$severity" <<'EOF'
import importlib.metadata as metadata
import sys

import tensorflow as tf

def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None

gpus = tf.config.list_physical_devices("GPU")
print(f"TensorFlow {tf.__version__} (tensorflow {version('tensorflow')}, "
      f"tensorflow-cpu {version('tensorflow-cpu')}), built with CUDA: "
      f"{tf.test.is_built_with_cuda()}, GPUs: {[gpu.name for gpu in gpus]}")
for gpu in gpus:
    print("  ", tf.config.experimental.get_device_details(gpu))
problem = None
if version("tensorflow") is None:
    problem = "the gpu extra is not installed: pip install -e '.[gpu]'"
elif not tf.test.is_built_with_cuda():
    problem = ("this TensorFlow is a CPU-only build (tensorflow-cpu's files were installed "
               "last); reinstall the CUDA build over them:\n  pip install --force-reinstall "
               f"--no-deps 'tensorflow[and-cuda]=={tf.__version__}'")
elif not gpus:
    problem = "TensorFlow sees no GPU (the driver? CUDA_VISIBLE_DEVICES?)"
if problem:
    print(f"{sys.argv[1]}: {problem}", file=sys.stderr)
    sys.exit(sys.argv[1] == "error")
EOF

say "the GPU test"
timeout "$(left)" "$PY" -m pytest -q -p no:cacheprovider -rs tests/unit/test_gpu.py \
  | tee /tmp/recsys-gpu-test.txt
if [ "$severity" = error ] && grep -q "skipped" /tmp/recsys-gpu-test.txt; then
  echo "error: the GPU test was skipped" >&2
  exit 1
fi

say "training and scoring $INTERACTIONS interactions, GPU beside CPU"
timeout "$(left)" "$PY" bench/gpu_check.py --interactions "$INTERACTIONS" --epochs "$EPOCHS"
say "done"
