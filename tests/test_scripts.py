"""The three scripts end to end on the shipped toy models, and their clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import train_rl

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args, cwd=None):
    return subprocess.run([sys.executable, *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=600)


def test_evaluate_writes_report_and_reanalyzes(tmp_path):
    out = tmp_path / "res"
    r = run_script("evaluate.py", "--limit", "16", "--k", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr
    for name in ("report.md", "metrics.json", "pass_at_k.png", "per_bin_change.png", "transitions_teacher.png",
                 "samples-base.jsonl", "samples-teacher.jsonl"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["models"]) == {"base", "teacher"} and metrics["k"] == 4 and metrics["questions"] == 16
    again = run_script("evaluate.py", "--analyze-only", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert (
        json.loads((out / "metrics.json").read_text())["models"]["base"]["counts"]
        == metrics["models"]["base"]["counts"]
    )
    other_k = run_script("evaluate.py", "--limit", "16", "--k", "5", "--out", str(out))
    assert other_k.returncode != 0 and "holds samples from a different run (k: 4 vs now 5" in other_k.stderr


RL_ARGS = ["--batch-questions", "4", "--group-size", "4", "--eval-every", "0", "--final-eval-samples", "0",
           "--lr", "1e-3"]


def test_rl_resume_gives_identical_parameters(tmp_path, monkeypatch):
    train_rl.main(RL_ARGS + ["--steps", "4", "--out", str(tmp_path / "straight")])
    real_update = train_rl.update

    def killed_at_third(model, opt, oc, ro, cfg, step, *a, **k):
        if step == 2:
            raise KeyboardInterrupt
        return real_update(model, opt, oc, ro, cfg, step, *a, **k)

    monkeypatch.setattr(train_rl, "update", killed_at_third)
    with pytest.raises(KeyboardInterrupt):
        train_rl.main(RL_ARGS + ["--steps", "4", "--checkpoint-every", "2", "--out", str(tmp_path / "split")])
    monkeypatch.setattr(train_rl, "update", real_update)
    train_rl.main(["--resume", str(tmp_path / "split")])
    a = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    b = load_file(tmp_path / "split" / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(l) for l in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3, 4]
    assert any(row["grad_norm"] > 0 for row in log)  # the steps did update the model


def test_rl_errors_are_clear(tmp_path):
    (tmp_path / "broken").mkdir()
    r = run_script("train_rl.py", "--model", str(tmp_path / "broken"), "--out", str(tmp_path / "r"))
    assert r.returncode != 0 and "broken/config.json: no config.json" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is 1 + 1?", "answer": "2"}\n{"question": "x"\n')
    r = run_script("train_rl.py", "--data", str(bad), "--out", str(tmp_path / "r"))
    assert r.returncode != 0 and "bad.jsonl:2: not valid JSON" in r.stderr
    train_rl.main(RL_ARGS + ["--steps", "1", "--out", str(tmp_path / "run")])
    r = run_script("train_rl.py", "--resume", str(tmp_path / "run"), "--group-size", "8", "--steps", "2")
    assert r.returncode != 0 and "a resumed run keeps its config, but --group-size was 4, now 8" in r.stderr
    r = run_script("train_rl.py", "--resume", str(tmp_path / "nothing-here"))
    assert r.returncode != 0 and "no run to resume" in r.stderr


def test_resume_from_a_checkpoint_folder_and_no_silent_overwrite(tmp_path):
    run = tmp_path / "run"
    train_rl.main(RL_ARGS + ["--steps", "2", "--checkpoint-every", "1", "--out", str(run)])
    # a checkpoint folder holds the model's config.json; resuming from it must still read the run's config
    train_rl.main(["--resume", str(run / "checkpoints" / "step-000001")])
    assert [json.loads(l)["step"] for l in (run / "log.jsonl").read_text().splitlines()] == [1, 2]
    with pytest.raises(ValueError, match="already holds a run: continue it with --resume"):
        train_rl.main(RL_ARGS + ["--steps", "1", "--out", str(run)])
    train_rl.main(RL_ARGS + ["--steps", "1", "--out", str(run), "--overwrite"])
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and len((aside[0] / "log.jsonl").read_text().splitlines()) == 2  # kept, not deleted
    assert len((run / "log.jsonl").read_text().splitlines()) == 1
