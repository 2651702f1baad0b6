#!/usr/bin/env bash
# One device call on a lent GPU, product commands only: the CUDA paths proven on `tiny`, then issue
# 4's cross-model check of the simulator (llama-7b and llama-13b measured on one reduced grid, each
# calibrated on and the other predicted, per phase and batch) and the paper's Table 1 question on
# this GPU. ~4 min of forward passes on an H200 or H100 (`sotlat plan`, hf-eager); the two profiles
# are cut to fit BUDGET seconds in all (default 540), a cut one saved and `--resume`d by the next call.
# The three measured tables, the two calibrations and log.txt land in out/gpu/ and in $OUT.
#
# Device tool: command `bash scripts/gpu_cross_model.sh`, carry [".whl", "out/gpu"], timeout_s 600.
# Rehearsal on a CPU (docs/gpu.md): DEVICE=cpu DTYPE=float32 A=smollm2-135m B=smollm2-360m GRID="…" RUNS="…" GPU=h200
#   NOMINAL="--peak-tflops 1 --bandwidth-gbps 50" PY=.venv/bin/python OUT=/tmp/o bash scripts/gpu_cross_model.sh
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder that comes back}"
A=${A:-llama-7b} B=${B:-llama-13b} DEVICE=${DEVICE:-cuda} DTYPE=${DTYPE:-float16} BUDGET=${BUDGET:-540}
GRID=${GRID:---batches 1,4,16 --prefill-lengths 1:700:50 --decode-max 384}
RUNS=${RUNS:---prefill-runs 4 --prefill-warmup 1 --decode-runs 2}
NOMINAL=${NOMINAL:-}  # a CPU has no catalogue peak or bandwidth: nominal ones for calibrate and simulate
D=out/gpu
S="bash scripts/gpu_run.sh"
mkdir -p "$D/sim" "$OUT"
exec > >(tee -a "$D/log.txt") 2>&1
trap 'cp "$D"/*.parquet "$D"/*.json "$D/log.txt" "$OUT"/ 2>/dev/null' EXIT
left() { local s=$((BUDGET - SECONDS - $1)); echo $((s > 1 ? s : 1)); }  # seconds left, keeping $1 for what follows

echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null) on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo "$DEVICE")"
$S profile --arch tiny --device "$DEVICE" --batches 1-4 --prefill-lengths 1:200:50 --decode-max 128 --out "$D/tiny.parquet" --resume \
  || { echo "== tiny failed: the CUDA paths need fixing before the check"; exit 1; }
timeout -s TERM "$(left 330)" $S profile --arch "$A" --device "$DEVICE" --dtype "$DTYPE" $GRID $RUNS --out "$D/$A.parquet" --resume
timeout -s TERM "$(left 60)" $S profile --arch "$B" --device "$DEVICE" --dtype "$DTYPE" $GRID $RUNS --out "$D/$B.parquet" --resume
GPU=${GPU:-$($S tables show --json "$D/$A.parquet" | python3 -c "import json, sys; print(json.load(sys.stdin)['metadata']['device'].get('catalogue_id', ''))")}
[ -n "$GPU" ] || { echo "== this GPU is not in the catalogue: calibrate and simulate need --gpu or figures"; exit 1; }
for fit in "$A" "$B"; do
  other=$([ "$fit" = "$A" ] && echo "$B" || echo "$A")
  echo "== calibrated on $fit, $other predicted ($GPU)"
  $S calibrate --table "$D/$fit.parquet" --out "$D/$fit.json" $NOMINAL \
    && $S simulate --gpu "$GPU" --arch "$other" --calibration "$D/$fit.json" --dtype "$DTYPE" $GRID $NOMINAL --out "$D/sim/$other-from-$fit.parquet" \
    && $S tables compare "$D/sim/$other-from-$fit.parquet" "$D/$other.parquet"
done
echo "== the paper's Table 1 question (A100, transformers 4.28: 40 ms and 2,735 ms for llama-7b)"
$S latency --table "$D/$A.parquet" --prompt 128 --output 64 --batches 1,16
echo "== done in ${SECONDS} s"
