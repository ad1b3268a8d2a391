#!/usr/bin/env bash
# Everything a lent GPU machine checks, in one go (about 8 minutes on an H100): the CUDA tests, the sampler
# and GRPO-step benchmarks at Qwen2.5 shapes, and a timed 40-step slice of the default toy RL run.
# transformers `generate` is timed at the 0.5B shape only (about 80 s there; at 1.5B it would not fit a call).
# Logs go to $OUT (the device tool's folder) or runs/gpu-check. Each step has its own time limit, so one
# that hangs or fails still leaves the others' numbers.
set -u
out=${OUT:-runs/gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
$py -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$out/gpu.txt"
timeout 120 $py -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/tests.log"
timeout 210 $py benchmarks/sampler.py --shapes qwen2.5-0.5b --json "$out/sampler.json" 2>&1 | tee "$out/sampler.log"
timeout 90 $py benchmarks/sampler.py --shapes qwen2.5-1.5b --skip-transformers --json "$out/sampler-1.5b.json" 2>&1 | tee "$out/sampler-1.5b.log"
timeout 140 $py benchmarks/grpo_step.py 2>&1 | tee "$out/grpo_step.log"
timeout 90 $py train_rl.py --out /tmp/minireason-rl-gpu --steps 40 --eval-every 0 --final-eval-samples 0 2>&1 \
    | tr '\r' '\n' | tee "$out/train_rl.log" | tail -n 5
