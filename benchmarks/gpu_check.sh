#!/usr/bin/env bash
# GPU checks and benchmarks for a lent CUDA machine, in ONE call (device time is scarce).
#
# Here, once (downloads the few wheels the GPU image lacks into .whl/, ignored by git):
#     bash benchmarks/gpu_check.sh --fetch-wheels
# Then, with the device tool:  run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
# The GPU image already has torch, torchvision, numpy, scipy, pillow, typer, rich, tqdm,
# safetensors, matplotlib, imageio; it lacks torch-fidelity, pytorch-pretrained-biggan
# (+ boto3, which that imports) and imageio-ffmpeg (not needed: no video is encoded here).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="torch-fidelity==0.4.0 pytorch-pretrained-biggan==0.1.1 boto3 botocore s3transfer jmespath"  # ~17 MB (imageio-ffmpeg, 68 MB, would break the 64 MiB carry limit; no video here)

if [ "${1:-}" = "--fetch-wheels" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 --platform any -d .whl $WHEELS
  ls -la .whl
  exit 0
fi

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
python3 benchmarks/gpu_check.py
