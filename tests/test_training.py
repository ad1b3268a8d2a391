"""Shared training mechanics: micro-batching, the low-memory optimizer, gradient checkpointing, schedule."""

import torch

from minireason.model import ModelConfig, build_model
from minireason.sft import sft_loss
from minireason.training import (LowMemAdamW, OptimConfig, build_optimizer, completion_batch, lr_at, micro_batches,
                                 token_logprobs)

CFG = ModelConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8)


def test_micro_batches_respect_the_budget_and_cover_every_row():
    lengths = [5, 17, 3, 9, 9, 30, 1, 12]
    groups = micro_batches(lengths, max_tokens=32)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        assert len(g) * max(lengths[i] for i in g) <= 32 or len(g) == 1


def test_lowmem_adamw_tracks_fp32_adamw():
    torch.manual_seed(0)
    w = torch.randn(64, 32).bfloat16().float()  # start both from bf16-representable weights
    ref = torch.nn.Parameter(w.clone())
    low = torch.nn.Parameter(w.clone().bfloat16())
    opt_ref = torch.optim.AdamW([ref], lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    opt_low = LowMemAdamW([low], lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    for _ in range(5):
        g = torch.randn(64, 32)
        ref.grad, low.grad = g.clone(), g.clone().bfloat16()
        opt_ref.step()
        opt_low.step()
    master = opt_low.state[low]["master"]
    assert (master - ref.detach()).abs().max() < 2e-4  # 5 steps of size ~1e-3 agree to bf16-moment precision
    assert torch.equal(low.detach(), master.bfloat16())


def test_lowmem_keeps_updates_that_bf16_weights_would_round_away():
    p = torch.nn.Parameter(torch.ones(4, 4, dtype=torch.bfloat16))
    opt = LowMemAdamW([p], lr=1e-6)
    for _ in range(100):
        p.grad = torch.ones(4, 4, dtype=torch.bfloat16)
        opt.step()
    assert opt.state[p]["master"][0, 0].item() < 1 - 9e-5  # 100 steps of ~1e-6, kept in fp32
    plain = torch.nn.Parameter(torch.ones(4, 4, dtype=torch.bfloat16))
    plain_opt = torch.optim.AdamW([plain], lr=1e-6, weight_decay=0.0)
    for _ in range(100):
        plain.grad = torch.ones(4, 4, dtype=torch.bfloat16)
        plain_opt.step()
    assert plain[0, 0].item() == 1.0  # plain bf16 AdamW loses every one of those updates


def test_gradient_checkpointing_gives_the_same_gradients():
    grads = []
    for ckpt in (False, True):
        model = build_model(CFG, seed=0).train()
        model.gradient_checkpointing = ckpt
        ids, mask, _ = completion_batch([[1, 2, 3], [4, 5]], [[6, 7], [8, 9, 10]], pad_id=0)
        sft_loss(token_logprobs(model, ids), mask, n_tokens=5).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))


def test_weight_decay_only_on_matrices():
    model = build_model(CFG, seed=0)
    opt = build_optimizer(model, OptimConfig(lr=1e-3, weight_decay=0.1))
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.dim() >= 2), name


def test_schedule():
    assert lr_at(0, 1.0, warmup=4) == 0.25 and lr_at(3, 1.0, warmup=4) == 1.0 and lr_at(100, 1.0, warmup=4) == 1.0
    assert lr_at(4, 1.0, warmup=4, total=14, final_frac=0.1) == 1.0
    assert abs(lr_at(14, 1.0, warmup=4, total=14, final_frac=0.1) - 0.1) < 1e-12
    assert abs(lr_at(9, 1.0, warmup=4, total=14, final_frac=0.1) - 0.55) < 1e-12


def test_chunked_logprobs_and_entropy_equal_the_full_softmax_with_the_same_gradients():
    model = build_model(CFG, seed=0)
    ids = torch.randint(0, 50, (3, 23), generator=torch.Generator().manual_seed(1))
    # the reference: one log-softmax over all logits at once
    logp_all = torch.log_softmax(model(ids[:, :-1]).float(), -1)
    ref_logp = logp_all.gather(-1, ids[:, 1:, None]).squeeze(-1)
    ref_entropy = -(logp_all.exp() * logp_all).sum(-1)
    ref_grads = torch.autograd.grad(ref_logp.sum(), list(model.parameters()))
    for chunk in (1, 7, 66, 10_000):  # one token, uneven chunks, exactly the batch, everything at once
        logp, entropy = token_logprobs(model, ids, with_entropy=True, chunk_tokens=chunk)
        assert logp.shape == entropy.shape == (3, 22) and not entropy.requires_grad
        assert torch.allclose(logp, ref_logp, atol=1e-5) and torch.allclose(entropy, ref_entropy, atol=1e-5)
        grads = torch.autograd.grad(logp.sum(), list(model.parameters()))
        assert all(torch.allclose(g, r, atol=1e-5) for g, r in zip(grads, ref_grads))
