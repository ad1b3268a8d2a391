"""Time one GRPO step (rollout + update) at real model shapes with random weights.

    python benchmarks/grpo_step.py                      # CUDA: Qwen2.5-0.5B (adamw) and 1.5B (lowmem + checkpointing)
    python benchmarks/grpo_step.py --shapes toy         # the CPU toy shape

One step = 16 prompts x 8 samples, a 128-token prompt and exactly 512 new tokens each (no EOS can be
sampled), random +1/-1 rewards (so every group carries gradient), then one optimizer step over all
128 responses. Prints rollout and update seconds, generated tokens/s and peak GPU memory; the
target is that the 1.5B shape fits in 24 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.sampler import SHAPES, IdTokenizer, sync  # noqa: E402
from minireason.grpo import GRPOConfig, Rollout, group_advantages, update  # noqa: E402
from minireason.model import ModelConfig, build_model  # noqa: E402
from minireason.sampler import SamplingParams, generate  # noqa: E402
from minireason.training import OptimConfig, build_optimizer  # noqa: E402
from train_rl import RLConfig  # noqa: E402


def one_step(
    shape: str,
    optimizer: str,
    checkpointing: bool,
    prompts: int,
    group: int,
    prompt_len: int,
    new_tokens: int,
    micro_batch_tokens: int,
    device: str,
) -> dict:
    cfg = ModelConfig(**SHAPES[shape], max_position_embeddings=4096)
    dtype = torch.bfloat16 if optimizer == "lowmem" else torch.float32
    model = build_model(cfg, dtype=dtype, device=device, seed=0)
    model.gradient_checkpointing = checkpointing
    oc = OptimConfig(lr=1e-6, mode=optimizer)
    opt = build_optimizer(model, oc)
    gcfg = GRPOConfig.of(replace(RLConfig(), group_size=group, max_new_tokens=new_tokens,
                                 micro_batch_tokens=micro_batch_tokens))
    # bf16 autocast for fp32 weights on CUDA (as the training scripts do); nothing otherwise
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device == "cuda" and dtype == torch.float32 \
        else contextlib.nullcontext
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, cfg.vocab_size, (prompts, prompt_len), generator=g).tolist()
    tok = IdTokenizer(cfg.vocab_size)  # an EOS outside the vocabulary: every response is new_tokens long
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    results = {}
    for attempt in ("warm-up", "timed"):  # the first step pays for graph capture and allocator growth
        sync()
        t0 = time.perf_counter()
        with torch.no_grad(), amp():
            samples = generate(model, tok, ids, SamplingParams(n=group, temperature=0.9, top_k=50,
                                                               max_new_tokens=new_tokens, seed=0))
        sync()
        rollout_s = time.perf_counter() - t0
        rewards = torch.randint(0, 2, (len(samples),), generator=g).float() * 2 - 1
        ro = Rollout(samples, rewards, group_advantages(rewards.view(prompts, group)).flatten(), rollout_s)
        t1 = time.perf_counter()
        update(model, opt, oc, ro, gcfg, step=0, pad_id=0, autocast=amp)
        sync()
        update_s = time.perf_counter() - t1
        results = {"shape": shape, "optimizer": optimizer, "checkpointing": checkpointing, "rollout_s": rollout_s,
                   "update_s": update_s, "gen_tok_s": prompts * group * new_tokens / rollout_s,
                   "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}
    del model, opt
    return results


def main() -> None:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--shapes", nargs="+", choices=list(SHAPES), default=["qwen2.5-0.5b", "qwen2.5-1.5b"] if cuda else ["toy"]
    )
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=128 if cuda else 16)
    ap.add_argument("--new-tokens", type=int, default=512 if cuda else 128)
    ap.add_argument("--micro-batch-tokens", type=int, default=8192,
                    help="8192: docs/real-weights.md's 24 GB recipe at 1.5B")
    args = ap.parse_args()
    device = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}, torch {torch.__version__}; {args.prompts} prompts x {args.group} samples, "
          f"{args.prompt_len} + {args.new_tokens} tokens")
    print("| shape | optimizer | grad ckpt | micro-batch tokens | rollout s | update s | generated tok/s | peak GB |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        # the 1.5B shape uses the 24 GB recipe: bf16 weights, fp32 master copy, bf16 moments, checkpointing;
        # the token log-probs make their fp32 logits in chunks (training.token_logprobs), so 8192 should fit
        optimizer, ckpt = ("lowmem", True) if shape == "qwen2.5-1.5b" else ("adamw", False)
        micro = args.micro_batch_tokens
        r = one_step(shape, optimizer, ckpt, args.prompts, args.group, args.prompt_len, args.new_tokens, micro, device)
        peak = f"{r['peak_gb']:.1f}" if r["peak_gb"] is not None else "-"
        print(
            f"| {shape} | {optimizer} | {ckpt} | {micro} | {r['rollout_s']:.1f} | {r['update_s']:.1f} | "
            f"{r['gen_tok_s']:,.0f} | {peak} |",
            flush=True,
        )
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
