#!/usr/bin/env bash
# One device call on a lent GPU (docs/gpu.md): the cuda-graph backend beside eager (docs/method.md, "Backends").
#  1. CUDA graphs against eager on the device: the logits of a decode sweep across bucket changes and of a
#     prefill (scripts/graph_check.py, tiny in float32 and llama-7b in float16);
#  2. llama-7b profiled eager and cuda-graph on a grid that answers most Vicuna-80 traces (batches 1,3,5-8:
#     their point counts up to 8; prompts to 701; decode to 256, extrapolated past it), each shown (the
#     decode step at B = 1 against the weights/bandwidth floor), then `tables compare` graph vs eager;
#  3. the Vicuna-80 traces estimated on both (how many each answers, and SoT's speed-ups);
#  4. the simulator's `default` calibration (an engine without host overhead) simulated on the grid and
#     compared with the measured cuda-graph table.
# ~6 min of device work on an H200 (eager decode ~35 ms a step, host-bound); each profile is cut with SIGTERM
# to fit BUDGET seconds in all (default 520), a cut one saved and `--resume`d by the next call.
# Everything lands in out/gpu-backends/ and in $OUT.
#
# Device tool: command `bash scripts/gpu_backends.sh`, carry [".whl", "out/gpu-backends"], timeout_s 600.
# Rehearsal on a CPU (the static path, no graphs): DEVICE=cpu DTYPE=float32 BACKEND=static A=smollm2-135m
#   GRID="--batches 1,3 --prefill-lengths 1:702:350 --decode-max 80" RUNS="--prefill-runs 2 --prefill-warmup 1 --decode-runs 1 --decode-warmup 0"
#   PY=.venv/bin/python OUT=/tmp/o bash scripts/gpu_backends.sh
set -uo pipefail
cd "$(dirname "$0")/.."
A=${A:-llama-7b} DEVICE=${DEVICE:-cuda} DTYPE=${DTYPE:-float16} BACKEND=${BACKEND:-cuda-graph} BUDGET=${BUDGET:-520} GPU=${GPU:-h200}
GRID=${GRID:---batches 1,3,5-8 --prefill-lengths 1:702:50 --decode-max 256}
RUNS=${RUNS:---prefill-runs 3 --prefill-warmup 1 --decode-runs 2 --decode-warmup 1}
TRACES=src/sotlat/data/traces/vicuna80-smollm2-135m.jsonl
D=out/gpu-backends
source scripts/gpu_call.sh
echo "== 1. $BACKEND against eager: logits across bucket changes"
timeout -s TERM 60 $S scripts/graph_check.py --arch tiny --device "$DEVICE" --dtype float32 --backend "$BACKEND" --steps 300
timeout -s TERM 90 $S scripts/graph_check.py --arch "$A" --device "$DEVICE" --dtype "$DTYPE" --backend "$BACKEND" --steps 140 --batch 1
for backend in eager "$BACKEND"; do
  echo "== 2. $A, backend $backend"
  keep=$([ "$backend" = eager ] && echo 150 || echo 40)
  timeout -s TERM "$(left "$keep")" $S profile --arch "$A" --device "$DEVICE" --dtype "$DTYPE" --backend "$backend" $GRID $RUNS \
    --out "$D/$A-$backend.parquet" --resume
  $S tables show "$D/$A-$backend.parquet" --cells 0
done
echo "== 2. $BACKEND against eager, per phase and batch"
$S tables compare "$D/$A-$BACKEND.parquet" "$D/$A-eager.parquet"
for backend in eager "$BACKEND"; do
  echo "== 3. Vicuna-80 traces on $A, backend $backend"
  $S estimate --table "$D/$A-$backend.parquet" --traces "$TRACES" --extrapolate --skip-unanswerable --out "$D/estimates-$backend.csv"
  $S estimate --table "$D/$A-$backend.parquet" --traces "$TRACES" --extrapolate --skip-unanswerable --json > "$D/estimates-$backend.json"
done
echo "== 4. the simulator's default calibration against the measured $BACKEND table"
$S simulate --gpu "$GPU" --arch "$A" --dtype "$DTYPE" --calibration default $GRID --out "$D/$A-simulated-default.parquet" \
  || echo "== no catalogue GPU '$GPU' here: step 4 skipped"
[ -f "$D/$A-simulated-default.parquet" ] && $S tables compare "$D/$A-simulated-default.parquet" "$D/$A-$BACKEND.parquet"
echo "== done in ${SECONDS} s"
