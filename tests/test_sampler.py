"""The KV-cached sampler against an uncached forward, transformers' greedy generate, and exact distributions."""

import math
import re
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import tiny_hf_model
from minireason.checkpoint import load_pretrained
from minireason.row_attention import check_row_attention
from minireason.sampler import SamplingParams, filter_logits, generate, hashed_uniform, sample_tokens


class IntTokenizer:
    """Token ids written as space-separated integers; enough for the sampler."""

    pad_id = 0

    def __init__(self, eos_ids=(5,)):
        self.eos_ids = list(eos_ids)

    def encode(self, text):
        return [int(t) for t in text.split()]

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(str(i) for i in ids if not (skip_special_tokens and i in self.eos_ids))


def ours_and_hf(family, tmp_path, scale=1.0):
    hf = tiny_hf_model(family)
    if scale != 1.0:  # sharper logits, so greedy paths are varied rather than one repeated token
        with torch.no_grad():
            for name, p in hf.named_parameters():
                if name.endswith("weight") and "norm" not in name:
                    p.mul_(scale)
    hf.save_pretrained(tmp_path / family)
    return load_pretrained(tmp_path / family), hf


def row_attention_supported() -> bool:
    try:
        check_row_attention()
    except ValueError:
        return False
    return True


needs_row_attention = pytest.mark.skipif(not row_attention_supported(), reason="row_attention needs torch >= 2.9")
DIFFERENT = [[3, 4, 7, 8, 9, 10, 11], [12, 13], [20, 21, 22, 23], [30]]
EQUAL = [[3, 4, 7, 8], [12, 13, 14, 15], [20, 21, 22, 23]]


def uncached_logprobs(model, sample):
    full = torch.tensor([sample.prompt_ids + sample.token_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(full).float(), -1)[0]
    P = len(sample.prompt_ids)
    return logp[P - 1 : -1].gather(-1, torch.tensor(sample.token_ids)[:, None]).squeeze(-1)


@pytest.mark.parametrize("prompts", [DIFFERENT, EQUAL], ids=["different-lengths", "equal-unpadded"])
@pytest.mark.parametrize("family", ["qwen2", "llama"])
def test_logprobs_equal_uncached_forward(prompts, family, tmp_path):
    model, _ = ours_and_hf(family, tmp_path, scale=3.0)
    params = SamplingParams(n=3, temperature=1.0, top_k=0, max_new_tokens=24, seed=1)
    samples = generate(model, IntTokenizer(), [" ".join(map(str, p)) for p in prompts], params)
    assert [s.prompt_index for s in samples] == [i for i in range(len(prompts)) for _ in range(3)]
    for s in samples:
        assert s.prompt_ids == prompts[s.prompt_index]
        assert len(s.logprobs) == len(s.token_ids) > 0
        assert (uncached_logprobs(model, s) - torch.tensor(s.logprobs)).abs().max().item() <= 1e-4


@pytest.mark.parametrize("family", ["qwen2", "llama"])
@pytest.mark.parametrize("prompts", [DIFFERENT, EQUAL], ids=["different-lengths", "equal-unpadded"])
def test_greedy_equals_transformers_generate(family, prompts, tmp_path):
    model, hf = ours_and_hf(family, tmp_path, scale=3.0)
    tok = IntTokenizer(eos_ids=[96])
    ours = generate(model, tok, prompts, SamplingParams(temperature=0, max_new_tokens=20))
    distinct_tokens = set()
    for p, s in zip(prompts, ours):
        ref = hf.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                          max_new_tokens=20, do_sample=False, eos_token_id=96, pad_token_id=0)[0, len(p):].tolist()
        assert s.token_ids == ref
        distinct_tokens |= set(ref)
    assert len(distinct_tokens) >= 5  # a varied path, not one token repeated


def test_greedy_same_whatever_the_chunking(tmp_path):
    model, _ = ours_and_hf("qwen2", tmp_path, scale=3.0)
    tok = IntTokenizer()
    one = generate(model, tok, DIFFERENT, SamplingParams(n=4, temperature=0, max_new_tokens=16))
    # budget of 2 rows per chunk: prompts split over chunks, n split within a prompt
    split = generate(
        model, tok, DIFFERENT, SamplingParams(n=4, temperature=0, max_new_tokens=16, max_rows=2)
    )
    assert [s.token_ids for s in one] == [s.token_ids for s in split]
    assert [s.prompt_index for s in one] == [s.prompt_index for s in split]


def test_same_seed_same_samples_other_seed_different(tmp_path):
    model, _ = ours_and_hf("llama", tmp_path, scale=2.0)
    tok = IntTokenizer()
    run = lambda seed: [
        s.token_ids
        for s in generate(model, tok, DIFFERENT, SamplingParams(n=5, temperature=1.0, max_new_tokens=12, seed=seed))
    ]
    assert run(3) == run(3)
    assert run(3) != run(4)


def test_eos_ends_a_row_and_nothing_follows(tmp_path):
    model, _ = ours_and_hf("qwen2", tmp_path, scale=2.0)
    eos = list(range(40, 60))  # a fifth of the vocabulary ends a row: both finish reasons occur
    tok = IntTokenizer(eos_ids=eos)
    samples = generate(model, tok, DIFFERENT, SamplingParams(n=16, temperature=1.0, top_k=0, max_new_tokens=10, seed=0))
    reasons = {s.finish_reason for s in samples}
    assert reasons == {"eos", "length"}
    for s in samples:
        is_eos = [t in eos for t in s.token_ids]
        if s.finish_reason == "eos":
            assert is_eos[-1] and not any(is_eos[:-1])  # EOS is the last token and the only one
            assert len(s.token_ids) <= 10
            assert s.text == tok.decode(s.token_ids)
        else:
            assert len(s.token_ids) == 10 and not any(is_eos)
        assert (uncached_logprobs(model, s) - torch.tensor(s.logprobs)).abs().max().item() <= 1e-4


def decode_steps(model):
    """Count the model's one-token (decode) forwards."""
    calls = []
    model.register_forward_pre_hook(lambda m, args: calls.append(1) if args[0].shape[1] == 1 else None)
    return calls


def test_continuous_batching_refills_rows_and_samples_do_not_depend_on_the_batch(tmp_path):
    model, _ = ours_and_hf("qwen2", tmp_path, scale=2.0)
    tok = IntTokenizer(eos_ids=list(range(40, 70)))  # rows end at very different lengths
    calls = decode_steps(model)
    params = dict(n=12, temperature=1.0, top_k=0, max_new_tokens=30, seed=5)
    runs = {}
    for name, extra in [("continuous", {}), ("static", {"continuous": False}),
                        ("two rows", {"max_rows": 2}), ("one row", {"max_rows": 1})]:
        calls.clear()
        samples = generate(model, tok, DIFFERENT, SamplingParams(**params, **extra))
        runs[name] = ([s.token_ids for s in samples], len(calls), sum(len(s.token_ids) for s in samples))
        for s in samples:
            assert (uncached_logprobs(model, s) - torch.tensor(s.logprobs)).abs().max().item() <= 1e-4
    tokens = runs["continuous"][0]
    assert all(r[0] == tokens for r in runs.values())  # same samples whatever the rows or the schedule
    assert len({len(t) for t in tokens}) > 5  # lengths vary, so scheduling matters
    useful = runs["one row"][2]
    # One row decodes every token of every sample in turn (minus each sample's first, drawn from the prefill).
    assert runs["one row"][1] == useful - len(tokens)
    # All samples fit in one batch here (48 rows), so continuous = static; with 2 rows a freed row is refilled.
    assert runs["continuous"][1] == runs["static"][1] == max(len(t) for t in tokens) - 1
    assert runs["two rows"][1] < useful / 2 + 30


def test_refill_beats_static_batching_when_lengths_vary(tmp_path):
    model, _ = ours_and_hf("llama", tmp_path, scale=2.0)
    tok = IntTokenizer(eos_ids=list(range(40, 60)))
    calls = decode_steps(model)
    steps = {}
    for continuous in (True, False):
        calls.clear()
        params = SamplingParams(n=16, temperature=1.0, top_k=0, max_new_tokens=40, seed=2, max_rows=4,
                                continuous=continuous)
        samples = generate(model, tok, DIFFERENT, params)
        steps[continuous] = len(calls)
    useful = sum(len(s.token_ids) for s in samples)
    assert steps[True] < steps[False]
    assert steps[True] <= useful / 4 + 40  # 4 rows stay busy until the queue runs dry


def test_rows_are_packed_to_a_half_a_quarter_as_the_queue_drains(tmp_path, monkeypatch):
    """Once nothing waits, every decode step runs on the fewest of R, R/2, R/4, ... rows that hold the live ones
    (never on twice as many as needed), and the samples are those of an unpacked run."""
    from minireason import sampler

    model, _ = ours_and_hf("llama", tmp_path, scale=2.0)
    tok = IntTokenizer(eos_ids=list(range(40, 60)))
    params = SamplingParams(n=16, temperature=1.0, top_k=0, max_new_tokens=40, seed=2, max_rows=8)
    unpacked = generate(model, tok, DIFFERENT, replace(params, max_rows=64))  # all 64 samples in one batch
    seen, real_step = [], sampler._Scheduler.step

    def counted(s, attend_len):
        seen.append((len(s.occupant), sum(o is not None for o in s.occupant), len(s.waiting)))
        return real_step(s, attend_len)

    monkeypatch.setattr(sampler._Scheduler, "step", counted)
    stats = {}
    packed = generate(model, tok, DIFFERENT, params, stats=stats)
    assert [s.token_ids for s in packed] == [s.token_ids for s in unpacked]
    assert stats["decode_steps"] == len(seen) and stats["row_steps"] == sum(rows for rows, _, _ in seen)  # occupancy
    drained = [(rows, live) for rows, live, waiting in seen if not waiting]
    assert {rows for rows, _ in drained} == {8, 4, 2, 1}  # every size was used
    assert all(rows in (8, 4, 2, 1) and (rows == 1 or live > rows // 2) for rows, live in drained)
    assert [rows for rows, _ in drained] == sorted((rows for rows, _ in drained), reverse=True)
    assert all(rows == 8 for rows, _, waiting in seen if waiting)


def test_sampled_tokens_follow_the_model_distribution(tmp_path):
    """Chi-square of the first generated token over many samples against the model's own softmax."""
    model, _ = ours_and_hf("llama", tmp_path, scale=1.0)
    prompt = [3, 4, 7]
    with torch.no_grad():
        logits = model(torch.tensor([prompt]))[0, -1].float()
    params = SamplingParams(n=20_000, temperature=0.8, top_k=8, top_p=0.9, max_new_tokens=1, seed=11)
    want = exact_filtered(logits.numpy(), params.temperature, params.top_k, params.top_p)
    first = [s.token_ids[0] for s in generate(model, IntTokenizer(eos_ids=[]), [prompt], params)]
    counts = np.bincount(first, minlength=len(want))
    assert counts[want == 0].sum() == 0
    support = want > 0
    expected = len(first) * want[support]
    chi2 = ((counts[support] - expected) ** 2 / expected).sum()
    dof = int(support.sum()) - 1
    assert dof >= 3 and chi2 < dof + 3.3 * math.sqrt(2 * dof) + 10, (chi2, counts[support], expected)


def test_hashed_uniforms_are_uniform_and_keyed():
    ids = torch.arange(200_000)
    u = hashed_uniform(7, ids % 1000, ids // 1000)
    assert 0 <= u.min() and u.max() < 1
    counts = torch.histc(u, bins=20, min=0, max=1)
    chi2 = ((counts - 10_000) ** 2 / 10_000).sum().item()
    assert chi2 < 19 + 3.3 * math.sqrt(38) + 10
    assert abs(np.corrcoef(u[:-1].numpy(), u[1:].numpy())[0, 1]) < 0.01  # neighbouring counters independent
    assert torch.equal(u, hashed_uniform(7, ids % 1000, ids // 1000))
    assert (u != hashed_uniform(8, ids % 1000, ids // 1000)).float().mean() > 0.99


def test_a_prompt_longer_than_the_context_is_refused(tmp_path):
    model, _ = ours_and_hf("qwen2", tmp_path)
    with pytest.raises(ValueError, match="prompt 1 has 250 tokens.*context of 256"):
        generate(model, IntTokenizer(), [[3], [4] * 250], SamplingParams(max_new_tokens=10))
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        generate(model, IntTokenizer(), [[]], SamplingParams(max_new_tokens=10))


# ---------------------------------------------------------------------------------------------- the filters


def exact_filtered(logits, temperature, top_k, top_p):
    """The sampling distribution computed by hand in float64: temperature, top-k, then top-p nucleus."""
    p = np.exp(np.asarray(logits, dtype=np.float64) / temperature)
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    keep = np.zeros(len(p), dtype=bool)
    if top_k:
        keep[order[:top_k]] = True
    else:
        keep[:] = True
    q = np.where(keep, p, 0)
    q /= q.sum()
    mass = 0.0
    nucleus = np.zeros(len(p), dtype=bool)
    for i in order:
        if not keep[i] or mass >= top_p:
            continue
        nucleus[i] = True
        mass += q[i]
    r = np.where(nucleus, q, 0)
    return r / r.sum()


LOGITS = [2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0]


@pytest.mark.parametrize("temperature,top_k,top_p", [
    (1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 3, 1.0), (1.0, 0, 0.8), (0.9, 5, 0.9), (1.3, 4, 0.6), (1.0, 1, 1.0),
])
def test_sampled_frequencies_match_filtered_distribution(temperature, top_k, top_p):
    want = exact_filtered(LOGITS, temperature, top_k, top_p)
    got_probs = filter_logits(torch.tensor([LOGITS]), temperature, top_k, top_p).softmax(-1)[0].double().numpy()
    assert np.allclose(got_probs, want, atol=1e-6)
    n = 100_000
    logits = torch.tensor(LOGITS).expand(n, -1)
    params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p)
    draws = sample_tokens(logits, params, torch.Generator().manual_seed(0)).numpy()
    counts = np.bincount(draws, minlength=len(LOGITS))
    assert counts[want == 0].sum() == 0  # nothing outside the filtered support
    support = want > 0
    expected = n * want[support]
    chi2 = ((counts[support] - expected) ** 2 / expected).sum()
    dof = max(int(support.sum()) - 1, 1)
    # 99.9% quantile of chi-square is below dof + 3.3*sqrt(2 dof) + 10 for these dof; an off-by-one in
    # a filter moves >= 1% of the mass, a chi-square in the thousands at n = 100,000.
    assert chi2 < dof + 3.3 * math.sqrt(2 * dof) + 10, (chi2, counts, expected)


def test_filter_off_by_one_would_be_caught():
    """The hand reference itself distinguishes top_k=3 from top_k=4 and top_p just below/above a boundary."""
    assert not np.allclose(exact_filtered(LOGITS, 1.0, 3, 1.0), exact_filtered(LOGITS, 1.0, 4, 1.0))
    p = exact_filtered(LOGITS, 1.0, 0, 1.0)
    first_two = p[0] + p[1]
    below = filter_logits(torch.tensor([LOGITS]), 1.0, 0, first_two - 1e-4).softmax(-1)[0]
    above = filter_logits(torch.tensor([LOGITS]), 1.0, 0, first_two + 1e-4).softmax(-1)[0]
    assert (below > 0).sum() == 2 and (above > 0).sum() == 3


def test_greedy_is_argmax():
    logits = torch.randn(50, 11, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample_tokens(logits, SamplingParams(temperature=0), None), logits.argmax(-1))


def test_bad_params_are_refused():
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError, match="n and max_new_tokens"):
        SamplingParams(n=0)


def test_rows_are_sized_by_the_machine_unless_given(tmp_path, monkeypatch):
    """On the CPU, CPU_ROWS rows (or max_rows); on CUDA the count divides free memory by kv_row_bytes, which must
    be what a cache row really takes."""
    from minireason import decode_state

    model, _ = ours_and_hf("llama", tmp_path)
    cache = decode_state.KVCache.empty(model, 3, 17)
    assert 3 * decode_state.kv_row_bytes(model.config, 17, torch.float32) == cache.k.nbytes + cache.v.nbytes
    made = []
    real = decode_state.Rows.empty
    monkeypatch.setattr(decode_state.Rows, "empty", lambda R, *a: made.append(R) or real(R, *a))
    monkeypatch.setattr(decode_state, "CPU_ROWS", 5)
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=3)
    generate(model, IntTokenizer(), [[3, 4], [5, 6]], params)
    generate(model, IntTokenizer(), [[3, 4], [5, 6]], replace(params, max_rows=2))
    generate(model, IntTokenizer(), [[3]], params)  # fewer samples than rows: one row per sample
    assert made == [5, 2, 4]


def test_generate_frees_its_cache_and_rows_when_it_returns(tmp_path, monkeypatch):
    """No reference cycle keeps the KV cache or the rows alive after `generate` returns: they are freed at once.
    Python's cycle collector is off during the call, so a cycle would keep them (it once kept gigabytes on a GPU
    through the next backward pass)."""
    import gc
    import weakref

    from minireason import sampler

    model, _ = ours_and_hf("llama", tmp_path)
    kept = []
    real_cache, real_rows = sampler.KVCache.empty, sampler.Rows.empty

    def cache(*args):
        made = real_cache(*args)
        kept.append(weakref.ref(made.k))
        return made

    def rows(*args):
        made = real_rows(*args)
        kept.append(weakref.ref(made.tokens))
        return made

    monkeypatch.setattr(sampler.KVCache, "empty", staticmethod(cache))
    monkeypatch.setattr(sampler.Rows, "empty", staticmethod(rows))
    gc.disable()
    try:
        samples = generate(model, IntTokenizer(), [" ".join(map(str, p)) for p in DIFFERENT],
                           SamplingParams(n=3, max_new_tokens=12, temperature=1.0))
        assert len(samples) == 3 * len(DIFFERENT) and len(kept) >= 3  # the cache, a prefill cache, the rows
        assert [ref() for ref in kept] == [None] * len(kept)
        kept.clear()  # a session keeps the cache and rows (not the prefill's cache) until it is dropped
        session = sampler.DecodeSession()
        generate(model, IntTokenizer(), ["3 4"], SamplingParams(n=2, max_new_tokens=4), session=session)
        assert sum(ref() is not None for ref in kept) == 2
        del session
        assert [ref() for ref in kept] == [None] * len(kept)
    finally:
        gc.enable()


class CaptureUnsafe(TorchDispatchMode):
    """Records the ops a CUDA graph cannot capture: a host read (.item(), .tolist()), a shape that depends on data
    (boolean indexing, nonzero), and random-number ops (a graph would replay one draw forever)."""

    UNSAFE = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "multinomial", "uniform_", "normal_",
              "bernoulli_", "random_", "rand", "randn", "randint", "exponential_"}

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        indices = [i for a in args if isinstance(a, (list, tuple)) for i in a if isinstance(i, torch.Tensor)]
        if name in self.UNSAFE or (name in ("index", "index_put_") and any(i.dtype == torch.bool for i in indices)):
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def decode_step_ops(monkeypatch, tmp_path, plant=None, row_attention=False) -> list[str]:
    """The capture-unsafe ops of the sampler's decode steps (what a CUDA graph replays), on the CPU."""
    from minireason import row_attention as row_module
    from minireason import sampler

    model, _ = ours_and_hf("qwen2", tmp_path)
    unsafe, real_step = CaptureUnsafe(), sampler.decode_step

    def watched(model, rows, *args):
        with unsafe:
            real_step(model, rows, *args)
            if plant:
                plant(rows)

    monkeypatch.setattr(sampler, "decode_step", watched)
    flex = row_module.flex_attention_for("cpu")

    def flex_unwatched(*args, **kwargs):  # row_attention's kernel (on CUDA one compiled kernel) is not looked into
        with torch.utils._python_dispatch._disable_current_modes():
            return flex(*args, **kwargs)

    monkeypatch.setattr(row_module, "flex_attention_for", lambda device_type: flex_unwatched)
    generate(model, IntTokenizer(), [" ".join(map(str, p)) for p in DIFFERENT],
             SamplingParams(n=2, max_new_tokens=8, temperature=0.9, top_k=20, top_p=0.9, row_attention=row_attention))
    return unsafe.seen


@pytest.mark.parametrize("row_attention", [False, pytest.param(True, marks=needs_row_attention)],
                         ids=["sdpa", "row-attention"])
def test_the_decode_step_has_no_op_a_cuda_graph_cannot_capture(monkeypatch, tmp_path, row_attention):
    assert decode_step_ops(monkeypatch, tmp_path, row_attention=row_attention) == []


@pytest.mark.parametrize("plant,name", [
    (lambda rows: rows.done.any().item(), "_local_scalar_dense"),  # a host read
    (lambda rows: rows.tokens[rows.done], "index"),  # boolean indexing: a data-dependent shape
    (lambda rows: torch.multinomial(torch.ones(len(rows.tokens), 3), 1), "multinomial"),  # a random op
])
def test_the_capture_check_fails_on_a_planted_unsafe_op(monkeypatch, tmp_path, plant, name):
    assert name in decode_step_ops(monkeypatch, tmp_path, plant)


def test_the_graph_path_emulated_on_the_cpu_matches_eager_and_never_replaces_a_captured_tensor(tmp_path, monkeypatch):
    """The CUDA-graph path's schedule on the CPU. A captured step is a fake graph: it keeps the step as captured (the
    tensors and constants of that moment, as a real graph keeps addresses and constants) and replays it, after
    checking that the rows it was captured on are still the scheduler's storage. Small buckets force several
    graphs, three rows force many refills into live graph state, and the rows are looked at every
    CHECK_EVERY_CUDA steps as on CUDA. Tokens equal the eager path's; log-probs equal an uncached forward. With a
    session, a second call (another seed, fewer prompts) replays the first call's graphs and captures none for
    shapes it already has; other sampling constants make new buffers and graphs."""
    from minireason import cuda_graph, sampler

    class FakeGraph:
        def __init__(self, step, state):
            self.step, self.held = step, [t.data_ptr() for t in state]

        def replay(self):
            self.step()

    def checked_run(self, key, step, state):
        if key in self.graphs:
            assert [t.data_ptr() for t in state] == self.graphs[key].held, "a tensor a graph holds was replaced"
            replays.append(key)
        return real_run(self, key, step, state)

    def fake_capture(self, step, state, saved):
        step()  # the warm-up step, then the rows are restored, as capture does
        for t, old in zip(state, saved):
            t.copy_(old)
        replays.append("captured")
        return FakeGraph(step, state)

    replays, real_run = [], cuda_graph.StepGraphs.run
    model, _ = ours_and_hf("qwen2", tmp_path, scale=2.0)
    tok = IntTokenizer(eos_ids=list(range(40, 70)))
    params = SamplingParams(n=6, temperature=1.0, top_k=0, max_new_tokens=20, seed=4, max_rows=3)
    eager = [generate(model, tok, DIFFERENT, params), generate(model, tok, DIFFERENT[1:], replace(params, seed=5))]
    monkeypatch.setattr(sampler, "use_cuda_graphs", lambda params, device: True)
    monkeypatch.setattr(cuda_graph.StepGraphs, "run", checked_run)
    monkeypatch.setattr(cuda_graph.StepGraphs, "capture", fake_capture)
    monkeypatch.setattr(sampler, "ATTEND_BUCKET", 8)
    session, stats = sampler.DecodeSession(), [{}, {}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed capture would fall back to eager decoding: not this test
        graphed = [generate(model, tok, DIFFERENT, params, stats=stats[0], session=session),
                   generate(model, tok, DIFFERENT[1:], replace(params, seed=5), stats=stats[1], session=session)]
    for ours, reference, st in zip(graphed, eager, stats):
        assert [s.token_ids for s in ours] == [s.token_ids for s in reference]
        for s in ours:
            assert (uncached_logprobs(model, s) - torch.tensor(s.logprobs)).abs().max().item() < 1e-5
    assert stats[0]["graphs"] >= 4 and {8, 16, 24} <= {n for _, n in session.buffers.graphs.graphs}
    assert len(replays) == stats[0]["decode_steps"] + stats[1]["decode_steps"]  # one capture or replay a step
    assert replays.count("captured") == stats[0]["graphs"] + stats[1]["graphs"]
    assert stats[1]["graphs"] < stats[0]["graphs"]  # the second call replays the first call's graphs
    assert len({len(s.token_ids) for s in graphed[0]}) > 4
    kept = session.buffers
    generate(model, tok, DIFFERENT, replace(params, temperature=0.5), stats=stats[0], session=session)
    assert session.buffers is not kept and stats[0]["graphs"] == len(session.buffers.graphs.graphs) >= 4


@needs_row_attention
def test_attention_by_row_length_gives_the_same_samples_and_exact_logprobs(tmp_path):
    """row_attention (each row reads only its own slots through a block mask; FlexAttention, eager on the CPU)
    against the SDPA path: the same tokens for rows of different lengths refilled and packed many times, and
    log-probs equal to an uncached forward."""
    model, _ = ours_and_hf("qwen2", tmp_path, scale=2.0)
    tok = IntTokenizer(eos_ids=list(range(40, 70)))
    params = SamplingParams(n=6, temperature=1.0, top_k=0, max_new_tokens=40, seed=3, max_rows=5)
    sdpa = generate(model, tok, DIFFERENT, params)
    by_row = generate(model, tok, DIFFERENT, replace(params, row_attention=True))
    assert [s.token_ids for s in by_row] == [s.token_ids for s in sdpa]
    assert len({len(s.token_ids) for s in by_row}) > 4  # rows of many lengths side by side
    for s in by_row:
        assert (uncached_logprobs(model, s) - torch.tensor(s.logprobs)).abs().max().item() < 1e-5


@needs_row_attention
def test_a_row_block_mask_skips_every_block_past_the_rows_end():
    """The compiled kernel (what CUDA runs; compiled here for the CPU, static shapes) never reads a block past a
    row's end: those keys and values are NaN here, which any read would spread into the output (0 x NaN). Inside
    a row's last block the slots past its end are masked, not skipped. The rest equals SDPA with a boolean mask."""
    from torch.nn.attention.flex_attention import flex_attention

    from minireason.row_attention import row_block_mask

    gen = torch.Generator().manual_seed(0)
    rows, heads, kv_heads, slots, d, block = 5, 6, 2, 100, 16, 32  # 100 slots: a partial last block
    q, k, v = (torch.randn(rows, h, t, d, generator=gen) for h, t in ((heads, 1), (kv_heads, slots), (kv_heads, slots)))
    ends = torch.tensor([5, 40, 100, 64, 250])  # 250: a free row's stale position, past the slots (reads them all)
    real = torch.arange(slots) < ends[:, None]  # (rows, slots)
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=real[:, None, None, :],
                                                                 enable_gqa=True)
    for r in range(rows):
        past = -(-min(int(ends[r]), slots) // block) * block  # the first slot of the first block the row must not read
        k[r, :, past:], v[r, :, past:] = float("nan"), float("nan")
    out = torch.compile(flex_attention)(q, k, v, block_mask=row_block_mask(ends, slots, block), enable_gqa=True)
    assert out.isfinite().all()
    assert (out - reference).abs().max().item() < 1e-5


@needs_row_attention
def test_compiled_row_attention_compiles_once_for_every_row_count_and_length(monkeypatch):
    """What torch.compile decides (its guards; a counting backend stands in for CUDA's compiler): over steps whose
    row counts and slot counts change, compiled FlexAttention compiles once for every row count of 2 or more and
    once for a single row (a size of 1 is always specialized). Before the sizes were marked dynamic and the block
    indices copied per row (an expand: stride 0 at rows > 1, not at 1) it compiled 4 times over these steps."""
    from torch.nn.attention.flex_attention import flex_attention

    from minireason import row_attention as row_module

    compiles = []
    counted = torch.compile(flex_attention, backend=lambda gm, inputs: compiles.append(1) or gm.forward, dynamic=True)
    monkeypatch.setattr(row_module, "flex_attention_for", lambda device_type: counted)
    monkeypatch.setattr(row_module, "COMPILED_ON", ("cuda", "cpu"))  # as on CUDA, here
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(0)
    for rows, slots in [(2, 256), (3, 256), (5, 384), (1, 384), (4, 512), (7, 640), (1, 512), (6, 256)]:
        q = torch.randn(rows, 6, 1, 16, generator=gen)
        k, v = (torch.randn(rows, 2, slots, 16, generator=gen) for _ in range(2))
        ends = torch.randint(1, slots + 1, (rows,), generator=gen)
        out = row_module.row_attention(q, k, v, row_module.row_block_mask(ends, slots), enable_gqa=True)
        real = torch.arange(slots) < ends[:, None]
        reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=real[:, None, None, :],
                                                                     enable_gqa=True)
        assert (out - reference).abs().max().item() < 1e-5
    assert len(compiles) == 2


class ReplayedStep:
    """An emulated CUDA graph: replay() runs the step as captured. A real graph reads the tensors of its capture;
    under autocast those include the region's cached low-precision copies of the weights, so the emulation replays
    the step with the weights as they were at capture (outside autocast a graph reads the live weights)."""

    def __init__(self, step, model):
        self.step, self.model = step, model
        frozen = torch.is_autocast_enabled("cpu")
        self.weights = [p.detach().clone() for p in model.parameters()] if frozen else None

    def replay(self):
        if self.weights is None:
            return self.step()
        live = [p.data for p in self.model.parameters()]
        for p, w in zip(self.model.parameters(), self.weights):
            p.data = w
        try:
            self.step()
        finally:
            for p, w in zip(self.model.parameters(), live):
                p.data = w


def emulate_graphs(monkeypatch, model, fail_first=False):
    """CUDA graphs on the CPU: `ReplayedStep`s captured after a warm-up step (the rows put back, as capture does).
    fail_first: the first capture fails after its warm-up ran (an out-of-memory at the largest row count, say)."""
    from minireason import cuda_graph, sampler

    calls = []

    def capture(self, step, state, *saved):
        step()  # the warm-up moves the rows on ...
        calls.append(step)
        if fail_first and len(calls) == 1:
            raise RuntimeError("CUDA out of memory (emulated)")
        for t, old in zip(state, saved[0] if saved else [t.clone() for t in state]):  # ... and is undone
            t.copy_(old)
        return ReplayedStep(step, model)

    monkeypatch.setattr(sampler, "use_cuda_graphs", lambda params, device: params.cuda_graph)
    monkeypatch.setattr(cuda_graph.StepGraphs, "capture", capture)
    monkeypatch.setattr(sampler, "ATTEND_BUCKET", 8)


def test_graphs_kept_across_autocast_regions_never_replay_an_earlier_regions_weights(tmp_path, monkeypatch):
    """train_rl's default rollout on CUDA: fp32 weights sampled under bf16 autocast, with --keep-decode-graphs. Two
    calls on one session in two autocast regions, the weights changed in place between them (an optimizer step):
    the second call's samples equal a fresh call's, not those of graphs holding the first region's weights."""
    from minireason import sampler

    model, _ = ours_and_hf("qwen2", tmp_path, scale=2.0)
    tok = IntTokenizer(eos_ids=list(range(40, 50)))
    params = SamplingParams(n=3, temperature=1.0, top_k=0, max_new_tokens=14, seed=3, max_rows=4)
    emulate_graphs(monkeypatch, model)
    session = sampler.DecodeSession()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        first = generate(model, tok, DIFFERENT, params, session=session)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    stats = {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kept = generate(model, tok, DIFFERENT, params, session=session, stats=stats)
        fresh = generate(model, tok, DIFFERENT, params)
    assert [s.token_ids for s in kept] == [s.token_ids for s in fresh]
    assert [s.token_ids for s in kept] != [s.token_ids for s in first]  # the update did change the samples
    assert stats["graphs"] > 0  # captured in this region; the session kept its cache and rows


def test_a_capture_that_fails_after_its_warm_up_undoes_it_and_disables_only_its_shape(tmp_path, monkeypatch):
    """The warm-up step runs before the capture; when the capture then fails, the rows it moved are put back, so the
    eager step that replaces it advances them once, not twice. The failed shape decodes eagerly; the others still
    get their graphs. Tokens equal the eager path's."""
    model, _ = ours_and_hf("qwen2", tmp_path, scale=2.0)
    tok = IntTokenizer(eos_ids=list(range(40, 50)))
    params = SamplingParams(n=3, temperature=1.0, top_k=0, max_new_tokens=20, seed=5, max_rows=4)
    eager = generate(model, tok, DIFFERENT, replace(params, cuda_graph=False))
    emulate_graphs(monkeypatch, model, fail_first=True)
    stats = {}
    with pytest.warns(UserWarning, match="CUDA graph capture failed .*out of memory"):
        graphed = generate(model, tok, DIFFERENT, params, stats=stats)
    assert [s.token_ids for s in graphed] == [s.token_ids for s in eager]
    assert stats["graphs"] >= 2  # the other shapes were captured after the failure


def test_no_cuda_graphs_reaches_every_sampler_call_of_every_script(tmp_path, monkeypatch):
    """--no-cuda-graphs, the way out when graphs misbehave: every generate call of evaluate.py, train_rl.py (rollouts,
    periodic and final pass@1) and train_distill.py (teacher data, final pass@1) decodes eagerly."""
    import evaluate
    import train_distill
    import train_rl
    from minireason import sampler
    from test_faults import RL

    seen, real_init = [], sampler._Scheduler.__init__

    def recording(self, model, tokenizer, prompt_ids, params, buffers):
        seen.append(params.cuda_graph)
        real_init(self, model, tokenizer, prompt_ids, params, buffers)

    monkeypatch.setattr(sampler._Scheduler, "__init__", recording)
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join(f'{{"question": "What is {a} + 11?", "answer": "{a + 11}"}}\n' for a in (12, 30)))
    small_eval = ["--eval-data", str(held_out), "--grader", "exact", "--final-eval-samples", "2"]
    evaluate.main(["--model", "base=toy-base", "--limit", "2", "--k", "2", "--no-figures", "--no-cuda-graphs",
                   "--out", str(tmp_path / "eval")])
    train_rl.main(RL + ["--steps", "1", "--eval-every", "1", "--eval-questions", "2", *small_eval, "--no-cuda-graphs",
                        "--out", str(tmp_path / "rl")])
    train_distill.main(["--pool", "4", "--k", "2", "--epochs", "1", *small_eval, "--no-cuda-graphs",
                        "--out", str(tmp_path / "distill")])
    assert len(seen) >= 7 and not any(seen)


def test_row_attention_is_refused_in_one_line_on_a_torch_that_cannot_build_its_mask(monkeypatch):
    """torch 2.5-2.8's BlockMask.from_kv_blocks takes no seq_lengths or compute_q_blocks: the opt-in path is refused
    when its settings are made, naming the torch version, not deep inside a decode step."""
    from torch.nn.attention.flex_attention import BlockMask

    def from_kv_blocks_of_torch_2_5(cls, kv_num_blocks, kv_indices, full_kv_num_blocks=None, full_kv_indices=None,
                                    BLOCK_SIZE=128, mask_mod=None):
        raise AssertionError("never called")

    monkeypatch.setattr(BlockMask, "from_kv_blocks", classmethod(from_kv_blocks_of_torch_2_5))
    with pytest.raises(ValueError, match=r"row_attention needs torch >= 2.9 .*" + re.escape(torch.__version__)):
        SamplingParams(row_attention=True)
    SamplingParams(row_attention=False)  # the default path is not refused
