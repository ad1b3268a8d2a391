"""Sampling the toy test set on the CPU in fp32, in bf16, and in two bf16 mixes: what a CPU's bf16 matmuls buy.

    python benchmarks/cpu_precision.py                          # toy-base, 600 questions x k = 8, 128 rows, twice
    python benchmarks/cpu_precision.py --rows 128 512 --old a20423b

A CPU with AVX512-BF16 (or AMX) multiplies bf16 matrices several times faster than fp32 ones; this script first times
the toy model's decode matmuls (128 rows) both ways, then runs `generate` on the toy test set, each run a fresh
process, the variants alternating so that a machine busy for a while slows them all:

    fp32       the weights in fp32: what evaluate.py and the CPU training scripts sample with
    bf16       the weights loaded in bf16 (what `train_rl.py --optimizer lowmem` samples with on the CPU)
    autocast   fp32 weights under bf16 autocast: matmuls, attention and the KV cache in bf16
    mixed      autocast, but attention and its KV cache in fp32 (CPU attention is slower in bf16 than in fp32)

`autocast` and `mixed` are experiments (the sampler has no such mode; `mixed` patches the model's decode attention and
the cache's dtype in the measured process). `--old` adds the fp32 and bf16 runs of an older commit's sampler.
Reported per run: seconds, generated tokens, tokens/s and peak resident memory. Samples differ between precisions
(the last bits of the logits move a draw near a boundary); between commits at one precision only where the older
sampler draws other random numbers (4b74a6f does; a20423b does not).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("fp32", "bf16", "autocast", "mixed")


def matmul_rates(rows: int = 128) -> None:
    """GFLOP/s of the toy model's decode matmuls (hidden 192, MLP 512, 85 tokens) at `rows` rows, fp32 and bf16."""
    import torch
    import torch.nn.functional as F

    def best_us(f, n=200) -> float:
        for _ in range(20):
            f()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                f()
            times.append((time.perf_counter() - t) / n)
        return min(times) * 1e6

    print(f"| matmul ({rows} rows) | fp32 us | bf16 us | fp32 GFLOP/s | bf16 GFLOP/s |\n|---|---|---|---|---|")
    for d_in, d_out, name in ((192, 320, "q, k, v"), (192, 192, "o"), (192, 1024, "gate, up"), (512, 192, "down"),
                              (192, 85, "lm_head")):
        x, w = torch.randn(rows, d_in), torch.randn(d_out, d_in)
        x16, w16 = x.bfloat16(), w.bfloat16()  # cast once: the product alone is timed
        fp32, bf16 = best_us(lambda: F.linear(x, w)), best_us(lambda: F.linear(x16, w16))
        flops = 2 * rows * d_in * d_out / 1e3  # per us -> GFLOP/s
        print(f"| {name} {d_in}->{d_out} | {fp32:.0f} | {bf16:.0f} | {flops / fp32:.0f} | {flops / bf16:.0f} |")


def fp32_attention(model_module, decode_state) -> None:
    """The `mixed` variant: decode attention outside autocast on fp32 q, k, v; the KV cache made in fp32."""
    import torch

    attention, empty = model_module.grouped_decode_attention, decode_state.KVCache.empty

    def attention_fp32(q, k, v, mask):
        with torch.autocast("cpu", enabled=False):
            return attention(q.float(), k, v, None if mask is None else mask.float())

    def empty_fp32(model, rows, slots):
        with torch.autocast("cpu", enabled=False):
            return empty(model, rows, slots)

    model_module.grouped_decode_attention = attention_fp32
    decode_state.KVCache.empty = staticmethod(empty_fp32)


def one_run(tree: Path, variant: str, questions: int, k: int, rows: int, model_dir: str) -> dict:
    """In this process: sample the toy test set with the minireason package of `tree`, in `variant`."""
    sys.path.insert(0, str(tree))
    import torch
    from minireason import collect, model as model_module
    from minireason.sampler import SamplingParams, generate
    from minireason.tasks import toy_split
    from minireason.tokenizer import Tokenizer

    if variant == "mixed":
        from minireason import decode_state
        fp32_attention(model_module, decode_state)
    problems = toy_split("test")[:questions]
    model = collect.load_pretrained(model_dir, dtype=torch.bfloat16 if variant == "bf16" else torch.float32)
    tokenizer = Tokenizer.from_dir(model_dir)
    template = collect.default_template(model_dir, tokenizer)
    prompts = [collect.format_prompt(p.question, template) for p in problems]
    params = SamplingParams(n=k, temperature=1.0, top_k=50, max_new_tokens=160, seed=0, max_rows=rows)
    autocast = variant in ("autocast", "mixed")
    region = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    t0 = time.time()
    with region:
        samples = generate(model, tokenizer, prompts, params)
    seconds = time.time() - t0
    tokens = sum(len(s.token_ids) for s in samples)
    return {"seconds": round(seconds, 1), "tokens": tokens, "tok_per_s": round(tokens / seconds),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", type=int, default=[128], help="max_rows of the sampler")
    ap.add_argument("--questions", type=int, default=600, help="the first N toy test questions")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--model", default="toy-base", help="a model folder, or a toy model this tree ships")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--old", help="also run this commit's sampler, fp32 and bf16")
    ap.add_argument("--tree", type=Path, help=argparse.SUPPRESS)  # one measured run (a subprocess)
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.tree:
        print(json.dumps(one_run(args.tree, args.variant, args.questions, args.k, args.rows[0], args.model)))
        return
    sys.path.insert(0, str(ROOT))  # here, not at the top: a measured run must import only its own tree's package
    from minireason.checkpoint import resolve_model_dir

    matmul_rates()
    model = str(resolve_model_dir(args.model).resolve())  # this tree's folder, for every run
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(ROOT, "this tree", v) for v in VARIANTS]
        if args.old:
            archive = subprocess.run(["git", "archive", args.old, "minireason"], cwd=ROOT, check=True,
                                     capture_output=True)
            subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
            runs += [(Path(tmp), args.old, v) for v in ("fp32", "bf16")]
        for _ in range(args.rounds):
            for rows in args.rows:
                for tree, name, variant in runs:
                    cmd = [sys.executable, __file__, "--tree", str(tree), "--variant", variant, "--rows", str(rows),
                           "--questions", str(args.questions), "--k", str(args.k), "--model", model]
                    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    results.append({"tree": name, "variant": variant, "rows": rows,
                                    **json.loads(done.stdout.strip().splitlines()[-1])})
                    print(results[-1], flush=True)
    print(f"\ntoy test set, {args.questions} questions x k = {args.k}, {args.model}, T = 1.0, top-k 50, "
          "160 new tokens at most:")
    print("| sampler | variant | rows | seconds | tokens | tokens/s | peak memory (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['tree']} | {r['variant']} | {r['rows']} | {r['seconds']} | {r['tokens']:,} | "
              f"{r['tok_per_s']:,} | {r['peak_mb']} |")


if __name__ == "__main__":
    main()
