#!/usr/bin/env bash
# The GPU test files on a CUDA machine, from the repository root: bash tests/gpu_check.sh
# Needs only torch, numpy and pytest (no native extension, no PyAV). Fails when no GPU is visible, because the
# tests would otherwise all skip and pass. cuDNN benchmark mode stays off; models and clips are tiny, so the run
# should need well under the 230 s limit below (not yet timed on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

"$PYTHON" - <<'PY'
import sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}")
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch.cuda.is_available() is False; the GPU tests would only skip")
print(f"device: {torch.cuda.get_device_name(0)} (capability {torch.cuda.get_device_capability(0)})")
import pytest  # noqa: F401  (a clear failure here rather than inside the run)
PY

export PYVIDEO_TEST_DEVICE=cuda
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" timeout 230 "$PYTHON" -m pytest -q -rf -p no:cacheprovider \
    --durations=5 tests/transforms/test_gpu.py tests/models/test_gpu.py tests/tasks/test_gpu.py
