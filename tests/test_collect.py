"""Stored samples: resume after a kill without redoing finished questions; refuse mixing runs."""

import json

import pytest

import minireason.collect as collect_mod
from minireason.model import build_model
from minireason.sampler import SamplingParams
from minireason.tasks import toy_split
from minireason.toy import PretrainConfig, build_tokenizer, save_toy_model, toy_model_config


@pytest.fixture(scope="module")
def tiny_toy_dir(tmp_path_factory):
    """An untrained model in the toy format (its answers are random, which is all these tests need)."""
    tok = build_tokenizer()
    model = build_model(
        toy_model_config(
            PretrainConfig(hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64), tok.get_vocab_size()
        ),
        seed=0,
    )
    out = tmp_path_factory.mktemp("toy") / "tiny"
    save_toy_model(model, tok, out, {})
    return out


PROBLEMS = toy_split("test")[:40]
PARAMS = SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=7)


def run(model_dir, out_file, params=PARAMS, problems=PROBLEMS):
    return collect_mod.sample_model(str(model_dir), problems, out_file, params, data_name="test[:40]", progress=False)


def test_samples_do_not_depend_on_the_block_size(tiny_toy_dir, tmp_path, monkeypatch):
    whole = run(tiny_toy_dir, tmp_path / "a.jsonl")  # one block of 40 questions
    monkeypatch.setattr(collect_mod, "BLOCK_SAMPLES", 3 * 7)  # blocks of 7 questions
    assert [r.__dict__ for r in run(tiny_toy_dir, tmp_path / "b.jsonl")] == [r.__dict__ for r in whole]


def test_kill_midway_then_resume_redoes_nothing_and_matches(tiny_toy_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(collect_mod, "BLOCK_SAMPLES", 3 * 16)  # blocks of 16 questions
    straight = run(tiny_toy_dir, tmp_path / "a.jsonl")
    real_generate, calls = collect_mod.generate, []

    def dying_generate(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while sampling the third block
        calls.append(args[2])
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(collect_mod, "generate", dying_generate)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_toy_dir, tmp_path / "b.jsonl")
    lines = (tmp_path / "b.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 32  # header + two finished blocks of 16 questions
    # simulate a torn write at the moment of the kill
    with open(tmp_path / "b.jsonl", "a") as f:
        f.write('{"id": "test-32", "question": "What is')
    calls.clear()
    monkeypatch.setattr(collect_mod, "generate", lambda *a, **k: (calls.append(a[2]), real_generate(*a, **k))[1])
    resumed = run(tiny_toy_dir, tmp_path / "b.jsonl")
    assert len(calls) == 1  # only the unfinished block was sampled again
    assert [r.__dict__ for r in resumed] == [r.__dict__ for r in straight]
    header, records = collect_mod.read_samples_file(tmp_path / "b.jsonl")
    assert len(records) == 40 and header["k"] == 3


def test_samples_are_stored_with_what_the_analysis_needs(tiny_toy_dir, tmp_path):
    recs = run(tiny_toy_dir, tmp_path / "s.jsonl")
    s = recs[0].samples[0]
    assert set(s) == {"text", "tokens", "answer", "correct", "finish"}
    assert all(len(r.samples) == 3 for r in recs)
    row = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[1])
    assert row["id"] == "test-0" and row["answer"] == PROBLEMS[0].answer


def test_other_k_or_model_is_refused(tiny_toy_dir, tmp_path):
    run(tiny_toy_dir, tmp_path / "s.jsonl", problems=PROBLEMS[:16])
    with pytest.raises(ValueError, match=r"different run \(k: 3 vs now 4"):
        run(
            tiny_toy_dir,
            tmp_path / "s.jsonl",
            params=SamplingParams(**{**PARAMS.__dict__, "n": 4}),
            problems=PROBLEMS[:16],
        )
    other = tmp_path / "other"
    tok = build_tokenizer()
    model = build_model(
        toy_model_config(
            PretrainConfig(hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64), tok.get_vocab_size()
        ),
        seed=1,
    )
    save_toy_model(model, tok, other, {})
    with pytest.raises(ValueError, match=r"different run \(fingerprint: .*model: "):
        run(other, tmp_path / "s.jsonl", problems=PROBLEMS[:16])
