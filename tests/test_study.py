"""A miniature of the whole toy study (tiny k, 2 RL steps, 32-question pools), so it cannot silently break."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_toy_study_miniature_runs_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, "experiments/toy_study.py", "--mini", "--out", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    test_models = set(summary["test"]["models"])
    assert {"base", "teacher", "rl-seed0", "rl-seed1", "rl-seed2", "rl-drgrpo", "rl-kl", "base-from-base", "rl-from-rl",
            "base-from-rl", "reasoning-only", "all-questions"} == test_models
    assert set(summary["train"]["models"]) == {"base", "rl-seed0", "base-from-base", "rl-from-rl", "base-from-rl"}
    for split in ("eval-test", "eval-train"):
        assert (tmp_path / split / "report.md").is_file()
    figures = {f.name for f in (tmp_path / "figures").iterdir()}
    assert figures == {
        "e1_pass_at_k.png",
        "e2_per_bin_change.png",
        "e2_transitions.png",
        "e3_entropy.png",
        "e4_self_distillation.png",
        "e5_length.png",
        "e6_distillation.png",
        "ablations.png",
        "knowledge.png",
    }
    tables = (tmp_path / "tables.md").read_text()
    for experiment in ("E1", "E2", "E3", "E4", "E5", "E6", "Ablations", "By knowledge needed"):
        assert f"## {experiment}" in tables
