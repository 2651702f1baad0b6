#!/usr/bin/env bash
# Here (with network), in the repo root: put in .whl/ what the GPU machine lacks for the profiler —
# DeepSpeed (built here as a pure-Python wheel, no ops) and the dependencies its import needs that
# the device image does not have (hjson, pydantic). Python 3.12, x86-64 (the device machine's).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p .whl
DS_BUILD_OPS=0 $PY -m pip wheel -q --no-deps --no-build-isolation deepspeed==0.19.8 -w .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  hjson pydantic pydantic-core annotated-types typing-inspection typing-extensions
ls -la .whl
