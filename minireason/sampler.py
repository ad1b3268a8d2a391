"""Batched, KV-cached sampling: many samples of many prompts, with per-token log-probs.

How one call of `generate` runs:
1. Prompts are sorted by length and packed into chunks so that rows x (prompt + max_new_tokens)
   stays under `max_batch_tokens` (bounded memory for n=256 over hundreds of questions). A prompt
   whose n samples do not fit in one chunk is split over several.
2. Per chunk, the distinct prompts are left-padded and run once (prefill) into a preallocated
   `KVCache`, which is then copied to the n rows of each prompt (`repeat_interleave`).
3. Decode: one token per row per step. The new key/value is written into its slot of the cache
   (no concatenation). Rows that emitted EOS (or a stop string) are dropped from the batch once half
   of the rows are done, so finished rows stop costing work.

Sampling: logits / T, keep the top-k, then the smallest set of tokens whose probability mass
reaches top-p, renormalise, draw. T = 0 is greedy. Each sampled token also gets its log-prob under
the model's own distribution, log softmax(logits)[token] at temperature 1 with no filtering, which
is what a full forward pass over the finished sequence gives (GRPO's pi_old).

On CUDA the decode step runs in bf16 (the caller picks the dtype) and, by default, is captured once
per chunk as a CUDA graph with static shapes (full-length cache, mask over all slots), replayed each
step; this removes the per-kernel launch overhead that dominates small-batch decoding. On the CPU
everything stays eager and attends only over the slots written so far.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import torch
from tqdm.auto import tqdm

from .model import Transformer
from .tokenizer import Tokenizer


@dataclass
class SamplingParams:
    n: int = 1  # samples per prompt
    temperature: float = 0.9  # 0 = greedy
    top_k: int = 50  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    max_new_tokens: int = 512
    stop_strings: tuple[str, ...] = ()  # stop a row once its text contains one (kept in the text)
    seed: int = 0
    max_batch_tokens: int = 1 << 17  # rows x (prompt + max_new_tokens) per chunk
    cuda_graph: bool = True  # capture the decode step on CUDA

    def __post_init__(self):
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError(f"n and max_new_tokens must be >= 1, got n={self.n}, max_new_tokens={self.max_new_tokens}")
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0, top_k >= 0, 0 < top_p <= 1; got {self}")


@dataclass
class Sample:
    prompt_index: int
    token_ids: list[int]  # generated tokens, the EOS token included when finish_reason == "eos"
    text: str  # decoded generated text, special tokens dropped
    logprobs: list[float]  # log pi(token) under the model (T=1, unfiltered), one per token_ids entry
    finish_reason: str  # "eos", "stop" (a stop string) or "length"
    prompt_ids: list[int] = field(default_factory=list, repr=False)


class KVCache:
    """Keys and values of every layer in one preallocated tensor each: (layers, rows, kv_heads, slots, head_dim).

    The caller sets `write_slots` (a LongTensor of the slots this forward writes) and `attend_len`
    (how many slots attention reads; None = all, the static-shape mode) before each forward.
    """

    def __init__(self, k: torch.Tensor, v: torch.Tensor):
        self.k, self.v = k, v
        self.write_slots: torch.Tensor | None = None
        self.attend_len: int | None = None

    @staticmethod
    def empty(model: Transformer, rows: int, slots: int) -> "KVCache":
        cfg, p = model.config, next(model.parameters())
        shape = (cfg.num_hidden_layers, rows, cfg.num_key_value_heads, slots, cfg.head_dim)
        # under autocast (fp32 weights, bf16 compute) the keys and values come out in the autocast dtype
        dtype = torch.get_autocast_dtype(p.device.type) if torch.is_autocast_enabled(p.device.type) else p.dtype
        return KVCache(
            torch.zeros(shape, dtype=dtype, device=p.device), torch.zeros(shape, dtype=dtype, device=p.device)
        )

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # .to: under autocast the projections are bf16 but RoPE (fp32 cos/sin) returns fp32 keys
        self.k[layer].index_copy_(2, self.write_slots, k.to(self.k.dtype))
        self.v[layer].index_copy_(2, self.write_slots, v.to(self.v.dtype))
        n = self.attend_len or self.k.shape[3]
        return self.k[layer, :, :, :n], self.v[layer, :, :, :n]

    def select_rows(self, rows: torch.Tensor) -> "KVCache":
        """Rows `rows` of this cache (repeat a row index to copy it, leave one out to drop it)."""
        return KVCache(self.k.index_select(1, rows), self.v.index_select(1, rows))


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


def sample_tokens(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row from (rows, vocab) logits."""
    if params.temperature == 0:
        return logits.argmax(-1)
    probs = filter_logits(logits, params.temperature, params.top_k, params.top_p).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# ----------------------------------------------------------------------------------------------
# Generation


def _chunks(lengths: list[int], n: int, max_new: int, max_batch_tokens: int) -> list[list[tuple[int, int]]]:
    """Pack (prompt index, number of samples) pieces into chunks under the token budget, shortest prompts first."""
    chunks: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    used_rows, longest = 0, 0
    for i in sorted(range(len(lengths)), key=lambda j: lengths[j]):
        left = n
        while left:
            row_tokens = max(longest, lengths[i]) + max_new
            free = max_batch_tokens // row_tokens - used_rows
            if free <= 0 and current:
                chunks.append(current)
                current, used_rows, longest = [], 0, 0
                continue
            take = min(left, max(free, 1))
            current.append((i, take))
            used_rows, longest, left = used_rows + take, max(longest, lengths[i]), left - take
    if current:
        chunks.append(current)
    return chunks


def _stopped_by_string(tokenizer: Tokenizer, ids: list[int], stop_strings: Sequence[str]) -> bool:
    window = max(len(s) for s in stop_strings) + 8  # tokens: enough to hold any stop string
    tail = tokenizer.decode(ids[-window:], skip_special_tokens=False)
    return any(s in tail for s in stop_strings)


@torch.no_grad()
def generate(
    model: Transformer,
    tokenizer: Tokenizer,
    prompts: Sequence[str | list[int]],
    params: SamplingParams,
    progress: bool = False,
) -> list[Sample]:
    """`params.n` samples for each prompt (text, already templated, or token ids), ordered by prompt then sample."""
    prompt_ids = [tokenizer.encode(p) if isinstance(p, str) else list(p) for p in prompts]
    for i, ids in enumerate(prompt_ids):
        if not ids:
            raise ValueError(f"prompt {i} is empty")
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(params.seed)
    eos = torch.tensor(tokenizer.eos_ids, device=device)
    chunks = _chunks([len(p) for p in prompt_ids], params.n, params.max_new_tokens, params.max_batch_tokens)
    was_training = model.training
    model.eval()
    results: dict[int, list[Sample]] = {i: [] for i in range(len(prompt_ids))}
    bar = tqdm(total=len(prompt_ids) * params.n, desc="sampling", unit="sample", disable=not progress, leave=False)
    try:
        for chunk in chunks:
            for s in _generate_chunk(model, tokenizer, prompt_ids, chunk, params, gen, eos):
                results[s.prompt_index].append(s)
            bar.update(sum(count for _, count in chunk))
    finally:
        bar.close()
        model.train(was_training)
    return [s for i in range(len(prompt_ids)) for s in results[i]]


def _generate_chunk(model, tokenizer, prompt_ids, chunk, params, gen, eos) -> list[Sample]:
    device = eos.device
    distinct = [i for i, _ in chunk]
    P = max(len(prompt_ids[i]) for i in distinct)
    slots = P + params.max_new_tokens
    # Prefill the distinct prompts once, left-padded: slot P-1 is every prompt's last token.
    ids = torch.full((len(distinct), P), tokenizer.pad_id, dtype=torch.long, device=device)
    prompt_mask = torch.zeros(len(distinct), P, dtype=torch.bool, device=device)
    for r, i in enumerate(distinct):
        ids[r, P - len(prompt_ids[i]):] = torch.tensor(prompt_ids[i], device=device)
        prompt_mask[r, P - len(prompt_ids[i]):] = True
    cache = KVCache.empty(model, len(distinct), slots)
    cache.write_slots, cache.attend_len = torch.arange(P, device=device), P
    logits = model(ids, attention_mask=prompt_mask, kv_cache=cache)[:, -1].float()
    # Copy each prompt's cache and last logits to its sample rows.
    counts = torch.tensor([c for _, c in chunk], device=device)
    row_of = torch.arange(len(distinct), device=device).repeat_interleave(counts)
    cache, logits = cache.select_rows(row_of), logits[row_of]
    key_mask = torch.zeros(len(row_of), slots, dtype=torch.bool, device=device)
    key_mask[:, :P] = prompt_mask[row_of]
    positions = prompt_mask[row_of].sum(-1, keepdim=True)  # position of the first generated token
    R = len(row_of)

    out_tokens = torch.zeros(R, params.max_new_tokens, dtype=torch.long, device=device)
    out_logprobs = torch.zeros(R, params.max_new_tokens, device=device)
    lengths = torch.zeros(R, dtype=torch.long, device=device)
    hit_eos = torch.zeros(R, dtype=torch.bool, device=device)
    hit_stop = [False] * R
    batch_rows = torch.arange(R, device=device)  # which output row each batch row fills
    finished = torch.zeros(R, dtype=torch.bool, device=device)
    decoder = _Decoder(model, cache, key_mask, use_graph=params.cuda_graph and device.type == "cuda")
    # Reading a GPU value on the host waits for the GPU, so on CUDA "is every row done?" is asked only
    # every 8 steps and the host queues the steps in between (a done row's extra tokens are never kept).
    check_every = 1 if device.type == "cpu" else 8

    for t in range(params.max_new_tokens):
        tokens = sample_tokens(logits, params, gen)
        logprobs = torch.log_softmax(logits, -1).gather(-1, tokens[:, None]).squeeze(-1)
        # Rows still running record this token; finished rows keep their outputs (no host sync here).
        live = ~finished
        out_tokens[batch_rows, t] = tokens
        out_logprobs[batch_rows, t] = logprobs
        lengths[batch_rows] = torch.where(live, t + 1, lengths[batch_rows])
        ended = live & torch.isin(tokens, eos)
        hit_eos[batch_rows] |= ended
        if params.stop_strings:
            for b in (live & ~ended).nonzero().flatten().tolist():
                row = int(batch_rows[b])
                if _stopped_by_string(tokenizer, out_tokens[row, : t + 1].tolist(), params.stop_strings):
                    hit_stop[row], ended[b] = True, True
        finished |= ended
        if t == params.max_new_tokens - 1 or ((t + 1) % check_every == 0 and bool(finished.all())):
            break
        if decoder.can_compact and int((~finished).sum()) <= len(finished) // 2:
            # Most rows are done: drop them from the cache so they stop costing work.
            keep = (~finished).nonzero().flatten()
            batch_rows, tokens, positions, finished = batch_rows[keep], tokens[keep], positions[keep], finished[keep]
            decoder.compact(keep)
        logits = decoder.step(tokens, positions + t, slot=P + t)
    del cache
    samples = []
    lengths, hit_eos, rows_prompt = lengths.tolist(), hit_eos.tolist(), row_of.tolist()
    out_tokens, out_logprobs = out_tokens.tolist(), out_logprobs.tolist()
    for r in range(R):
        n = lengths[r]
        toks = out_tokens[r][:n]
        samples.append(Sample(
            prompt_index=distinct[rows_prompt[r]], token_ids=toks,
            text=tokenizer.decode(toks), logprobs=out_logprobs[r][:n],
            finish_reason="eos" if hit_eos[r] else "stop" if hit_stop[r] else "length",
            prompt_ids=prompt_ids[distinct[rows_prompt[r]]],
        ))
    return samples


class _Decoder:
    """Runs one decode step (one token per row) against the cache; on CUDA, through a captured graph."""

    def __init__(self, model: Transformer, cache: KVCache, key_mask: torch.Tensor, use_graph: bool):
        self.model, self.cache, self.key_mask = model, cache, key_mask
        self.use_graph, self.graph = use_graph, None

    @property
    def can_compact(self) -> bool:
        return not self.use_graph  # a graph is captured for fixed shapes

    def compact(self, keep: torch.Tensor) -> None:
        self.cache, self.key_mask = self.cache.select_rows(keep), self.key_mask[keep]

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, slot: int) -> torch.Tensor:
        """Feed token (rows,) at cache slot `slot` and RoPE position `positions` (rows, 1); next-token logits."""
        self.key_mask[:, slot] = True
        if not self.use_graph:
            self.cache.write_slots = torch.tensor([slot], device=tokens.device)
            self.cache.attend_len = slot + 1
            mask = self.key_mask[:, None, None, : slot + 1]
            return self.model(tokens[:, None], positions, attention_mask=mask, kv_cache=self.cache)[:, -1].float()
        if self.graph is None:
            try:
                self._capture(tokens, positions, slot)
            except Exception as e:  # an unsupported op or driver: stay correct, only slower
                warnings.warn(f"CUDA graph capture failed ({type(e).__name__}: {e}); decoding eagerly")
                self.use_graph = False
                return self.step(tokens, positions, slot)
        self.static_tokens.copy_(tokens[:, None])
        self.static_positions.copy_(positions)
        self.cache.write_slots.fill_(slot)
        self.graph.replay()
        return self.static_logits[:, -1].float()

    def _capture(self, tokens, positions, slot):
        # Static shapes: attention reads every slot, and the mask (a view of key_mask) hides unwritten ones.
        self.static_tokens, self.static_positions = tokens[:, None].clone(), positions.clone()
        self.cache.write_slots = torch.tensor([slot], device=tokens.device)
        self.cache.attend_len = None
        mask = self.key_mask[:, None, None, :]

        def run():
            return self.model(self.static_tokens, self.static_positions, attention_mask=mask, kv_cache=self.cache)

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up writes this step's own slot, which the replay rewrites
            run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.static_logits = run()
        self.graph = graph
