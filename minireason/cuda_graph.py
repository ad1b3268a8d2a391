"""CUDA graphs for the sampler's decode step: each shape captured once, then replayed at every step.

A decode step of a small model is hundreds of tiny kernels, and launching them from Python costs more than
running them. A CUDA graph records the step's kernels once; a replay launches them all in one call. The price:

1. A graph holds the addresses of every tensor the step reads and writes (the KV cache, the rows, the weights).
   Those tensors must stay the same storage for as long as the graph lives: the sampler writes into them in
   place and never replaces one. A graph kept across `generate` calls keeps them alive too.
2. A graph replays one set of shapes. The sampler needs one per (rows running, slots attended); the attended
   slots are rounded up to a multiple of ATTEND_BUCKET so that there are few, and captures are timed apart.
3. A captured step may not read a value on the host (`.item()`), make a shape from data (boolean indexing), or
   draw random numbers (a replay would repeat one draw): the sampler's uniforms are a hash of counters, and
   tests/test_sampler.py checks the step for such ops on the CPU.

`StepGraphs` keeps its graphs for as long as it lives. A capture that fails warns once and the steps of its shape
run eagerly: slower, still right. `--no-cuda-graphs` on every script decodes eagerly throughout.
"""

from __future__ import annotations

import time
import warnings
from typing import Callable, Hashable

import torch

ATTEND_BUCKET = 128  # attended slots (and a cache's slots) round up to a multiple of this: few graphs, little waste


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class StepGraphs:
    """One captured CUDA graph per key (what fixes the step's shapes), sharing one memory pool."""

    def __init__(self):
        self.graphs: dict[Hashable, torch.cuda.CUDAGraph] = {}
        self.pool = None
        self.capture_seconds = 0.0  # warm-up, capture and instantiation, apart from the replays
        self.eager: set[Hashable] = set()  # keys whose capture failed: their steps run eagerly

    def run(self, key: Hashable, step: Callable[[], None], state: list[torch.Tensor]) -> None:
        """Replay key's graph, capturing `step` first if it has none. `state`: the tensors the step updates in
        place; the warm-up run before a capture is undone on them, so that the captured step starts from them. A
        capture that fails is undone on them too (the eager step then runs once, not twice), and only its key
        decodes eagerly: an out-of-memory at a large row count leaves the smaller ones their graphs."""
        if key not in self.graphs and key not in self.eager:
            started = time.perf_counter()
            saved = [t.clone() for t in state]
            try:
                self.graphs[key] = self.capture(step, state, saved)
            except Exception as e:  # an unsupported op, a driver, memory: stay correct, only slower
                for t, old in zip(state, saved):
                    t.copy_(old)
                if not self.eager:
                    warnings.warn(f"CUDA graph capture failed ({type(e).__name__}: {e}); decoding eagerly")
                self.eager.add(key)
            self.capture_seconds += time.perf_counter() - started
        if key in self.eager:
            return step()
        self.graphs[key].replay()

    def capture(self, step: Callable[[], None], state: list[torch.Tensor], saved: list[torch.Tensor]
                ) -> torch.cuda.CUDAGraph:
        """Warm up (on a side stream), put `state` back to `saved`, then record the step."""
        side = torch.cuda.Stream()  # the warm-up (which allocates the step's workspaces) runs on a side stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step()
        torch.cuda.current_stream().wait_stream(side)
        for t, old in zip(state, saved):
            t.copy_(old)
        self.pool = self.pool or torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):  # records the step without running it; replay() runs it
            step()
        torch.cuda.synchronize()  # instantiation done: its time counts as capture time
        return graph
