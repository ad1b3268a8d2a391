"""Decode attention by row length, measured before it enters the sampler: SDPA over every row's slots against
FlexAttention with a block mask built from each row's length.

    python benchmarks/row_attention.py                         # CUDA: Qwen2.5-0.5B and 1.5B shapes; CPU: toy
    python benchmarks/row_attention.py --shapes toy --rows 128

Continuous batching puts short and long rows in one step, and the sampler's decode attention (model.py's
`grouped_decode_attention`, SDPA with a 0/-inf mask) reads every row up to the step's attended length L,
however short the row: on the toy evaluation 2.31x the slots the rows need, on the CUDA length mix 4.5-6.3x
(issue 28). FlexAttention (`torch.nn.attention.flex_attention`, compiled) skips the key blocks a row does not
reach: `row_attention.row_block_mask` says, per row, how many blocks of `--block` slots hold its keys, and its mask_mod
hides the rest of the last one; this is the sampler's `row_attention`. This script times one layer's decode
attention both ways on a snapshot of a continuous-batching step: each row's sample length drawn from sampler.py's
length mix, the row somewhere inside it, L rounded up to the sampler's attention bucket. Reported per call:
SDPA, FlexAttention with the mask made beforehand, the mask's construction alone (once per step in a sampler,
shared by the layers), the compile time, the largest difference between the two outputs, and the ratio for a
whole step's attention (every layer once, one mask per step): layers x SDPA / (layers x flex + mask).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.sampler import SHAPES, mix_lengths, sync  # noqa: E402
from minireason.cuda_graph import ATTEND_BUCKET, round_up  # noqa: E402
from minireason.model import additive_mask, grouped_decode_attention  # noqa: E402
from minireason.row_attention import flex_attention_for, row_block_mask  # noqa: E402


def snapshot(rows: int, prompt: int, median: int, cap: int, seed: int = 0) -> tuple[torch.Tensor, int]:
    """Each row's slots in use at one decode step, as the sampler lays them out (a prompt of 1 to `prompt` tokens
    from slot 0, then the tokens the row has written so far, uniform within its sample length from the mix):
    (rows,) ends, and L, the longest row's, bucketed."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(mix_lengths(rows, median, cap, seed))
    written = (torch.rand(rows, generator=gen) * lengths).long() + 1
    ends = torch.randint(1, prompt + 1, (rows,), generator=gen) + written
    return ends, round_up(int(ends.max()), ATTEND_BUCKET)


def per_call_us(fn, repeats: int) -> float:
    fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeats * 1e6


def measure(shape: str, rows: int, args, device: torch.device, dtype: torch.dtype) -> dict:
    from torch.nn.attention.flex_attention import flex_attention

    cfg = SHAPES[shape]
    heads, kv_heads, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    ends, L = snapshot(rows, args.prompt, args.median, args.cap)
    ends = ends.to(device)
    key_real = torch.arange(L, device=device) < ends[:, None]  # (rows, L)
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(rows, h, t, d, generator=gen).to(device, dtype)
               for h, t in ((heads, 1), (kv_heads, L), (kv_heads, L)))
    mask = additive_mask(key_real[:, None, None, :], q)  # (rows, 1, 1, L), as model.py makes it once per step
    # on the CPU compiled per shape: its dynamic-shape kernel can fail to build (model.flex_attention_for)
    flex = flex_attention_for("cuda") if device.type == "cuda" else torch.compile(flex_attention, dynamic=False)
    t0 = time.perf_counter()
    bm = row_block_mask(ends, L, args.block)
    by_flex = flex(q, k, v, block_mask=bm, enable_gqa=True)
    sync()
    compile_s = time.perf_counter() - t0
    by_sdpa = grouped_decode_attention(q, k, v, mask)
    return {"shape": shape, "rows": rows, "layers": cfg["num_hidden_layers"], "slots": L,
            "needed": key_real.sum().item() / key_real.numel(),
            "sdpa_us": per_call_us(lambda: grouped_decode_attention(q, k, v, mask), args.repeats),
            "flex_us": per_call_us(lambda: flex(q, k, v, block_mask=bm, enable_gqa=True), args.repeats),
            "mask_us": per_call_us(lambda: row_block_mask(ends, L, args.block), args.repeats),
            "compile_s": compile_s, "max_diff": (by_flex.float() - by_sdpa.float()).abs().max().item()}


def main(argv: list[str] | None = None) -> None:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", choices=list(SHAPES),
                    default=["qwen2.5-0.5b", "qwen2.5-1.5b"] if cuda else ["toy"])
    ap.add_argument("--rows", type=int, nargs="+", default=[256] if cuda else [128])
    ap.add_argument("--block", type=int, default=128 if cuda else 32, help="key slots per FlexAttention block")
    ap.add_argument("--prompt", type=int, default=128 if cuda else 16,
                    help="the longest prompt (each row's: 1 to this)")
    ap.add_argument("--median", type=int, default=300 if cuda else 75, help="the length mix's median")
    ap.add_argument("--cap", type=int, default=4000 if cuda else 1000, help="the length mix's cap")
    ap.add_argument("--repeats", type=int, default=100)
    args = ap.parse_args(argv)
    if ATTEND_BUCKET % args.block:
        raise SystemExit(f"--block {args.block}: must divide the sampler's attention bucket ({ATTEND_BUCKET} slots)")
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    name = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"{name}, {dtype}, torch {torch.__version__}, blocks of {args.block} slots\n"
          "| shape | rows | slots read (L) | share of them real | SDPA us | flex us | block mask us | a step: SDPA "
          "/ (flex + mask) | compile s | max diff |\n|---|---|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        for rows in args.rows:
            r = measure(shape, rows, args, device, dtype)
            step = r["layers"] * r["sdpa_us"] / (r["layers"] * r["flex_us"] + r["mask_us"])
            print(f"| {shape} | {rows} | {r['slots']} | {r['needed']:.2f} | {r['sdpa_us']:.0f} | {r['flex_us']:.0f} | "
                  f"{r['mask_us']:.0f} | {step:.2f}x | "
                  f"{r['compile_s']:.1f} | {r['max_diff']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
