# Sourced by a device-call script (scripts/gpu_fidelity.sh, scripts/gpu_backends.sh) after it sets D (its
# output folder), BUDGET (seconds) and DEVICE: the log to D/log.txt, every table, JSON and text file copied
# to $OUT on any exit, `left N` (the budget's seconds left, keeping N for what follows), `$S` (sotlat or a
# repo script, through scripts/gpu_run.sh), and a first line naming the commit and the device.
: "${OUT:?set OUT to the folder that comes back}"
S="bash scripts/gpu_run.sh"
mkdir -p "$D" "$OUT"
exec > >(tee -a "$D/log.txt") 2>&1
trap 'cp "$D"/*.parquet "$D"/*.json "$D"/*.csv "$D"/*.txt "$OUT"/ 2>/dev/null' EXIT
left() { local s=$((BUDGET - SECONDS - $1)); echo $((s > 1 ? s : 1)); }
echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null) on $(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader 2>/dev/null || echo "$DEVICE")"
