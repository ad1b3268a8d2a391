"""The TRL bridge (experiments/trl_bridge.py): two GRPO steps and two SFT steps of our configs through TRL on the
toy base. The output folder loads with our loader, its config records TRL's settings, and a flag with no TRL
equivalent is refused in one line. And the exact checks: our GRPO loss and gradient equal TRL's on one fixed rollout,
and our SFT tokens, loss and gradient equal SFTTrainer's.
Skipped without trl (an optional dependency, like math-verify)."""

import json
import sys
from pathlib import Path

import pytest
import torch

from minireason.checkpoint import load_pretrained, model_hints, resolve_model_dir
from minireason.cli import run_cli
from minireason.grpo import group_advantages, policy_loss, token_weights
from minireason.sft import Example, save_examples, sft_loss
from minireason.tasks import toy_split
from minireason.tokenizer import Tokenizer, format_prompt
from minireason.toy import clean_solution
from minireason.training import completion_batch, token_logprobs

pytest.importorskip("trl")
from datasets import Dataset  # noqa: E402
from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import trl_bridge  # noqa: E402

pytestmark = pytest.mark.slow
SMALL = ["--batch-questions", "2", "--group-size", "4", "--max-new-tokens", "60"]


def test_two_grpo_steps_through_trl_make_a_run_folder_ours_reads(tmp_path):
    out = tmp_path / "rl"
    trl_bridge.main(["rl", "--steps", "2", *SMALL, "--aggregation", "sequence", "--out", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["trl"]["loss_type"] == "grpo" and config["trl"]["num_generations"] == 4
    assert config["trl"]["per_device_train_batch_size"] == 8 and config["trl"]["max_completion_length"] == 60
    assert config["trl"]["learning_rate"] == config["lr"] == 2e-4  # the toy preset, resolved as train_rl.py does
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(-1 <= r["reward_mean"] <= 1 for r in rows)
    model = load_pretrained(out / "final")
    assert model.num_params() == load_pretrained("toy-base").num_params()
    assert model_hints(out / "final")["temperature"] == 1.0  # the toy model's hints kept for evaluate.py


def test_two_sft_steps_through_trl_train_on_our_kept_data(tmp_path):
    data = tmp_path / "sft_data.jsonl"
    save_examples([Example(p.id, p.question, p.answer, clean_solution(p)) for p in toy_split("train")[:16]], data)
    out = tmp_path / "sft"
    trl_bridge.main(["sft", "--sft-data", str(data), "--epochs", "1", "--batch-size", "8", "--out", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["trl"]["num_train_epochs"] == 1 and config["trl"]["per_device_train_batch_size"] == 8
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    load_pretrained(out / "final")


@pytest.mark.parametrize("argv,flag", [(["rl", "--max-rows", "4"], "--max-rows"),
                                       (["rl", "--optimizer", "lowmem"], "--optimizer"),
                                       (["sft", "--micro-batch-tokens", "512"], "--micro-batch-tokens")])
def test_a_flag_with_no_trl_equivalent_is_refused_naming_it(argv, flag, tmp_path):
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: trl_bridge.main(argv + ["--out", str(tmp_path / "x")]))
    assert str(stop.value).startswith(f"error: {flag} has no TRL equivalent")
    assert not (tmp_path / "x").exists()  # refused before anything is written


def grads_by_checkpoint_name(model) -> dict:
    """Our model's gradients under the Hugging Face names its state dict uses (the fused Q/K/V and gate/up
    gradients split back into their parts), by swapping each parameter for its gradient in the state dict."""
    saved = {name: p.data for name, p in model.named_parameters()}
    for p in model.parameters():
        p.data = p.grad
    grads = {name: t.clone() for name, t in model.state_dict().items()}
    for name, p in model.named_parameters():
        p.data = saved[name]
    return grads


@pytest.mark.parametrize("aggregation", ["token", "sequence", "constant"])
def test_our_grpo_loss_and_gradient_equal_trls_on_one_fixed_rollout(aggregation, tmp_path):
    """One fixed rollout (the same completions, advantages and old log-probs, with ratios away from 1 so that
    clipping acts) through GRPOTrainer.compute_loss, the Trainer's public loss hook, and through our policy_loss:
    the loss and every parameter's gradient agree to 1e-6 for each aggregation TRL has (dapo, grpo, dr_grpo).
    The model is in eval mode (toy models have no dropout), where TRL's loss needs no training-loop state. Both
    engines run in float64, so that what is compared is the two computations, not float32 rounding (in float32 the
    losses agree to 1e-6 but the gradients only to about 6e-6: the two models sum in other orders)."""
    source, G, max_new = resolve_model_dir("toy-base"), 4, 12
    tok = Tokenizer.from_dir(source)
    gen = torch.Generator().manual_seed(0)
    questions = [tok.encode(format_prompt(p.question, "question")) for p in toy_split("train")[:20]]
    same_length = [q for q in questions if len(q) == len(questions[0])][:2]  # no left padding: TRL's positions
    prompts = [q for q in same_length for _ in range(G)]  # would start later there, and RoPE round otherwise
    lengths = torch.randint(1, max_new + 1, (len(prompts),), generator=gen).tolist()
    completions = [torch.randint(3, tok.vocab_size, (n,), generator=gen).tolist() for n in lengths]
    advantages = group_advantages(torch.tensor([[1., -1, -1, 1], [-1, -1, 1, -1]])).flatten()

    ours = load_pretrained(source, dtype=torch.float64)
    ids, mask, _ = completion_batch(prompts, completions, tok.pad_id)
    with torch.no_grad():
        noisy = token_logprobs(ours, ids) + 0.3 * torch.randn(mask.shape, generator=gen)  # ratios e^(±0.3)
    old = [noisy[i, len(p) - 1: len(p) - 1 + len(c)].tolist() for i, (p, c) in enumerate(zip(prompts, completions))]
    ids, mask, old_ours = completion_batch(prompts, completions, tok.pad_id, completion_logprobs=old)
    loss, stats = policy_loss(token_logprobs(ours, ids), old_ours, advantages,
                              token_weights(mask, aggregation, max_new), clip_eps=0.2)
    loss.backward()
    assert stats["clip_fraction"] > 0.1  # clipping is exercised

    hf_model, hf_tok = trl_bridge.hf_model_and_tokenizer(source)
    hf_model.double()
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2 * G, num_generations=G,
                      max_completion_length=max_new, loss_type=trl_bridge.LOSS_TYPES[aggregation], epsilon=0.2,
                      beta=0.0, temperature=1.0, use_cpu=True, bf16=False, report_to="none")
    trainer = GRPOTrainer(model=hf_model, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                          args=args, train_dataset=Dataset.from_list([{"prompt": "x"}] * 8), processing_class=hf_tok)
    P, C = max(map(len, prompts)), max_new
    left = lambda seqs, n: torch.tensor([[tok.pad_id] * (n - len(s)) + s for s in seqs])  # noqa: E731
    right = lambda seqs, n, fill: torch.tensor([list(s) + [fill] * (n - len(s)) for s in seqs])  # noqa: E731
    inputs = {"prompt_ids": left(prompts, P), "prompt_mask": torch.tensor([[0] * (P - len(p)) + [1] * len(p)
                                                                           for p in prompts]),
              "completion_ids": right(completions, C, tok.pad_id),
              "completion_mask": right([[1] * len(c) for c in completions], C, 0),
              "old_per_token_logps": right(old, C, 0.0), "advantages": advantages,
              "num_items_in_batch": torch.tensor(float(sum(lengths)))}  # TRL's layout: prompts padded on the left
    trainer.model.eval()
    trl_loss = trainer.compute_loss(trainer.model, inputs)
    trl_loss.backward()

    assert abs(loss.item() - trl_loss.item()) < 1e-6
    trl_grads = {name: p.grad for name, p in trainer.model.named_parameters() if p.grad is not None}
    our_grads = grads_by_checkpoint_name(ours)
    assert set(trl_grads) <= set(our_grads) and len(trl_grads) == len(list(hf_model.parameters()))
    worst = max((our_grads[name] - g).abs().max().item() for name, g in trl_grads.items())
    scale = max(g.abs().max().item() for g in trl_grads.values())
    assert worst < 1e-6, (worst, scale)


def test_our_sft_tokens_loss_and_gradient_equal_trls(tmp_path):
    """Our kept examples through SFTTrainer: TRL's tokens are ours (the prompt, then the response and EOS, the loss
    on those only), and on one batch its loss and every gradient equal sft_loss's to 1e-6 (float64, as above)."""
    source = resolve_model_dir("toy-base")
    tok = Tokenizer.from_dir(source)
    examples = [Example(p.id, p.question, p.answer, clean_solution(p)) for p in toy_split("train")[:6]]
    prompts = [tok.encode(format_prompt(e.question, "question")) for e in examples]
    completions = [tok.encode(e.response) + [tok.eos_ids[0]] for e in examples]
    ours = load_pretrained(source, dtype=torch.float64)
    ids, mask, _ = completion_batch(prompts, completions, tok.pad_id)
    loss = sft_loss(token_logprobs(ours, ids), mask, sum(map(len, completions)))
    loss.backward()

    hf_model, hf_tok = trl_bridge.hf_model_and_tokenizer(source)
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=len(examples), max_length=None,
                     use_cpu=True, bf16=False, report_to="none")
    data = Dataset.from_list([{"prompt": format_prompt(e.question, "question"), "completion": e.response}
                              for e in examples])
    trainer = SFTTrainer(model=hf_model.double(), args=args, train_dataset=data, processing_class=hf_tok)
    rows = list(trainer.train_dataset)
    assert [r["input_ids"] for r in rows] == [p + c for p, c in zip(prompts, completions)]
    assert [r["labels"] for r in rows] == [[-100] * len(p) + c for p, c in zip(prompts, completions)]
    batch = trainer.data_collator(rows)
    trainer.model.eval()
    trl_loss = trainer.compute_loss(trainer.model, batch)
    trl_loss.backward()

    assert abs(loss.item() - trl_loss.item()) < 1e-6
    trl_grads = {name: p.grad for name, p in trainer.model.named_parameters()}
    our_grads = grads_by_checkpoint_name(ours)
    assert max((our_grads[name] - g).abs().max().item() for name, g in trl_grads.items()) < 1e-6
