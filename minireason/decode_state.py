"""What the sampler's decode step reads and writes in place, how many rows it gets, and the session that keeps it.

`KVCache` holds the keys and values of every layer for R rows x S slots in one preallocated tensor each; `Rows` holds
every per-row tensor of the decode loop (last token, position, steps, done, the uniform numbers' keys, the outputs).
Both are written in place and never replaced, so a CUDA graph captured on them stays valid (`cuda_graph.py`).
`DecodeBuffers` bundles them with their graphs; a caller's `DecodeSession` keeps them from one `generate` call to the
next. `machine_rows` sizes R: on CUDA from free memory, on the CPU a fixed CPU_ROWS.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .cuda_graph import StepGraphs
from .model import Transformer

CPU_ROWS = 128  # rows on the CPU: more are faster but bigger; 128 keeps toy evaluation's peak memory at the static
# sampler's, 512 is about 1.2x faster at about 580 MB (benchmarks/RESULTS.md)
CUDA_KV_SHARE = 0.6  # of the GPU memory free (weights and optimizer already there), for the KV cache


class KVCache:
    """Keys and values of every layer in one preallocated tensor each: (layers, rows, kv_heads, slots, head_dim).

    Before each forward the caller sets `write_slots` (rows, T), the slot each of the T new tokens of
    each row is written to, and `attend_len`, how many slots attention reads (the first ones).
    """

    def __init__(self, k: torch.Tensor, v: torch.Tensor):
        self.k, self.v = k, v
        self.write_slots: torch.Tensor | None = None
        self.attend_len = k.shape[3]

    @staticmethod
    def empty(model: Transformer, rows: int, slots: int) -> "KVCache":
        cfg, p = model.config, next(model.parameters())
        shape = (cfg.num_hidden_layers, rows, cfg.num_key_value_heads, slots, cfg.head_dim)
        # under autocast (fp32 weights, bf16 compute) the keys and values come out in the autocast dtype
        dtype = torch.get_autocast_dtype(p.device.type) if torch.is_autocast_enabled(p.device.type) else p.dtype
        k, v = (torch.zeros(shape, dtype=dtype, device=p.device) for _ in range(2))
        return KVCache(k, v)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (rows, kv_heads, T, head_dim) at `write_slots`; return the first `attend_len` slots."""
        rows, kv_heads, slots, head_dim = self.k.shape[1:]
        # each (row, head, token)'s slot as a row of the layer's cache seen as (rows * kv_heads * slots, head_dim):
        # index_copy_ (on the CPU scatter_ of bf16 is 15x slower, 200 us a call against 11 us at 128 rows)
        first = torch.arange(rows * kv_heads, device=k.device).view(rows, kv_heads, 1) * slots
        where = (first + self.write_slots[:, None, :]).flatten()  # (rows * kv_heads * T,)
        # .to: under autocast the projections are bf16 but RoPE (fp32 cos/sin) returns fp32 keys
        self.k[layer].view(-1, head_dim).index_copy_(0, where, k.to(self.k.dtype).reshape(-1, head_dim))
        self.v[layer].view(-1, head_dim).index_copy_(0, where, v.to(self.v.dtype).reshape(-1, head_dim))
        return self.k[layer, :, :, : self.attend_len], self.v[layer, :, :, : self.attend_len]


# ----------------------------------------------------------------------------------------------
# The rows: every per-row tensor of the decode loop, on the model's device


@dataclass
class Rows:
    tokens: torch.Tensor  # (R,) the last drawn token, fed at the next step
    positions: torch.Tensor  # (R,) that token's position, which is also its cache slot
    steps: torch.Tensor  # (R,) tokens generated so far
    done: torch.Tensor  # (R,) no more tokens (EOS, max_new_tokens, or no sample at all)
    sample_ids: torch.Tensor  # (R,) first_sample + prompt index * n + sample number: the uniform numbers' key
    seeds: torch.Tensor  # (R,) the call's seed, the uniform numbers' other key (a tensor: a graph outlives a call)
    key_real: torch.Tensor  # (R, S) slots that hold this row's tokens
    out_tokens: torch.Tensor  # (R, max_new + 1) generated tokens; the last column takes done rows' writes
    out_logprobs: torch.Tensor  # (R, max_new + 1)

    @staticmethod
    def empty(R: int, S: int, max_new: int, device: torch.device) -> "Rows":
        long = dict(dtype=torch.long, device=device)
        return Rows(torch.zeros(R, **long), torch.zeros(R, **long), torch.zeros(R, **long),
                    torch.ones(R, dtype=torch.bool, device=device), torch.zeros(R, **long), torch.zeros(R, **long),
                    torch.zeros(R, S, dtype=torch.bool, device=device), torch.zeros(R, max_new + 1, **long),
                    torch.zeros(R, max_new + 1, device=device))

    def record(self, which: torch.Tensor, tokens: torch.Tensor, logprobs: torch.Tensor, eos: torch.Tensor,
               max_new: int) -> None:
        """Rows `which` drew `tokens`: store them (done rows write to a spare column) and mark rows that end."""
        steps, live = self.steps[which], ~self.done[which]
        self.out_tokens[which, steps] = tokens
        self.out_logprobs[which, steps] = logprobs
        steps = steps + live.long()
        is_eos = (tokens[:, None] == eos[None, :]).any(-1)
        self.steps[which] = steps
        self.done[which] = ~live | is_eos | (steps == max_new)
        self.tokens[which] = tokens


@dataclass
class DecodeBuffers:
    """What a decode step reads and writes in place, and the CUDA graphs captured on it (None: eager steps)."""
    layout: tuple  # what a captured step bakes in besides these tensors (decode_layout); a call with another makes new
    rows: Rows
    cache: KVCache
    eos: torch.Tensor
    graphs: StepGraphs | None


class DecodeSession:
    """Hold one across `generate` calls to reuse their decode buffers and CUDA graphs; drop it to free them."""

    def __init__(self):
        self.buffers: DecodeBuffers | None = None


def machine_rows(model: Transformer, slots: int) -> int:
    """Rows that fit: on CUDA, CUDA_KV_SHARE of the free memory (free in the driver's count plus what torch holds
    unused) over one row's keys and values; on the CPU, CPU_ROWS."""
    p = next(model.parameters())
    if p.device.type != "cuda":
        return CPU_ROWS
    cuda = torch.cuda
    free = cuda.mem_get_info(p.device)[0] + cuda.memory_reserved(p.device) - cuda.memory_allocated(p.device)
    dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else p.dtype
    return max(1, int(CUDA_KV_SHARE * free // kv_row_bytes(model.config, slots, dtype)))


def kv_row_bytes(cfg, slots: int, dtype: torch.dtype) -> int:
    """The KV cache's bytes per row: keys and values of every layer's kv heads at `slots` positions."""
    return 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * slots * dtype.itemsize
