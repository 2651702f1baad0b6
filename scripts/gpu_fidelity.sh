#!/usr/bin/env bash
# One device call on a lent GPU, product commands and benchmarks/ scripts only (docs/gpu.md):
#  1. why a batch's first decode sweep is slow and what makes the warm ones scatter: benchmarks/cold_sweep.py
#     on `tiny` under every attention setting (docs/method.md, "Warm-up and quiet timing");
#  2. llama-7b and llama-13b profiled with the decode warm-up on a grid cut to fit (batches 1 and 16), their
#     per-sweep medians and CV printed (profile's summary, tables show);
#  3. the simulator's cross-model check on that pair (sotlat cross-model), and the paper's Table 1 question.
# ~6 min of device work on an H200 (`sotlat plan`, hf-eager, plus the benchmark); each profile is cut with
# SIGTERM to fit BUDGET seconds in all (default 510), a cut one saved and `--resume`d by the next call.
# Everything lands in out/gpu/ and in $OUT.
#
# Device tool: command `bash scripts/gpu_fidelity.sh`, carry [".whl", "out/gpu"], timeout_s 600.
# Rehearsal on a CPU (docs/gpu.md): DEVICE=cpu DTYPE=float32 A=smollm2-135m B=smollm2-360m GRID="…" RUNS="…" STEPS=16
#   NOMINAL="--peak-tflops 1 --bandwidth-gbps 50" PY=.venv/bin/python OUT=/tmp/o bash scripts/gpu_fidelity.sh
set -uo pipefail
cd "$(dirname "$0")/.."
A=${A:-llama-7b} B=${B:-llama-13b} DEVICE=${DEVICE:-cuda} DTYPE=${DTYPE:-float16} BUDGET=${BUDGET:-510} STEPS=${STEPS:-64}
GRID=${GRID:---batches 1,16 --prefill-lengths 1:700:50 --decode-max 256}
RUNS=${RUNS:---prefill-runs 4 --prefill-warmup 1 --decode-runs 3 --decode-warmup 1}
NOMINAL=${NOMINAL:-}  # a CPU has no catalogue peak or bandwidth: nominal ones for cross-model
D=out/gpu
source scripts/gpu_call.sh
echo "== 1. the cold first sweep and the jitter: tiny, B=1, N=$STEPS, each attention setting in a fresh process"
timeout -s TERM 150 $S benchmarks/cold_sweep.py --arch tiny --device "$DEVICE" --steps "$STEPS" --warm 3 --json "$D/cold_sweep_tiny.json" \
  || echo "== cold_sweep stopped early (its finished conditions are above)"
for model in "$A" "$B"; do
  echo "== 2. $model with the decode warm-up"
  keep=$([ "$model" = "$A" ] && echo 200 || echo 40)
  timeout -s TERM "$(left "$keep")" $S profile --arch "$model" --device "$DEVICE" --dtype "$DTYPE" $GRID $RUNS --out "$D/$model.parquet" --resume
  $S tables show "$D/$model.parquet" --cells 0
done
echo "== 3. the simulator's cross-model check on the warm pair"
$S cross-model "$D/$A.parquet" "$D/$B.parquet" $NOMINAL
$S cross-model "$D/$A.parquet" "$D/$B.parquet" $NOMINAL --json > "$D/cross_model.json"
echo "== the paper's Table 1 question (A100, transformers 4.28: 40 ms and 2,735 ms for llama-7b)"
$S latency --table "$D/$A.parquet" --prompt 128 --output 64 --batches 1,16
echo "== done in ${SECONDS} s"
