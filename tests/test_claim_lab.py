"""The claim lab: its verdict rules judged on the paper's own numbers and on the toy study's, and the --mini lab
end to end (every stage, every claim's section and figure, a resume that redoes nothing)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from claims_report import (e1_verdict, e2_verdict, e3_verdict, e4_verdict, e5_verdict, e6_verdict,  # noqa: E402
                           hard_gap_cells, note, reach_lines)


def test_the_papers_own_numbers_pass_every_rule():
    assert e1_verdict(13.9, -0.2) == "reproduced"  # Table 3, 1.5B, test
    assert e2_verdict([0.005, 0.006, 0.088, 0.247, 0.366, 0.198]) == "reproduced"  # Fig. 1
    assert e4_verdict(11.6 - 0.8) == "reproduced"  # Table 4
    assert e5_verdict(643 / 707, 0.63 - 0.92) == "reproduced"  # Fig. 3 and 14
    assert e3_verdict([1.9, 1.8, 1.2, 0.6], [0.3, 0.2, 0.1, 0.05]) == "reproduced"


def test_the_toy_studys_misses_fail_the_rules_they_missed():
    # experiments/RESULTS.md: pass@64 +2.7 (mixed), gains largest in [5-16] at k = 256, Base<-RL - Base<-Base +0.6
    assert e1_verdict(32.8, 2.7) == "mixed"
    assert e1_verdict(32.8, 4.0) == "not reproduced" and e1_verdict(2.0, 0.0) == "not reproduced"
    assert e2_verdict([0.125, 0.746, 0.818, 0.720, 0.507, 0.165]) == "not reproduced"
    assert e2_verdict([None, 0.30, 0.10, 0.35, 0.40, 0.20]) == "not reproduced"  # [1-4] gains more than half the top
    assert e4_verdict(33.1 - 32.5) == "not reproduced"
    assert e5_verdict(1.10, 0.0) == "not reproduced" and e5_verdict(1.0, 0.05) == "not reproduced"
    assert e3_verdict([1.9, 0.5], [0.3, 0.6]) == "not reproduced"
    assert e6_verdict(0.1, 15.5) == "reproduced" and e6_verdict(5.0, 15.5) == "not reproduced"


def test_reach_table_counts_five_digit_sums_stated_right_per_model_only_where_the_tutor_makes_them_rare(tmp_path):
    from dataclasses import asdict

    from minireason.lab_world import LabTutor

    def write_world(long_sum: float) -> None:
        (tmp_path / "on" / "toy-base").mkdir(parents=True, exist_ok=True)
        tutor = asdict(LabTutor(long_sum=long_sum))
        (tmp_path / "on" / "toy-base" / "config.json").write_text(json.dumps({"minireason": {"tutor": tutor}}))

    steps = "7*9=63,4*9=36+6=42,3*9=27+4=31:3123;7*2=14,4*2=8+1=9,3*2=6:694;"  # 347 * 29 = 10063
    traces = {"base": [steps + "3123+6940=10063 \\boxed{10063}", steps + "3123+6940=10073 \\boxed{10073}",
                       "6*6=36:36;36+360=396 \\boxed{396}"],
              "rl-seed0": [steps + "3123+6940=10063 \\boxed{10063}"], "rl-seed1": ["7*8=56 \\boxed{56}"]}
    (tmp_path / "on" / "eval").mkdir(parents=True)
    for name, texts in traces.items():
        record = {"id": "q", "question": "What is 347 * 29?", "answer": "10063", "level": None, "facts": [],
                  "samples": [{"text": t, "correct": False} for t in texts]}
        lines = [json.dumps({"header": {}}), json.dumps(record)]
        (tmp_path / "on" / "eval" / f"samples-{name}.jsonl").write_text("\n".join(lines) + "\n")
    metrics = {"models": {name: {} for name in traces}}
    write_world(0.05)
    lines = reach_lines(tmp_path, "on", metrics)
    assert lines[-2:] == ["|---|---|", "| 50.0% of 2 | 100.0% of 1 |"]  # rl-seed1 has no five-digit sum
    assert lines[-3] == "| base | RL (mean of seeds) |" and "(the tutor: 5.0%" in lines[1]
    write_world(1.0)
    assert reach_lines(tmp_path, "on", metrics) == []


def test_hard_gap_line_counts_questions_and_samples_by_outcome_and_by_faithful_trace():
    model = {"counts": [3, 0, 1, 5, 0], "faithful_counts": [1, 0, 0, 5, 0]}  # question 3 is not a hard-gap one
    assert hard_gap_cells(model, [0, 1, 2], k=4) == ["2 of 3", "1", "3.3e-01", "8.3e-02"]  # 4 / 12 and 1 / 12
    assert hard_gap_cells({"counts": model["counts"]}, [1, 4], k=4) == ["0 of 2", "-", "0", "-"]


def samples_header(path: Path) -> dict:
    with path.open() as f:
        return json.loads(f.readline())["header"]


@pytest.mark.slow
def test_mini_lab_runs_every_stage_in_parallel_and_resumes_without_redoing_work(tmp_path):
    cmd = [sys.executable, "experiments/claim_lab.py", "--mini", "--seeds", "1", "--out", str(tmp_path)]
    r = subprocess.run([*cmd, "--jobs", "2"], cwd=ROOT, capture_output=True, text=True)  # no time limit: a busy
    # machine is slower, not wrong (about 2 minutes on 2 idle cores)
    assert r.returncode == 0, r.stderr[-3000:]
    page = (tmp_path / "CLAIMS.md").read_text()
    for title in ("## E1", "## E2", "## E3", "## E4", "## E5", "## Outcome vs process reward", "## E6"):
        assert title in page
    assert "Pending" not in page and "pending" not in page
    assert "## Verdicts at k = 4, not the paper's 256" in page and "What the runs show" not in page  # k = 256 prose
    assert "| model | accuracy | pass@4 | faithful pass@4 | hard-gap questions with a right sample |" in page
    gap_rows = re.findall(r"^\| (on|off|local) \| ([\w-]+) \| \d+ of \d+ \| \d+ \|", page, flags=re.M)
    assert {(w, n) for w, n in gap_rows} == {(w, n) for w in ("on", "off", "local") for n in json.loads(
        (tmp_path / w / "eval" / "metrics.json").read_text())["models"]}  # decision 1's line for every model
    assert "pass@1 / pass@4 / faithful pass@4 |" in page and "/ - |" not in page  # every model, by knowledge
    assert page.count("Rule, fixed before the runs") == 6
    figures = {f.name for f in (tmp_path / "figures" / "lab").iterdir()}
    assert figures == {"e1_pass_at_k.png", "e2_per_bin.png", "e3_entropy.png", "e4_self_distillation.png",
                       "e5_reflection.png", "e6_distillation.png"}
    # stage 6, the toy study folded in: world on in detail, its figures in figures/ and its tables on the page
    detail = {"e1_pass_at_k.png", "e2_per_bin_change.png", "e2_transitions.png", "e3_entropy.png",
              "e4_self_distillation.png", "e5_length.png", "e6_distillation.png", "ablations.png", "knowledge.png"}
    assert {f.name for f in (tmp_path / "figures").glob("*.png")} == detail
    assert all(f"](figures/{name})" in page for name in detail)
    for experiment in ("E1", "E2", "E3", "E4", "E5", "E6", "Ablations", "By knowledge needed"):
        assert f"### {experiment}" in page
    assert set(json.loads((tmp_path / "on" / "eval-train" / "metrics.json").read_text())["models"]) == {
        "base", "rl-seed0", "base-from-base", "rl-from-rl", "base-from-rl"}
    for world in ("on", "off"):
        models = set(json.loads((tmp_path / world / "eval" / "metrics.json").read_text())["models"])
        assert {"base", "rl-seed0", "base-from-base", "base-from-rl"} <= models
    assert {"process-seed0", "reasoning-only", "all-questions", "teacher", "rl-drgrpo", "rl-kl", "rl-from-rl"} <= set(
        json.loads((tmp_path / "on" / "eval" / "metrics.json").read_text())["models"])
    # --jobs 2 sampled each model on its own before one report of all: a samples file per model, no duplicates
    calls = [line for line in r.stdout.splitlines() if line.startswith("$ python evaluate.py --data test")]
    assert calls and all(line.count("--model ") == 1 for line in calls)
    evaluated = [json.loads((tmp_path / world / "eval" / "metrics.json").read_text())["models"]
                 for world in ("on", "off", "local")]
    # a model another world already sampled with the same weights is copied, not sampled again: every world's base
    # here is the shipped toy-base (sampled once, in world on), and some miniature runs come out identical too
    headers = {(name, samples_header(tmp_path / world / "eval" / f"samples-{name}.jsonl")["fingerprint"])
               for world, models in zip(("on", "off", "local"), evaluated) for name in models}
    assert len(calls) == len(headers) < sum(map(len, evaluated)) and sum(" --model base=" in c for c in calls) == 1
    on_base = (tmp_path / "on" / "eval" / "samples-base.jsonl").read_text().splitlines()
    for world in ("off", "local"):
        twin = (tmp_path / world / "eval" / "samples-base.jsonl").read_text().splitlines()
        assert twin[1:] == on_base[1:] and json.loads(twin[0])["header"]["model"] == str(tmp_path / world / "toy-base")
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)  # resumed one run at a time
    assert again.returncode == 0, again.stderr[-3000:]
    assert "train_rl.py --out" not in again.stdout and "train_distill.py --out" not in again.stdout
    other = subprocess.run([*cmd[:2], "--fast", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert other.returncode != 0 and "other settings" in other.stderr


def test_the_committed_pages_findings_are_the_ones_written_for_its_runs():
    page = (ROOT / "experiments" / "CLAIMS.md").read_text()
    folder = re.search(r"from the runs in `([^`/]+)/`", page).group(1)
    findings = note(f"findings-{folder}")  # raises if no findings were written for this lab folder
    assert findings.splitlines()[0] in page.splitlines()


def test_each_shipped_lab_base_was_pretrained_with_its_worlds_flags(monkeypatch):
    """The lab copies a shipped base instead of pretraining one (unless --pretrain): it must be the world's."""
    import claim_lab

    shipped = {w: claim_lab.shipped_base(w) for w in claim_lab.WORLDS}  # each checked against WORLDS
    assert shipped["on"] is not None and shipped["off"] is not None
    monkeypatch.setitem(claim_lab.WORLDS, "on", [f for f in claim_lab.WORLDS["on"] if f not in ("--gap-error", "5")])
    with pytest.raises(SystemExit, match="its tutor or context is not world on's"):
        claim_lab.shipped_base("on")
