"""Batched, KV-cached sampling with continuous batching: many samples of many prompts, with per-token log-probs.

The scheduler. A fixed number of rows R decode together, one token per row per step, each against its
own slots of one preallocated `KVCache` (R rows x S slots, S = longest prompt + max_new_tokens; R from
`max_rows`, else from the machine: `machine_rows`; both in decode_state.py, with the per-row tensors `Rows`). Every
sample waits in a queue, in prompt order. Then:

1. Admit: once 1/ADMIT_FRACTION of the rows are free (or every waiting sample fits), the free rows take the
   next waiting samples. The distinct prompts among them are run once (prefill) into a small cache, which is
   copied to each of their sample rows; a prompt sits at slots [0, len), and its first token is drawn from the
   prefill's last logits.
2. Decode: every row feeds its last token at slot = position = len + tokens so far, and draws the next
   one. A row whose token is an EOS, or that reached max_new_tokens, is done; it idles until harvested.
3. Harvest: done rows become `Sample`s and are free again; go to 1 while samples wait.

So the batch stays full until the queue runs dry: a row that ends early takes new work instead of
decoding padding until the longest row of its batch ends. After that, whenever the live rows fit in half
of the running ones, they are packed to the front and the steps run on R/2, then R/4, ... rows (on CUDA,
with a captured graph per row count). With `continuous=False` a new batch is admitted only when every row is
done (static batching, the baseline `benchmarks/sampler.py` times). Attention reads only the first L slots,
L the longest occupied row's length (rounded up to `ATTEND_BUCKET` on CUDA); with `row_attention` each row reads
only its own (row_attention.row_block_mask: on CUDA, compiled FlexAttention skips the rest).

Sampling: top-k on the raw logits, then temperature and the top-p nucleus on the k candidates,
renormalise, draw. T = 0 is greedy. The draw is an inverse-CDF lookup of one uniform number that is a
hash of (seed, sample number, token number), so a sample does not depend on which row, batch or
row count it ran in (only, rarely, through the last bits of float maths that batch shapes can
change), and the step needs no random-generator state. Each token also gets its log-prob under the
model's own distribution, log softmax(logits)[token] at temperature 1 with no filtering (one logsumexp):
what a full forward pass over the finished sequence gives, GRPO's pi_old.

On CUDA the decode step (forward, token choice and bookkeeping) is captured as a CUDA graph, one per row count
and attended length L (`cuda_graph.py`), and replayed; the host looks at the rows only every `CHECK_EVERY_CUDA`
steps, since reading a GPU value waits for the GPU. On the CPU everything runs eagerly and checks every step.

What a call allocates (the cache, the rows, the graphs) is freed when it returns, unless the caller passes a
`DecodeSession`: then the next call with the same model and sampling settings reuses them, graphs included
(an evaluation's blocks, GRPO's rollouts), except under autocast: there a graph reads the weights' cached copies,
which live only as long as the autocast region, so each call captures its graphs anew. The session holds that
memory until it is dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

import torch
from tqdm.auto import tqdm

from .cuda_graph import ATTEND_BUCKET, StepGraphs, round_up
from .decode_state import DecodeBuffers, DecodeSession, KVCache, Rows, machine_rows
from .model import Transformer
from .row_attention import check_row_attention, row_block_mask
from .tokenizer import Tokenizer

ADMIT_FRACTION = 8  # admit new samples once 1/8 of the rows are free (or all that wait fit): fewer, larger prefills
CHECK_EVERY_CUDA = 8  # decode steps between two looks at the rows on CUDA (a done row idles at most this long)


@dataclass
class SamplingParams:
    n: int = 1  # samples per prompt
    temperature: float = 0.9  # 0 = greedy
    top_k: int = 50  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    max_new_tokens: int = 1024  # the training and evaluation scripts' default too
    seed: int = 0
    first_sample: int = 0  # the random stream's number of this call's first sample (collect: across its blocks)
    max_rows: int = 0  # rows decoding at once; 0: sized by the machine (machine_rows)
    cuda_graph: bool = True  # capture the decode step on CUDA
    continuous: bool = True  # False: static batching (the next batch starts when every row is done)
    # decode attention by row length (FlexAttention; on CUDA compiled on first use, on the CPU eager and no faster);
    # off: every row reads up to the longest row's slots (SDPA). Off until measured on a GPU (gpu_check.sh).
    row_attention: bool = False

    def __post_init__(self):
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError(f"n and max_new_tokens must be >= 1, got n={self.n}, max_new_tokens={self.max_new_tokens}")
        if not self.temperature >= 0 or self.top_k < 0 or not 0 < self.top_p <= 1:  # (NaN fails >=)
            raise ValueError(f"need temperature >= 0, top_k >= 0, 0 < top_p <= 1; got {self}")
        if self.row_attention:
            check_row_attention()


@dataclass
class Sample:
    prompt_index: int
    token_ids: list[int]  # generated tokens, the EOS token included when finish_reason == "eos"
    text: str  # decoded generated text, special tokens dropped
    logprobs: list[float]  # log pi(token) under the model (T=1, unfiltered), one per token_ids entry
    finish_reason: str  # "eos" or "length"
    prompt_ids: list[int] = field(default_factory=list, repr=False)


# ----------------------------------------------------------------------------------------------
# Token selection


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Logits of the sampling distribution: scaled by 1/T, -inf outside the top-k and the top-p nucleus."""
    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # Keep token i (in descending order) while the mass strictly before it is < top_p: the
        # smallest prefix whose mass reaches top_p. The most likely token is always kept.
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def select_tokens(logits: torch.Tensor, params: SamplingParams,
                  uniform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row from (rows, vocab) logits, given one uniform number in [0, 1) per row; and its log-prob.

    Top-k runs on the raw logits (temperature does not change the order); temperature and top-p then
    touch only the k candidates. The token is the first candidate whose cumulative probability passes
    u * total, so a filtered-out candidate (probability 0) is never drawn.
    """
    logits = logits.float()  # (rows, vocab)
    if params.temperature == 0:
        tokens = logits.argmax(-1)
    else:
        k = params.top_k if 0 < params.top_k < logits.shape[-1] else logits.shape[-1]
        top_logits, top_ids = torch.topk(logits, k, dim=-1)  # (rows, k), sorted descending
        probs = filter_logits(top_logits, params.temperature, 0, params.top_p).softmax(-1)
        cdf = probs.cumsum(-1)  # (rows, k)
        pick = (cdf < uniform[:, None] * cdf[:, -1:]).sum(-1, keepdim=True).clamp(max=k - 1)  # (rows, 1)
        tokens = top_ids.gather(-1, pick).squeeze(-1)
    logprobs = logits.gather(-1, tokens[:, None]).squeeze(-1) - torch.logsumexp(logits, -1)
    return tokens, logprobs


def sample_tokens(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row from (rows, vocab) logits, drawing the uniform numbers from `generator`."""
    uniform = torch.rand(logits.shape[0], generator=generator, device=logits.device)
    return select_tokens(logits, params, uniform)[0]


def hashed_uniform(seed: int | torch.Tensor, sample_ids: torch.Tensor, token_index: torch.Tensor) -> torch.Tensor:
    """A uniform number in [0, 1) for each (seed, sample, token) triple: a counter-based generator.

    Three rounds of xor-shift-multiply over 32-bit words mix the three counters; the top 24 bits make the
    float. No int64 product overflows while sample numbers stay below 2^31 and token numbers below 2^20
    (the rounds' multipliers are below 2^31 and act on 32-bit words).
    """
    mask = 0xFFFFFFFF
    x = (sample_ids * 0x9E3779B1 + token_index * 0x7FEB352D + ((seed * 0x2C1B3C6D + 0x165667B1) & mask)) & mask
    for multiplier in (0x7FEB352D, 0x446F3A4B, 0x2545F491):
        x = ((x ^ (x >> 16)) * multiplier) & mask
    x = x ^ (x >> 16)
    return (x >> 8).float() / float(1 << 24)


# ----------------------------------------------------------------------------------------------
# The decode buffers: made per call, or kept by the caller's session


def decode_layout(model: Transformer, tokenizer: Tokenizer, params: SamplingParams, use_graphs: bool) -> tuple:
    """Everything a captured decode step holds fixed apart from its tensors' contents: the weights' storage (the
    same model, not moved), the cache dtype, the sampling constants, the EOS ids, max_new_tokens."""
    p = next(model.parameters())
    dtype = torch.get_autocast_dtype(p.device.type) if torch.is_autocast_enabled(p.device.type) else p.dtype
    return (str(p.device), dtype, tuple(w.data_ptr() for w in model.parameters()), params.max_new_tokens,
            params.temperature, params.top_k, params.top_p, tuple(tokenizer.eos_ids), use_graphs, params.row_attention)


def use_cuda_graphs(params: SamplingParams, device: torch.device) -> bool:
    return params.cuda_graph and device.type == "cuda"


def decode_buffers(model: Transformer, tokenizer: Tokenizer, params: SamplingParams, slots: int, samples: int,
                   session: DecodeSession | None) -> DecodeBuffers:
    """The session's buffers when they fit this call (same layout, at least `slots` slots and the rows wanted, no
    more rows than max_rows), else new ones (the session's old ones freed first), kept in the session if any."""
    device = next(model.parameters()).device
    use_graphs = use_cuda_graphs(params, device)
    layout = decode_layout(model, tokenizer, params, use_graphs)
    old = session.buffers if session else None
    if old and old.layout == layout and old.cache.k.shape[3] >= slots:
        rows = len(old.rows.tokens)
        if (params.max_rows or rows) >= rows >= min(samples, params.max_rows or machine_rows(model, slots)):
            if old.graphs is not None and torch.is_autocast_enabled(device.type):
                # Under autocast a graph reads the region's cached low-precision copies of the weights, which the
                # region frees when it ends: a graph of an earlier call would replay stale weights or freed memory.
                old.graphs = StepGraphs()
            return old
    if session:
        session.buffers = old = None  # freed before the new ones are sized from free memory
    R = max(1, min(samples, params.max_rows or machine_rows(model, slots)))
    S = min(round_up(slots, ATTEND_BUCKET), model.config.max_position_embeddings) if use_graphs else slots
    buffers = DecodeBuffers(layout, Rows.empty(R, S, params.max_new_tokens, device), KVCache.empty(model, R, S),
                            torch.tensor(tokenizer.eos_ids, device=device), StepGraphs() if use_graphs else None)
    if session:
        session.buffers = buffers
    return buffers


# ----------------------------------------------------------------------------------------------
# Generation


@torch.no_grad()
def generate(
    model: Transformer,
    tokenizer: Tokenizer,
    prompts: Sequence[str | list[int]],
    params: SamplingParams,
    progress: bool = False,
    stats: dict | None = None,
    session: DecodeSession | None = None,
) -> list[Sample]:
    """`params.n` samples for each prompt (text, already templated, or token ids), ordered by prompt then sample.
    `stats`, when given, receives the scheduler's counts: decode_steps, row_steps (rows run, summed over the
    steps; the occupancy of a run is its generated tokens after each sample's first / row_steps), and on CUDA
    the graphs captured in this call and the seconds their capture took. `session`: see the module docstring."""
    prompt_ids = [tokenizer.encode(p) if isinstance(p, str) else list(p) for p in prompts]
    check_prompt_lengths(model, prompt_ids, params.max_new_tokens)
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(prompt_ids) * params.n, desc="sampling", unit="sample", disable=not progress, leave=False)
    try:
        slots = max(len(p) for p in prompt_ids) + params.max_new_tokens
        buffers = decode_buffers(model, tokenizer, params, slots, len(prompt_ids) * params.n, session)
        graphs = buffers.graphs
        captured = (len(graphs.graphs), graphs.capture_seconds) if graphs else (0, 0.0)  # before this call
        scheduler = _Scheduler(model, tokenizer, prompt_ids, params, buffers)
        samples = scheduler.run(bar)
        if stats is not None:
            stats.update(decode_steps=scheduler.decode_steps, row_steps=scheduler.row_steps,
                         graphs=len(graphs.graphs) - captured[0] if graphs else 0,
                         capture_seconds=graphs.capture_seconds - captured[1] if graphs else 0.0)
    finally:
        bar.close()
        model.train(was_training)
    return [sample for _, sample in sorted(samples, key=lambda pair: pair[0])]


def check_prompt_lengths(model: Transformer, prompt_ids: list[list[int]], max_new_tokens: int) -> None:
    """Refuse an empty prompt, or one that with max_new_tokens would run past the model's context."""
    context = model.config.max_position_embeddings
    for i, ids in enumerate(prompt_ids):
        if not ids:
            raise ValueError(f"prompt {i} is empty")
        if len(ids) + max_new_tokens > context:
            raise ValueError(f"prompt {i} has {len(ids)} tokens; with max_new_tokens={max_new_tokens} it needs "
                             f"{len(ids) + max_new_tokens} positions, more than the model's context of {context}")


class _Scheduler:
    """The admit / decode / harvest loop of the module docstring, for one call of `generate`."""

    def __init__(self, model: Transformer, tokenizer: Tokenizer, prompt_ids: list[list[int]], params: SamplingParams,
                 buffers: DecodeBuffers):
        self.model, self.tokenizer, self.prompt_ids, self.params = model, tokenizer, prompt_ids, params
        self.device = next(model.parameters()).device
        self.full_rows, self.full_cache, self.eos = buffers.rows, buffers.cache, buffers.eos
        self.graphs = buffers.graphs
        self.full_rows.done.fill_(True)  # (a session's rows: all free)
        R, self.S = self.full_cache.k.shape[1], self.full_cache.k.shape[3]  # rows, slots per row
        self.waiting = deque(range(len(prompt_ids) * params.n))  # sample numbers: prompt index * n + sample index
        self.occupant: list[int | None] = [None] * R  # the sample number each row holds
        self.lengths = [0] * R  # host copy of each row's position (the next slot it writes)
        self.rows, self.cache = self.full_rows, self.full_cache  # the first rows of each, once packed
        self.check_every = CHECK_EVERY_CUDA if self.graphs or self.device.type == "cuda" else 1
        self.decode_steps = self.row_steps = 0  # counted here: a CUDA graph's replay runs no Python hook

    def run(self, bar) -> list[tuple[int, Sample]]:
        finished: list[tuple[int, Sample]] = []
        while True:
            harvested = self.harvest()
            finished += harvested
            bar.update(len(harvested))
            if (self.params.continuous or all(o is None for o in self.occupant)) and self.admit():
                continue  # harvest at once the samples whose first token already ended them
            if all(o is None for o in self.occupant):
                return finished
            if not self.waiting:
                self.pack_rows()
            for _ in range(self.check_every):
                self.step(self.attend_len())
                self.decode_steps, self.row_steps = self.decode_steps + 1, self.row_steps + len(self.occupant)
                self.lengths = [min(n + 1, self.S - 1) for n in self.lengths]

    def pack_rows(self) -> None:
        """Once nothing waits: when the live rows fit in half of the running ones, they move to the front and the
        steps run on the first R/2 (R/4, ...) rows only. The moved rows are copied within the same tensors, so the
        CUDA graphs captured for each row count stay valid (one graph per row count and bucket)."""
        running = len(self.occupant)
        live = [r for r, o in enumerate(self.occupant) if o is not None]
        size = running
        while size > 1 and len(live) <= size // 2:
            size //= 2
        if size == running:
            return
        moving = [r for r in live if r >= size]
        free = [r for r in range(size) if self.occupant[r] is None][: len(moving)]
        src, dst = (torch.tensor(rows, dtype=torch.long, device=self.device) for rows in (moving, free))
        for t in vars(self.full_rows).values():
            t[dst] = t[src]
        for t in (self.full_cache.k, self.full_cache.v):
            t[:, dst] = t[:, src]
        for r, d in zip(moving, free):
            self.occupant[d], self.lengths[d] = self.occupant[r], self.lengths[r]
        self.occupant, self.lengths = self.occupant[:size], self.lengths[:size]
        self.rows = Rows(*(t[:size] for t in vars(self.full_rows).values()))
        self.cache = KVCache(self.full_cache.k[:, :size], self.full_cache.v[:, :size])

    def attend_len(self) -> int:
        """Slots the next step reads: the longest row's, this step's slot included; rounded up for CUDA graphs."""
        longest = max(n for n, o in zip(self.lengths, self.occupant) if o is not None) + 1
        return min(self.S, round_up(longest, ATTEND_BUCKET) if self.graphs else longest)

    def step(self, attend_len: int) -> None:
        """One decode step of the running rows: eager, or the graph of (rows running, slots read)."""
        rows, cache, params, eos, slots = self.rows, self.cache, self.params, self.eos, self.S
        run = lambda: decode_step(self.model, rows, cache, attend_len, params, eos, slots)  # noqa: E731
        if self.graphs is None:
            return run()
        self.graphs.run((len(self.occupant), attend_len), run, list(vars(self.full_rows).values()))

    def admit(self) -> int:
        """Free rows take the next waiting samples: prefill their distinct prompts, draw each first token."""
        free = [r for r, o in enumerate(self.occupant) if o is None][: len(self.waiting)]
        if not free or len(free) < min(len(self.waiting), len(self.occupant) // ADMIT_FRACTION):
            return 0
        sample_ids = [self.waiting.popleft() for _ in free]
        distinct = sorted({s // self.params.n for s in sample_ids})
        logits, lengths = self.prefill(free, distinct, [distinct.index(s // self.params.n) for s in sample_ids])
        which = torch.tensor(free, device=self.device)
        rows = self.rows
        rows.sample_ids[which] = torch.tensor(sample_ids, device=self.device) + self.params.first_sample
        rows.seeds[which] = self.params.seed & 0xFFFFFFFF  # only its low 32 bits reach the hash; any int fits
        rows.steps[which], rows.done[which] = 0, False
        rows.positions[which] = lengths
        uniform = hashed_uniform(rows.seeds[which], rows.sample_ids[which], rows.steps[which])
        tokens, logprobs = select_tokens(logits, self.params, uniform)
        rows.record(which, tokens, logprobs, self.eos, self.params.max_new_tokens)
        for r, s, n in zip(free, sample_ids, lengths.tolist()):
            self.occupant[r], self.lengths[r] = s, n
        return len(free)

    def prefill(self, free: list[int], distinct: list[int], prompt_of_row: list[int]):
        """Run the distinct prompts once and copy their keys/values to the rows `free`; each row's last logits
        (rows, vocab) and prompt length (rows,)."""
        P = max(len(self.prompt_ids[i]) for i in distinct)
        ids = torch.full((len(distinct), P), self.tokenizer.pad_id, dtype=torch.long, device=self.device)
        real = torch.zeros(len(distinct), P, dtype=torch.bool, device=self.device)
        for j, i in enumerate(distinct):  # prompts at slots [0, len), padding after (never seen by real tokens)
            ids[j, : len(self.prompt_ids[i])] = torch.tensor(self.prompt_ids[i], device=self.device)
            real[j, : len(self.prompt_ids[i])] = True
        small = KVCache.empty(self.model, len(distinct), P)
        small.write_slots = torch.arange(P, device=self.device).expand(len(distinct), P)
        hidden = self.model.hidden_states(ids, attention_mask=real, kv_cache=small)  # (distinct, P, hidden)
        lengths = real.sum(-1)  # (distinct,)
        last = self.model.logits(hidden[torch.arange(len(distinct), device=self.device), lengths - 1])  # (distinct, V)
        row_of = torch.tensor(prompt_of_row, device=self.device)  # (free,) which prompt each row takes
        which = torch.tensor(free, device=self.device)
        self.cache.k[:, which, :, :P] = small.k[:, row_of]
        self.cache.v[:, which, :, :P] = small.v[:, row_of]
        self.rows.key_real[which] = False
        self.rows.key_real[which, :P] = real[row_of]
        return last[row_of], lengths[row_of]

    def harvest(self) -> list[tuple[int, Sample]]:
        """Turn the done rows into Samples (keyed by sample number) and free them."""
        done = self.rows.done.tolist()
        ready = [r for r, o in enumerate(self.occupant) if o is not None and done[r]]
        if not ready:
            return []
        which = torch.tensor(ready, device=self.device)
        steps = self.rows.steps[which].tolist()
        tokens, logprobs = self.rows.out_tokens[which].tolist(), self.rows.out_logprobs[which].tolist()
        eos, out = set(self.tokenizer.eos_ids), []
        for j, r in enumerate(ready):
            s, n = self.occupant[r], steps[j]
            ids = tokens[j][:n]
            prompt_index = s // self.params.n
            out.append((s, Sample(prompt_index=prompt_index, token_ids=ids, text=self.tokenizer.decode(ids),
                                  logprobs=logprobs[j][:n], finish_reason="eos" if ids[-1] in eos else "length",
                                  prompt_ids=self.prompt_ids[prompt_index])))
            self.occupant[r] = None
        return out


def decode_step(model: Transformer, rows: Rows, cache: KVCache, attend_len: int, params: SamplingParams,
                eos: torch.Tensor, slots: int) -> None:
    """Feed every row its last token, draw the next, record it: all on tensors, nothing read on the host (what a
    CUDA graph captures; it bakes in the arguments' storage and the constants, never reads them again)."""
    rows.key_real.scatter_(1, rows.positions[:, None], True)
    cache.write_slots, cache.attend_len = rows.positions[:, None], attend_len
    if params.row_attention:  # a row's tokens fill its slots 0 .. position (prompt at [0, len), then one a step)
        keys = row_block_mask(rows.positions + 1, attend_len)
    else:
        keys = rows.key_real[:, :attend_len]  # (R, L)
    logits = model(rows.tokens[:, None], rows.positions[:, None], attention_mask=keys, kv_cache=cache)[:, -1]
    tokens, logprobs = select_tokens(logits, params, hashed_uniform(rows.seeds, rows.sample_ids, rows.steps))
    rows.positions.add_(1).clamp_(max=slots - 1)  # a done row keeps writing its last slot until harvested
    rows.record(torch.arange(len(rows.tokens), device=rows.tokens.device), tokens, logprobs, eos,
                params.max_new_tokens)
