"""The drawings and tables: training curves from a short log, and the default world's detail (world_report.py) from
synthetic evaluations."""

import json
import random
import shutil
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from minireason.collect import QuestionRecord
from minireason.curves import draw_curves
from minireason.checkpoint import TOY_MODELS_DIR
from minireason.report import analyze
from minireason.tasks import toy_split
from minireason.lab_world import LabTutor, knowledge_group

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import world_report  # noqa: E402


def test_curves_draw_one_panel_per_logged_quantity(tmp_path):
    rows = [{"step": s, "reward_mean": -1 + s / 5, "loss": 1 / s, "grad_norm": 2.0, "entropy": 0.1 * s,
             "response_tokens_mean": 40 + s} for s in range(1, 11)]
    rows[4]["held_out_pass@1"], rows[9]["held_out_pass@1"] = 0.4, 0.6
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 11, "rew')
    image = mpimg.imread(draw_curves(tmp_path))
    assert image.shape[:2] == (2 * 330, 3 * 462)  # 6 panels: 2 rows x 3 columns of 4.2 x 3.0 inches at 110 dpi
    assert not (tmp_path / "curves.tmp.png").exists()
    only_loss = tmp_path / "one"
    only_loss.mkdir()
    (only_loss / "log.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n')
    blank = mpimg.imread(draw_curves(only_loss))
    assert blank.shape[:2] == (330, 462) and blank.std() > 0.01  # one panel, with something drawn on it
    (only_loss / "log.jsonl").write_text("")
    with pytest.raises(ValueError, match="nothing to draw"):
        draw_curves(only_loss)


MODELS = ["base", "teacher", "rl-seed0", "rl-seed1", "rl-drgrpo", "rl-kl", "base-from-base", "rl-from-rl",
          "base-from-rl", "reasoning-only", "all-questions"]


def synthetic_evaluation(split: str, names: list[str], n: int = 40, k: int = 8) -> dict:
    """analyze() over made-up samples: model j solves question i with a rate that rises with j."""
    rng = random.Random(0)
    records = {}
    for j, name in enumerate(names):
        records[name] = [
            QuestionRecord(str(i), p.question, str(p.answer), p.level, list(p.facts),
                           [{"correct": (c := rng.random() < (i % 5) / 5 + j / 40), "answer": str(p.answer) if c
                             else str(rng.randint(0, 3)), "text": "wait, let me check" if c else "x", "tokens": 5 + j}
                            for _ in range(k)])
            for i, p in enumerate(toy_split(split)[:n])]
    return analyze(records, "base")


def test_world_detail_tables_figures_and_the_tutor_of_the_worlds_base(tmp_path):
    evaluations = {"eval": synthetic_evaluation("test", MODELS),
                   "eval-train": synthetic_evaluation("train", list(world_report.TRAIN_MODELS))}
    for folder, metrics in evaluations.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "metrics.json").write_text(json.dumps(metrics))
    # a base whose tutor lacks another fact than the shipped gaps: the knowledge split must follow it
    base = tmp_path / "toy-base"
    shutil.copytree(TOY_MODELS_DIR / "toy-base", base)
    config = json.loads((base / "config.json").read_text())
    facts = [f for p in toy_split("test")[:40] for f in p.facts if f not in LabTutor().gap_facts]
    config["minireason"]["tutor"]["gap_facts"] = [max(set(facts), key=facts.count)]
    (base / "config.json").write_text(json.dumps(config))
    lines = world_report.world_detail(tmp_path, tmp_path / "figures")
    drawn = {"e1_pass_at_k.png", "e2_per_bin_change.png", "e2_transitions.png", "e3_entropy.png",
             "e4_self_distillation.png", "e5_length.png", "e6_distillation.png", "ablations.png", "knowledge.png"}
    assert {f.name for f in (tmp_path / "figures").iterdir()} == drawn
    assert {line for line in lines if line.startswith("![")} == {f"![{n[:-4]}](figures/{n})" for n in drawn}
    tables = "\n".join(lines)
    gap = sum(knowledge_group(p, LabTutor.from_model(str(base))) == "hard-gap" for p in toy_split("test")[:40])
    shipped = sum(knowledge_group(p, LabTutor.from_model("toy-base")) == "hard-gap" for p in toy_split("test")[:40])
    assert gap != shipped and f"hard-gap (n={gap})" in tables
    assert "+13.9" in tables and "+11.6" in tables and "+24.7" in tables  # the paper's numbers beside ours
    assert "../shared" not in (ROOT / "experiments" / "world_report.py").read_text()
    assert "../shared" not in (ROOT / "experiments" / "RESULTS-toy-study.md").read_text()
    # an evaluation that lacks one model (a stage not finished): no section yet
    del evaluations["eval"]["models"]["rl-kl"]
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps(evaluations["eval"]))
    assert world_report.world_detail(tmp_path, tmp_path / "figures") is None


def test_faithful_pass_at_k_counts_only_samples_whose_every_step_is_right():
    from minireason.toy import clean_solution, faithful

    problems = toy_split("test")[:2]
    right = [clean_solution(p) for p in problems]
    # question 0: one clean trace and one right box over a wrong step; question 1: a right box over a wrong step only
    unfaithful = [r.replace("=", "=1", 1).rsplit(" ", 1)[0] + f" \\boxed{{{p.answer}}}"
                  for r, p in zip(right, problems)]
    texts = [[right[0], unfaithful[0]], [unfaithful[1], unfaithful[1]]]
    recs = [QuestionRecord(p.id, p.question, p.answer, p.level, p.facts,
                           [{"text": t, "tokens": 5, "answer": p.answer, "correct": True, "finish": "eos"} for t in ts])
            for p, ts in zip(problems, texts)]
    m = analyze({"m": recs}, faithful=faithful)["models"]["m"]
    assert m["pass@k"] == [1.0, 1.0] and m["faithful_counts"] == [1, 0] and m["faithful_unsolved"] == 1
    assert m["faithful_pass@k"] == [0.25, 0.5]  # question 0: pass@1 1/2, pass@2 1; question 1: 0
    assert faithful("x", "What is the capital of France?") is None
    real = [QuestionRecord("q", "What is 2 + 2, in words?", "4", None, [], recs[0].samples)]
    assert "faithful_pass@k" not in analyze({"m": real}, faithful=faithful)["models"]["m"]  # not a toy question


def test_knowledge_table_gives_faithful_pass_at_k_beside_pass_at_k_per_group():
    metrics = {"k": 4, "models": {"toy": {"counts": [2, 0, 4], "faithful_counts": [1, 0, 0]},
                                  "real": {"counts": [2, 0, 4]}}}  # no faithful counts: not a toy question set
    groups = {"hard-gap": np.array([True, True, False]), "other": np.array([False, False, True])}
    rows = world_report.knowledge_table(metrics, groups)
    assert rows[0] == ("| model | hard-gap (n=2): pass@1 / pass@4 / faithful pass@4 | "
                       "other (n=1): pass@1 / pass@4 / faithful pass@4 |")
    assert rows[2] == "| toy | 25.0 / 50.0 / 50.0 | 100.0 / 100.0 / 0.0 |"  # (2/4 + 0) / 2; one of two solved
    assert rows[3] == "| real | 25.0 / 50.0 / - | 100.0 / 100.0 / - |"
