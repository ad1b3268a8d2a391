"""Count the ATen ops of one decode step on the CPU: the CPU-visible proxy for a GPU's kernel-launch overhead.

    python benchmarks/decode_ops.py                    # Qwen2.5-0.5B's layer shape, 2 layers, random weights
    python benchmarks/decode_ops.py --shape toy

A sampler decode step runs the whole model on one new token per row; on a GPU each ATen op is (at least) one
kernel launch of a few microseconds, so the op count bounds how fast a step can be however small the
matrices. A dispatch mode records every op dispatched during one decode step of `generate`; ops inside
each transformer block are counted per layer, the rest (embedding, mask, RoPE angles, final norm, lm_head,
token choice, bookkeeping) once per step. Ops that only make a new view of a tensor (view, transpose, select,
...) launch no kernel; they are counted apart. benchmarks/RESULTS.md records the counts.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.sampler import SHAPES, IdTokenizer  # noqa: E402
from minireason import sampler  # noqa: E402
from minireason.model import Block, ModelConfig, build_model  # noqa: E402


VIEWS = {"view", "_unsafe_view", "t", "transpose", "select", "slice", "split", "split_with_sizes", "unsqueeze",
         "squeeze", "expand", "alias", "as_strided", "permute", "detach"}  # metadata only: no kernel


class OpCounter(TorchDispatchMode):
    """Counts the ATen ops dispatched while it is active, apart for those inside a transformer block."""

    def __init__(self):
        super().__init__()
        self.in_block, self.block, self.outside = 0, Counter(), Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        (self.block if self.in_block else self.outside)[str(func.overloadpacket.__name__)] += 1
        return func(*args, **(kwargs or {}))


def count_decode_step(shape: str, layers: int, rows: int, device: str = "cpu") -> tuple[Counter, Counter, int]:
    cfg = ModelConfig(**{**SHAPES[shape], "num_hidden_layers": layers}, max_position_embeddings=512)
    model = build_model(cfg, seed=0, device=device)
    counter, steps = OpCounter(), []
    real_step = sampler.decode_step

    def counted_step(*args, **kwargs):
        steps.append(None)
        if len(steps) != 3:  # the third decode step (past any first-call effects) is the one counted
            return real_step(*args, **kwargs)
        with counter:
            return real_step(*args, **kwargs)

    def enter(module, args):
        counter.in_block += 1

    def leave(module, args, output):
        counter.in_block -= 1

    for block in model.modules():
        if isinstance(block, Block):
            block.register_forward_pre_hook(enter)
            block.register_forward_hook(leave)
    sampler.decode_step = counted_step
    try:
        prompts = [[1 + (i % 7), 2, 3] for i in range(rows)]
        sampler.generate(model, IdTokenizer(cfg.vocab_size), prompts,
                         sampler.SamplingParams(n=1, max_new_tokens=6, temperature=1.0, top_k=50,
                                                cuda_graph=False))
    finally:
        sampler.decode_step = real_step
    return counter.block, counter.outside, layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="qwen2.5-0.5b", choices=list(SHAPES))
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--device", default="cpu",
                    help="cuda: the ops CUDA dispatches (fused kernels where torch has them, e.g. rms_norm), eager")
    args = ap.parse_args()
    block, outside, layers = count_decode_step(args.shape, args.layers, args.rows, args.device)
    kernels = lambda ops: sum(n for name, n in ops.items() if name not in VIEWS)  # noqa: E731
    print(f"{args.shape} on {args.device}, one decode step: {kernels(block) / layers:g} ops per layer "
          f"({sum(block.values()) / layers:g} with views), {kernels(outside)} outside the layers "
          f"({sum(outside.values())} with views)")
    print("  per layer: " + ", ".join(f"{name} {n // layers}" for name, n in block.most_common()))
    print("  outside:   " + ", ".join(f"{name} {n}" for name, n in outside.most_common()))


if __name__ == "__main__":
    main()
