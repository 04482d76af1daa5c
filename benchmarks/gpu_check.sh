#!/usr/bin/env bash
# GPU checks and benchmarks for a lent CUDA machine, in ONE call (device time is scarce:
# about 15 minutes per task, machine start included). See docs/performance.md, "GPU check".
#
# Here, right before the device call (fills .whl/, ignored by git; rebuilds bigganctl's wheel
# from the working tree, so run it again after any change):
#     PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh --fetch-wheels
# Then the device tool:
#     run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=420)
# A rehearsal of this script on a CPU: GPU_CHECK_ARGS=--cpu bash benchmarks/gpu_check.sh
# A second try, some sections only:
#     run(command="GPU_CHECK_ONLY=compiled,cudagraphs bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=420)
#
# The GPU machine runs Python 3.12 with torch 2.11, torchvision 0.26 and triton 3.6
# preinstalled (plus numpy, scipy, pillow, typer, rich, tqdm, safetensors). Nothing here
# touches them: every carried wheel installs with --no-deps into /tmp/site.
# Results: $OUT/gpu_check.json (rewritten after every section), $OUT/gpu_check.log (stdout),
# $OUT/gpu_check_errors.log (tracebacks), $OUT/autotune.log.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
WHEELS="torch-fidelity==0.4.0 pytorch-pretrained-biggan==0.1.1 boto3 botocore s3transfer jmespath"  # ~17 MB

if [ "${1:-}" = "--fetch-wheels" ]; then
  set -e
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-path info/exclude)"
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 --platform any -d .whl $WHEELS
  rm -f .whl/bigganctl-*.whl
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl .
  ls -la .whl
  exit 0
fi

OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
BUDGET="${GPU_CHECK_BUDGET_S:-360}"
{
  echo "== install (--no-deps into /tmp/site; the machine's torch stays as it is)"
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || echo "!! pip install failed"
  else
    echo "!! no .whl/ carried: torch-fidelity and pytorch-pretrained-biggan are missing"
  fi
  if ls .whl/bigganctl-*.whl >/dev/null 2>&1; then
    export PYTHONPATH=/tmp/site
  else
    echo "!! no bigganctl wheel carried: using the working tree"
    export PYTHONPATH=/tmp/site:$PWD
  fi
  export PYTHONUNBUFFERED=1
  "$PY" - <<'EOF'
import importlib, torch
missing = [m for m in ("numpy", "scipy", "PIL", "typer", "rich", "tqdm", "safetensors", "torch_fidelity")
           if importlib.util.find_spec(m) is None]
print("torch", torch.__version__, "cuda", torch.version.cuda, "| missing:", ", ".join(missing) or "none")
EOF
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv || true
  # the hard limit: the script's own budget plus a margin; SIGINT first (the JSON is kept), then KILL
  timeout -s INT -k 20 $((BUDGET + 30)) "$PY" benchmarks/gpu_check.py --budget "$BUDGET" --out "$OUT" \
    --only "${GPU_CHECK_ONLY:-}" ${GPU_CHECK_ARGS:-}
  echo "== gpu_check exit $?"
} 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
