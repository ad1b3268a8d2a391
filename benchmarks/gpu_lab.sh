#!/usr/bin/env bash
# The claim lab on a lent GPU, in one call (the whole lab, k = 256, meant to take at most 10 minutes on one GPU).
# Pretraining, RL, distillation and evaluation all run on CUDA, four runs at a time (--jobs 4: the toy model leaves
# the GPU mostly idle, and per-step Python work sets the pace, as in gpu_check.sh's mini lab). The lab is resumable
# and records each finished stage's seconds in times.json, so a run cut by the 540 s limit still says where the time
# went. Copies times.json, the page (CLAIMS.md) and its figures to $OUT (the device tool's folder) or runs/gpu-lab.
set -u
out=${OUT:-runs/gpu-lab}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
lab=/tmp/minireason-lab
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
start=$(date +%s)
timeout 540 $py experiments/claim_lab.py --out "$lab" --jobs 4 --page "$out/CLAIMS.md" 2>&1 | tr '\r' '\n' \
    | grep -v 'it/s\]$' > "$out/lab.log"
echo "lab: $(( $(date +%s) - start )) s in all (limit 540)" | tee -a "$out/gpu.txt"
cp "$lab/times.json" "$out/" 2>/dev/null
tail -n 20 "$out/lab.log"
