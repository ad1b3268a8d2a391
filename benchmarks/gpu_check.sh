#!/usr/bin/env bash
# Everything a lent GPU machine checks, in one go (at most 9 minutes of time limits): the CUDA tests; the sampler at
# fixed lengths (vs transformers `generate` at 0.5B; again with the graphs kept in a session) and on the length
# mix (continuous vs static batching) at Qwen2.5 shapes; a profile of decode steps; the GRPO-step benchmark (1.5B,
# micro-batch 8192: the 24 GB recipe); a timed 40-step slice of the default toy RL run; the ATen ops CUDA
# dispatches in a decode step; decode attention by row length (FlexAttention against SDPA, one layer); and the
# --mini claim lab on the GPU. Logs go to $OUT (the device tool's folder) or
# runs/gpu-check. Each step has its own time limit, so one that hangs or fails still leaves the others' numbers.
set -u
out=${OUT:-runs/gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
$py -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
    | tee -a "$out/gpu.txt"
timeout 85 $py -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/tests.log"
timeout 80 $py benchmarks/sampler.py --shapes qwen2.5-0.5b --batches 256 --json "$out/sampler.json" 2>&1 \
    | tee "$out/sampler.log"
timeout 110 $py benchmarks/sampler.py --shapes qwen2.5-0.5b --lengths mix --batches 256 --samples 512 \
    --json "$out/sampler-mix.json" 2>&1 | tee "$out/sampler-mix.log"
timeout 20 $py benchmarks/sampler.py --shapes qwen2.5-0.5b --batches 256 --profile 2>&1 | tee "$out/profile.log"
timeout 40 $py benchmarks/sampler.py --shapes qwen2.5-1.5b --batches 256 --skip-transformers \
    --json "$out/sampler-1.5b.json" 2>&1 | tee "$out/sampler-1.5b.log"
timeout 70 $py benchmarks/grpo_step.py 2>&1 | tee "$out/grpo_step.log"
timeout 20 $py train_rl.py --out /tmp/minireason-rl-gpu --steps 40 --eval-every 0 --final-eval-samples 0 2>&1 \
    | tr '\r' '\n' | tee "$out/train_rl.log" | tail -n 5
timeout 20 $py benchmarks/decode_ops.py --device cuda 2>&1 | tee "$out/decode_ops.log"
timeout 20 $py benchmarks/row_attention.py --shapes qwen2.5-0.5b 2>&1 | grep -v Warn | tee "$out/row_attention.log"
timeout 75 $py experiments/claim_lab.py --mini --seeds 1 --jobs 4 --out /tmp/minireason-lab-mini 2>&1 | tr '\r' '\n' \
    | grep -v 'it/s\]$' | tail -n 3 | tee "$out/lab_mini.log"  # the lab's GPU path, end to end at toy sizes (94 s on
# 2 idle CPU cores with --jobs 2, stage 6 included: 4 runs at a time here, 16 cores and one GPU)
