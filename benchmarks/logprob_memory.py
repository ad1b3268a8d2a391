"""Peak memory of training's token log-probs, forward and backward, before and after chunking (CPU).

    python benchmarks/logprob_memory.py                 # 8192 tokens x Qwen's 151,936-token vocabulary
    python benchmarks/logprob_memory.py --tokens 2048

The model is one block at the Qwen2.5-1.5B width (hidden 1536) with the full vocabulary, in fp32, so that
the logits dominate. "before" is the unchunked computation (the whole (tokens, vocab) fp32 logits, then
cross-entropy); "after" is `training.token_logprobs` (chunks of LOGPROB_CHUNK_TOKENS, recomputed in the
backward pass). Each runs in a fresh process; reported is the growth of its peak resident memory over
what the model, its gradients and the batch already hold.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minireason.model import ModelConfig, build_model  # noqa: E402
from minireason.training import LOGPROB_CHUNK_TOKENS, token_logprobs  # noqa: E402

CFG = ModelConfig(model_type="qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=1536,
                  num_hidden_layers=1, num_attention_heads=12, num_key_value_heads=2, head_dim=128,
                  tie_word_embeddings=True, qkv_bias=True, max_position_embeddings=32768)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(mode: str, tokens: int) -> None:
    torch.manual_seed(0)
    model = build_model(CFG, seed=0)
    ids = torch.randint(0, CFG.vocab_size, (1, tokens + 1))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # gradients are held either way: count them in the baseline
    base = peak_mib()
    if mode == "before":
        logp = -F.cross_entropy(model(ids[:, :-1]).float().transpose(1, 2), ids[:, 1:], reduction="none")
    else:
        logp = token_logprobs(model, ids)
    logp.sum().backward()
    print(f"{peak_mib() - base:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--child", choices=["before", "after"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return measure(args.child, args.tokens)
    print(f"token log-probs of {args.tokens} tokens x {CFG.vocab_size} vocabulary, fp32, forward + backward (CPU)")
    print("| computation | peak memory growth |\n|---|---|")
    for mode, label in [("before", "unchunked (whole logits, cross-entropy)"),
                        ("after", f"token_logprobs, chunks of {LOGPROB_CHUNK_TOKENS} tokens")]:
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--tokens", str(args.tokens)],
                             capture_output=True, text=True, check=True).stdout.strip()
        print(f"| {label} | {int(out):,} MiB |", flush=True)


if __name__ == "__main__":
    main()
