"""Decode attention by row length (opt-in, `SamplingParams(row_attention=True)`): FlexAttention's block mask.

With one new token per row, SDPA's mask makes every row compute scores up to the longest row's slots; a block mask
lets each row read only its own (on CUDA, compiled FlexAttention skips the blocks it leaves out). It needs torch 2.9
(`BlockMask.from_kv_blocks` with `seq_lengths` and `compute_q_blocks`); `check_row_attention` refuses it before.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # importing it imports torch._dynamo: at run time only where a block mask is made
    from torch.nn.attention.flex_attention import BlockMask


def check_row_attention() -> None:
    """Refuse row attention in one line on a torch whose BlockMask cannot be made from per-row block counts
    (`BlockMask.from_kv_blocks` with seq_lengths and compute_q_blocks: torch 2.9 and later; the default path runs
    from torch 2.5 on)."""
    from torch.nn.attention.flex_attention import BlockMask  # noqa: F811 (at run time, here only)

    missing = sorted({"seq_lengths", "compute_q_blocks"} - set(inspect.signature(BlockMask.from_kv_blocks).parameters))
    if missing:
        raise ValueError(f"row_attention needs torch >= 2.9 (BlockMask.from_kv_blocks takes no {', '.join(missing)} "
                         f"in this torch, {torch.__version__}); leave it off")


def row_block_mask(ends: torch.Tensor, slots: int, block: int = 128) -> BlockMask:
    """FlexAttention's block mask for one new token per row whose keys are the row's first ends[b] of `slots` slots.

    Row b reads key blocks 0 .. ceil(ends[b] / block) - 1 only (`kv_num_blocks`; an end past `slots`, as a free
    row's stale position can be, reads them all), and in its last block the mask_mod hides the slots from ends[b]
    on. So a short row costs what its own length costs, where SDPA's mask makes every row compute scores up to
    the longest row's slots. Without a backward pass no query-side block lists are needed (compute_q_blocks=False),
    which keeps this a few tensor ops: cheap, and safe to capture.
    """
    from torch.nn.attention.flex_attention import BlockMask  # noqa: F811 (at run time, here only)

    rows = len(ends)
    kv_num_blocks = ((ends.clamp(max=slots) + block - 1) // block).to(torch.int32).view(rows, 1, 1)  # (rows, 1, 1)
    kv_indices = torch.arange(-(-slots // block), dtype=torch.int32, device=ends.device).expand(rows, 1, 1, -1)
    return BlockMask.from_kv_blocks(kv_num_blocks, kv_indices, BLOCK_SIZE=block, seq_lengths=(1, slots),
                                    mask_mod=lambda b, h, q, kv: kv < ends[b], compute_q_blocks=False)


@functools.cache
def flex_attention_for(device_type: str):
    """FlexAttention as decoding runs it: on CUDA compiled once for every shape (dynamic=True), since only the
    compiled kernel skips the blocks a block mask leaves out; elsewhere eager, which computes every score (no
    faster than SDPA: a reference). On the CPU torch 2.13's compiled kernel fails to build (a C++ error in
    Inductor's generated code) once the row count changes under dynamic shapes, as packed rows make it do."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=True) if device_type == "cuda" else flex_attention
