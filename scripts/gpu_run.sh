#!/usr/bin/env bash
# On the GPU machine (the device tool), in the repo root, with `.whl` carried: install the wheels
# into /tmp/site and run `sotlat` from the source tree with the machine's own torch/transformers.
# Usage: bash scripts/gpu_run.sh profile --arch llama-7b --batches 1-4 --out out/gpu/shard.parquet --resume
#        bash scripts/gpu_run.sh benchmarks/sweep_vs_isolated.py --arch llama-7b   (a script of the repo, same setup)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}  # where the wheels go: installed once per machine
if [ -d .whl ] && ! DS_ACCELERATOR=cpu $PY -c "import deepspeed" >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
if [[ "${1:-}" == *.py ]]; then exec $PY "$@"; fi
exec $PY -m sotlat "$@"
