#!/usr/bin/env bash
# The sampler and model tests on the oldest torch that requirements.txt admits (its `torch>=X.Y`: the newest X.Y.*
# release), in a venv of its own, so that the floor is a measured fact and not a hope. On PyPI that torch is a
# CUDA build: the first run downloads about 3 GB (its CUDA libraries too), later runs reuse the venv (FLOOR_VENV).
# transformers, the tests' reference, is held below 5 there, since transformers 5 turns torch off below 2.6.
# row_attention (FlexAttention's block mask from per-row block counts) needs torch 2.9: on the floor its tests skip
# and SamplingParams(row_attention=True) refuses in one line.
#
#     bash benchmarks/torch_floor.sh          # about 1 minute once the venv exists
set -euo pipefail
cd "$(dirname "$0")/.."
floor=$(sed -n 's/^torch>=\([0-9.]*\).*/\1/p' requirements.txt)
venv=${FLOOR_VENV:-/tmp/minireason-torch-floor}
has_floor="import torch, sys; sys.exit(not torch.__version__.startswith('$floor.'))"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "$has_floor"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "torch==$floor.*" tokenizers safetensors numpy tqdm matplotlib pytest hypothesis \
        "transformers>=4.51,<5"
fi
"$venv/bin/python" -c "import torch, transformers as t; print(torch.__version__, t.__version__)"
"$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" \
    tests/test_sampler.py tests/test_model.py
