# fastgan: `make test` and `make bench` do all set-up themselves on a fresh Linux machine
# (Python >= 3.10, no GPU needed).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PYTEST := $(PY) -m pytest -p no:cacheprovider
export TRITON_DEFAULT_FP_FUSION ?= 1

.PHONY: test test-cpu test-interpret test-gpu bench bench-gpu setup build-cuda clean demo

setup: $(VENV)/.fastgan-installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# torch is installed only when it is not importable (never a second torch: on CI .ci/run has
# installed torch==2.13.0 already).  The package installs without build isolation so its build
# never pulls another torch; the CUDA extension is built only where nvcc and a CUDA torch exist.
$(VENV)/.fastgan-installed: $(VENV)/bin/python setup.py pyproject.toml
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install torch
	$(PIP) install -q setuptools wheel triton numpy pytest pytest-benchmark tqdm matplotlib pillow scikit-learn pyyaml
	$(PIP) install -q --no-build-isolation -e '.[test]'
	@touch $@

# The whole CPU suite: the compiled pass, then the Triton-interpreter pass (TRITON_INTERPRET must be
# set before triton is imported, hence a second process).  Any non-zero pytest exit -- including
# 5, "no tests collected" -- fails the target.
test: setup
	$(PYTEST) tests -m "not interpret"
	TRITON_INTERPRET=1 $(PYTEST) tests -m interpret

test-gpu: setup
	FASTGAN_REQUIRE_ALL_BACKENDS=$${FASTGAN_REQUIRE_ALL_BACKENDS:-0} $(PYTEST) tests -m "gpu or aot or cuda_build"

# Benchmarks on the best device present (a reduced ref/eager/compile set on CPU-only machines).
bench: setup
	$(PY) -m bench.run
	$(PY) -m bench.overhead    # host time per op call: fast path vs dispatcher vs eager
	$(PY) -m bench.penalties   # whole-discriminator R1 passes: not a per-op family of bench.run
	$(PY) -m bench.stylegan2   # whole StyleGAN2 G / D / R1 steps per backend and precision mode
	$(PY) -m bench.train       # Trainer.train_step throughput: fastgan vs impl='ref' fp32

# StyleGAN2 on the built-in `shapes` at 32^2 on the CPU (a few minutes on 2 cores): a small model
# (channels <= 128) and no path-length term, so the run fits in minutes; writes runs/demo-shapes/
# (checkpoints, stats.jsonl, grids/) and runs/demo-shapes/samples.png.  Rerunning continues it.
DEMO_DIR ?= runs/demo-shapes
DEMO_KIMG ?= 40
demo: setup
	$(PY) -m fastgan train --data shapes --resolution 32 --batch 32 --kimg $(DEMO_KIMG) \
		--out $(DEMO_DIR) --resume auto --z-dim 128 --w-dim 128 --channel-base 1024 \
		--channel-max 128 --mapping-layers 2 --lr 0.005 --pl-weight 0 --workers 1 \
		--tick-kimg 1 --snap-kimg 5 --image-kimg 5 --metric-images 256 --grid-size 64
	$(PY) -m fastgan generate --ckpt $(DEMO_DIR) --n 64 --out $(DEMO_DIR)/samples.png --device cpu

build-cuda: setup
	FASTGAN_BUILD_CUDA=1 $(PIP) install --no-build-isolation -e '.[test]'

clean:
	rm -rf build *.egg-info fastgan/_C*.so
