#!/usr/bin/env bash
# Everything a lent GPU machine checks, in one go, most valuable first, within 6 minutes of time limits (360 s): the
# CUDA tests (graphs against eager, the first thing a GPU must confirm); the sampler at fixed lengths (Qwen2.5-0.5B,
# against transformers `generate`, and again with the graphs kept in a session); a 20-step slice of the default toy
# RL run (captures every rollout); ours against TRL (GRPO with transformers' generate, then SFT; each row is printed
# as it is measured, so a timeout keeps the GRPO pair; it needs trl and datasets installed there); the sampler on the
# length mix (continuous vs static batching); the GRPO-step benchmark (1.5B, micro-batch 8192: the 24 GB recipe);
# decode attention by row length (FlexAttention against SDPA); the ATen ops CUDA dispatches in a decode step. The
# --mini claim lab on the GPU is gpu_lab.sh's.
#
# Logs go to $OUT (the device tool's folder) or runs/gpu-check, one per step, and status.txt gets a line per step:
# its name, exit status (124: it ran out of its time limit), seconds and limit. A step that hangs or fails still
# leaves the others' numbers and says so there.
set -u
out=${OUT:-runs/gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
status="$out/status.txt"
: > "$status"

step() {  # step NAME LIMIT COMMAND...: run it under its limit into NAME.log; record its exit status and seconds
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    printf '%-14s rc=%-3s %4d s (limit %d s)\n' "$name" "$rc" $((SECONDS - start)) "$limit" | tee -a "$status"
    tr '\r' '\n' < "$out/$name.log" | grep -v 'it/s\]$' | tail -n 12
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1
$py -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
    >> "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
step tests 70 $py -m pytest -q -p no:cacheprovider tests/test_cuda.py
step sampler 55 $py benchmarks/sampler.py --shapes qwen2.5-0.5b --batches 256 --json "$out/sampler.json"
step train_rl 50 $py train_rl.py --out /tmp/minireason-rl-gpu --overwrite --steps 20 --eval-every 0 \
    --final-eval-samples 0
step vs_trl 50 $py benchmarks/vs_trl.py --device cuda --rounds 1 --grpo-steps 2 --sft-steps 3 --json "$out/vs_trl.json"
step sampler_mix 45 $py benchmarks/sampler.py --shapes qwen2.5-0.5b --lengths mix --batches 256 --samples 512 \
    --json "$out/sampler-mix.json"
step grpo_step 45 $py benchmarks/grpo_step.py
step row_attention 25 $py benchmarks/row_attention.py --shapes qwen2.5-0.5b
step decode_ops 20 $py benchmarks/decode_ops.py --device cuda
echo "status (also in $status):"
cat "$status"
