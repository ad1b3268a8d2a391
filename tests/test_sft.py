"""Distillation: masked loss, rejection sampling, filters, exact resume, clear errors."""

import json
import random

import pytest
import torch
from safetensors.torch import load_file

import train_distill
from minireason.collect import QuestionRecord
from minireason.model import build_model
from minireason.lab_world import drop_traces_stating, facts_stated
from minireason.sft import Example, load_examples, protocol, rejection_sample, sft_loss, solvable_ids
from minireason.tasks import fresh_problems
from minireason.toy import PretrainConfig, Tutor, build_tokenizer, save_toy_model, toy_model_config
from minireason.training import completion_batch, token_logprobs

TINY = PretrainConfig(hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64)


@pytest.fixture(scope="module")
def tiny_toy_dir(tmp_path_factory):
    tok = build_tokenizer()
    model = build_model(toy_model_config(TINY, tok.get_vocab_size()), seed=0)
    out = tmp_path_factory.mktemp("toy") / "tiny"
    save_toy_model(model, tok, out, {"tutor": {"gap_facts": ["7*8"], "partial_facts": [["3*8", 0.1]]}})
    return out


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    rng = random.Random(0)
    f = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    with open(f, "w") as fh:
        for p in fresh_problems(96, seed=3):
            fh.write(
                json.dumps({"question": p.question, "answer": p.answer, "response": Tutor.clean().solve(p, rng)}) + "\n"
            )
    return f


def test_prompt_and_padding_tokens_get_no_gradient():
    tok = build_tokenizer()
    model = build_model(toy_model_config(TINY, tok.get_vocab_size()), seed=0)
    kept = {}
    forward = model.hidden_states

    def spy(ids, *a, **k):
        hidden = forward(ids, *a, **k)  # the final hidden states, from which the logits come
        hidden.retain_grad()
        kept["hidden"] = hidden
        return hidden

    model.hidden_states = spy
    prompts, completions = [[5, 6, 7, 8], [9, 10]], [[11, 12], [13, 14, 15]]
    ids, mask, _ = completion_batch(prompts, completions, pad_id=0)
    sft_loss(token_logprobs(model, ids), mask, n_tokens=5).backward()
    g = kept["hidden"].grad.abs().sum(-1)  # (2, T-1): position t predicts token t+1
    # row 0: prompt 4 tokens, completion at positions 3,4; row 1: prompt 2, completion at 1,2,3; padding after
    assert g[0, :3].sum() == 0 and (g[0, 3:5] > 0).all()
    assert g[1, :1].sum() == 0 and (g[1, 1:4] > 0).all() and g[1, 4:].sum() == 0


def record(qid, flags, finish="eos"):
    return QuestionRecord(qid, f"q{qid}", "1", None, [],
                          [{"text": f"{qid}-{i}", "correct": c, "finish": finish} for i, c in enumerate(flags)])


def test_rejection_sampling_keeps_correct_and_at_most_m():
    recs = [record("a", [True, False, True, True]), record("b", [False] * 4), record("c", [False, True, False, False])]
    kept = rejection_sample(recs, max_per_question=2)
    assert [(e.id, e.response) for e in kept] == [("a", "a-0"), ("a", "a-2"), ("c", "c-1")]


def test_a_response_cut_off_at_the_token_limit_is_never_kept():
    recs = [record("a", [True, True], finish="length"), record("b", [True], finish="eos")]
    assert [e.id for e in rejection_sample(recs, max_per_question=8)] == ["b"]


def test_protocol_defaults_follow_the_paper():
    assert protocol("self", toy=False) == {"k": 256, "max_per_question": 8, "student_k": 256}
    assert protocol("rl", toy=False)["k"] == 256
    assert protocol("all", toy=False) == {"k": 8, "max_per_question": 8, "student_k": 256}
    assert protocol("reasoning-only", toy=False)["student_k"] == 256
    assert protocol("reasoning-only", toy=True)["student_k"] == 64


def test_a_question_with_p_002_passes_the_solvable_filter_at_the_default_k():
    """With the paper's k = 256 a question the student solves 2% of the time is kept with probability
    1 - 0.98^256 = 0.994; at the old k = 8 only 0.15. Simulated over 500 such questions."""
    rng = random.Random(0)
    k = protocol("reasoning-only", toy=False)["student_k"]
    recs = [record(f"q{i}", [rng.random() < 0.02 for _ in range(k)]) for i in range(500)]
    assert len(solvable_ids(recs)) / 500 > 0.98
    few = [record(f"q{i}", [rng.random() < 0.02 for _ in range(8)]) for i in range(500)]
    assert len(solvable_ids(few)) / 500 < 0.3


def test_solvable_filter_is_exactly_x_at_least_one():
    recs = [record("a", [False, False]), record("b", [False, True]), record("c", [True, True])]
    assert solvable_ids(recs) == {"b", "c"}


def test_knowledge_filter_drops_traces_stating_missing_facts():
    assert facts_stated("7*8=56,3*8=24+5=29:2964;17*2") == {"7*8", "3*8"}
    assert facts_stated("8*7=56") == {"7*8"}
    ex = [
        Example("a", "", "", "7*8=56 \\boxed{56}"),
        Example("b", "", "", "2*3=6 \\boxed{6}"),
        Example("c", "", "", "8*3=24"),
    ]
    assert [e.id for e in drop_traces_stating(ex, {"7*8", "3*8"})] == ["b"]


def common(tmp, *extra):
    return ["--sft-data", str(tmp["pairs"]), "--student", str(tmp["model"]), "--batch-size", "16", "--epochs", "1",
            "--final-eval-samples", "0", "--micro-batch-tokens", "400", *extra]


def test_resume_is_exact(tiny_toy_dir, pairs_file, tmp_path, monkeypatch):
    tmp = {"pairs": pairs_file, "model": tiny_toy_dir}
    train_distill.main(common(tmp, "--out", str(tmp_path / "straight")))  # 6 steps
    real_step = train_distill.sft_step

    def killed_after_three(*args):
        if args[6] == 3:  # the step
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(train_distill, "sft_step", killed_after_three)
    with pytest.raises(KeyboardInterrupt):
        train_distill.main(common(tmp, "--out", str(tmp_path / "split"), "--checkpoint-every", "3"))
    monkeypatch.setattr(train_distill, "sft_step", real_step)
    train_distill.main(["--resume", str(tmp_path / "split")])
    a = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    b = load_file(tmp_path / "split" / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    start = load_file(tiny_toy_dir / "model.safetensors")
    assert not all(torch.equal(a[k], start[k]) for k in a)  # it did train
    logged = [json.loads(l)["step"] for l in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5, 6]


def test_malformed_sft_line_is_named(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"question": "q", "response": "r"}\n{"question": "q2"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: expected an object with string 'question' and 'response'"):
        load_examples(f)
    f.write_text('{"question": "q", "response": "r"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not valid JSON"):
        load_examples(f)


def test_teacher_that_does_not_load_is_named(tiny_toy_dir, tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(Exception, match=r"broken/config\.json: unsupported model_type None"):
        train_distill.main(["--student", str(tiny_toy_dir), "--teacher", str(tmp_path / "broken"), "--out",
                            str(tmp_path / "run"), "--pool", "4", "--final-eval-samples", "0"])


def test_empty_kept_set_fails_clearly(tiny_toy_dir, tmp_path):
    # an untrained teacher solves nothing, so no example survives rejection sampling
    with pytest.raises(ValueError, match="no training examples are left"):
        train_distill.main(
            [
                "--student",
                str(tiny_toy_dir),
                "--teacher",
                str(tiny_toy_dir),
                "--out",
                str(tmp_path / "run"),
                "--pool",
                "8",
                "--k",
                "2",
                "--max-new-tokens",
                "8",
                "--final-eval-samples",
                "0",
            ]
        )
