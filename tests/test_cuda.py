"""The CUDA paths (graph-captured decoding, bf16, the low-memory optimizer) against their CPU / eager references.

Skipped without a GPU; CI has none, so these run on a lent GPU machine (see benchmarks/RESULTS.md).
"""

import pytest
import torch

from minireason.checkpoint import load_pretrained
from minireason.model import ModelConfig, build_model
from minireason.sampler import SamplingParams, generate
from minireason.sft import sft_step
from minireason.training import LowMemAdamW, OptimConfig, build_optimizer
from test_sampler import DIFFERENT, IntTokenizer, ours_and_hf, uncached_logprobs

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
              pytest.mark.filterwarnings("error:CUDA graph capture failed")]  # a failed capture fails, not warns


def run(model, prompts, tok, **kw):
    return generate(model, tok, prompts, SamplingParams(**kw))


def test_greedy_graph_equals_eager_equals_cpu(tmp_path):
    model, _ = ours_and_hf("qwen2", tmp_path, scale=3.0)
    tok = IntTokenizer(eos_ids=[96])
    cpu = run(model, DIFFERENT, tok, n=2, temperature=0, max_new_tokens=24)
    model = model.cuda()
    eager = run(model, DIFFERENT, tok, n=2, temperature=0, max_new_tokens=24, cuda_graph=False)
    graph = run(model, DIFFERENT, tok, n=2, temperature=0, max_new_tokens=24, cuda_graph=True)
    assert [s.token_ids for s in cpu] == [s.token_ids for s in eager] == [s.token_ids for s in graph]
    for a, b in zip(cpu, graph):
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) < 1e-3


def test_graph_sampling_with_early_eos_matches_uncached_forward(tmp_path):
    """Rows that end early keep running inside the fixed-shape graph; what they add must never reach a sample."""
    cpu_model, _ = ours_and_hf("llama", tmp_path, scale=2.0)
    model = load_pretrained(tmp_path / "llama", device="cuda")
    tok = IntTokenizer(eos_ids=list(range(40, 60)))
    samples = run(model, DIFFERENT, tok, n=6, temperature=1.0, top_k=0, max_new_tokens=6, seed=2, cuda_graph=True)
    reasons = {s.finish_reason for s in samples}
    assert reasons == {"eos", "length"}
    for s in samples:
        if s.finish_reason == "eos":
            assert s.token_ids[-1] in tok.eos_ids and not set(s.token_ids[:-1]) & set(tok.eos_ids)
        ref = uncached_logprobs(cpu_model, s)
        assert (ref - torch.tensor(s.logprobs)).abs().max().item() < 1e-3


def test_graph_continuous_batching_refills_rows_and_keeps_exact_logprobs(tmp_path):
    """Three rows for 24 samples: freed rows are refilled (new prefills into live graph state) many times."""
    cpu_model, _ = ours_and_hf("qwen2", tmp_path, scale=2.0)
    model = load_pretrained(tmp_path / "qwen2", device="cuda")
    tok = IntTokenizer(eos_ids=list(range(40, 70)))
    samples = run(model, DIFFERENT, tok, n=6, temperature=1.0, top_k=0, max_new_tokens=20, seed=4,
                  max_rows=3, cuda_graph=True)
    assert len(samples) == 24 and len({len(s.token_ids) for s in samples}) > 4
    for s in samples:
        assert (uncached_logprobs(cpu_model, s) - torch.tensor(s.logprobs)).abs().max().item() < 1e-3


def test_graphs_of_two_buckets_and_two_row_counts_keep_exact_logprobs(tmp_path, monkeypatch):
    """A bucket of 8 slots: rows growing past 8 and 16 slots need a second and third captured graph (each replayed
    against the same live cache), in calls with 2 and with 5 rows (packed to fewer as the queue drains). A session
    keeps the graphs: a second call with another seed captures fewer and still matches the uncached forward."""
    from minireason import sampler

    monkeypatch.setattr(sampler, "ATTEND_BUCKET", 8)
    cpu_model, _ = ours_and_hf("qwen2", tmp_path, scale=2.0)
    model = load_pretrained(tmp_path / "qwen2", device="cuda")
    tok = IntTokenizer(eos_ids=list(range(40, 50)))
    for rows in (2, 5):
        session, stats = sampler.DecodeSession(), [{}, {}]
        for seed, st in zip((rows, rows + 10), stats):
            samples = generate(model, tok, DIFFERENT, SamplingParams(n=3, temperature=1.0, top_k=0, max_new_tokens=14,
                               seed=seed, max_rows=rows), stats=st, session=session)
            for s in samples:
                assert (uncached_logprobs(cpu_model, s) - torch.tensor(s.logprobs)).abs().max().item() < 1e-3
        assert stats[1]["graphs"] < stats[0]["graphs"]
        keys = set(session.buffers.graphs.graphs)
        assert {n for _, n in keys} >= {8, 16} and len({r for r, _ in keys}) >= 2


def test_row_attention_inside_graphs_keeps_exact_logprobs(tmp_path, monkeypatch):
    """row_attention on CUDA: compiled FlexAttention with each row's block mask, inside captured graphs of several
    buckets and row counts (one compile serves them all), gives log-probs equal to an uncached forward."""
    from minireason import sampler

    monkeypatch.setattr(sampler, "ATTEND_BUCKET", 8)
    cpu_model, _ = ours_and_hf("qwen2", tmp_path, scale=2.0)
    model = load_pretrained(tmp_path / "qwen2", device="cuda")
    stats = {}
    samples = generate(model, IntTokenizer(eos_ids=list(range(40, 50))), DIFFERENT, SamplingParams(
        n=3, temperature=1.0, top_k=0, max_new_tokens=14, seed=7, max_rows=5, row_attention=True), stats=stats)
    for s in samples:
        assert (uncached_logprobs(cpu_model, s) - torch.tensor(s.logprobs)).abs().max().item() < 1e-3
    assert stats["graphs"] >= 3


def test_bf16_graph_sampling_stays_close_to_fp32(tmp_path):
    model, _ = ours_and_hf("qwen2", tmp_path, scale=3.0)
    fp32 = run(model, DIFFERENT, IntTokenizer(eos_ids=[96]), temperature=0, max_new_tokens=8)
    bf16 = load_pretrained(tmp_path / "qwen2", dtype=torch.bfloat16, device="cuda")
    out = run(bf16, DIFFERENT, IntTokenizer(eos_ids=[96]), temperature=0, max_new_tokens=8)
    # bf16 rounding may flip a near-tie late in a path; the first tokens must agree
    assert [s.token_ids[:2] for s in out] == [s.token_ids[:2] for s in fp32]


def test_lowmem_adamw_on_cuda_tracks_fp32_adamw():
    torch.manual_seed(0)
    w = torch.randn(64, 32, device="cuda").bfloat16().float()
    ref = torch.nn.Parameter(w.clone())
    low = torch.nn.Parameter(w.clone().bfloat16())
    opt_ref = torch.optim.AdamW([ref], lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    opt_low = LowMemAdamW([low], lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    for _ in range(5):
        g = torch.randn(64, 32, device="cuda")
        ref.grad, low.grad = g.clone(), g.clone().bfloat16()
        opt_ref.step()
        opt_low.step()
    assert (opt_low.state[low]["master"] - ref.detach()).abs().max() < 2e-4


def test_lowmem_training_with_checkpointing_lowers_the_loss():
    cfg = ModelConfig(vocab_size=50, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=16)
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda", seed=0).train()
    model.gradient_checkpointing = True
    oc = OptimConfig(lr=3e-3, mode="lowmem", warmup=0, grad_clip=1e9)  # constant lr, no clipping
    opt = build_optimizer(model, oc)
    prompts, completions = [[1, 2, 3], [4, 5]], [[6, 7, 8, 9], [10, 11, 12]]
    losses = [sft_step(model, opt, oc, prompts, completions, 0, step, 1 << 14)["loss"] for step in range(20)]
    assert losses[-1] < 0.5 * losses[0]
