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


COMPILED_ON = ("cuda",)  # the devices where decoding runs FlexAttention compiled (flex_attention_for)


def mark_dynamic(t: torch.Tensor, dims: tuple[int, ...]) -> None:
    """Where FlexAttention runs compiled, tell torch.compile that these sizes (rows, slots, key blocks) vary from
    step to step, so that it compiles once for them, not again when it first sees each one change. A hint, never a
    constraint: where a size must be specialized (a size of 1, say), it is."""
    if t.device.type in COMPILED_ON:
        for d in dims:
            torch._dynamo.maybe_mark_dynamic(t, d)


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
    # A real copy per row, not an expand: an expanded tensor's row stride is 0 at rows > 1 and not at rows = 1, and
    # compiled FlexAttention guards on it (a recompile).
    kv_indices = torch.arange(-(-slots // block), dtype=torch.int32, device=ends.device).repeat(rows, 1)
    kv_indices = kv_indices.view(rows, 1, 1, -1)
    for t, dims in ((ends, (0,)), (kv_num_blocks, (0,)), (kv_indices, (0, 3))):
        mark_dynamic(t, dims)  # ends: the mask_mod's closure, which compiled code guards on too
    return BlockMask.from_kv_blocks(kv_num_blocks, kv_indices, BLOCK_SIZE=block, seq_lengths=(1, slots),
                                    mask_mod=lambda b, h, q, kv: kv < ends[b], compute_q_blocks=False)


def row_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: BlockMask, enable_gqa: bool):
    """One new token per row (q: (rows, heads, 1, d)) against its own slots of k, v (rows, kv_heads, slots, d)."""
    mark_dynamic(q, (0,))
    mark_dynamic(k, (0, 2))
    mark_dynamic(v, (0, 2))
    # q .to: under autocast RoPE returns fp32 queries beside the cache's bf16 keys, and FlexAttention (unlike SDPA)
    # does not cast them
    return flex_attention_for(k.device.type)(q.to(k.dtype), k, v, block_mask=mask, enable_gqa=enable_gqa)


@functools.cache
def flex_attention_for(device_type: str):
    """FlexAttention as decoding runs it: on CUDA compiled once for every shape (dynamic=True), since only the
    compiled kernel skips the blocks a block mask leaves out; elsewhere eager, which computes every score (no
    faster than SDPA: a reference). On the CPU torch 2.13's compiled kernel fails to build (a C++ error in
    Inductor's generated code) once the row count changes under dynamic shapes, as packed rows make it do."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=True) if device_type in COMPILED_ON else flex_attention
