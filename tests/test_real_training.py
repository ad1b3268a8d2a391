"""Training on real weights and real-style data: SmolLM2-135M-Instruct (BPE tokenizer, ChatML, its own EOS ids)
on a small MATH-style JSONL, and every script with the math-verify grader."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import evaluate
import train_distill
import train_rl
from minireason.checkpoint import load_pretrained
from minireason.graders import optional_math_verify

ROOT = Path(__file__).resolve().parents[1]
MATH_STYLE = [  # written for these tests
    {"id": "m0", "question": "Compute $\\frac{1}{2} + \\frac{1}{4}$.", "answer": "\\frac{3}{4}"},
    {"id": "m1", "question": "What is $3^2 + 4^2$?", "answer": "25"},
    {"id": "m2", "question": "Simplify $\\sqrt{12}$.", "answer": "2\\sqrt{3}"},
    {"id": "m3", "question": "What is 15% of 80?", "answer": "12"},
]


@pytest.fixture
def math_jsonl(tmp_path):
    f = tmp_path / "math.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in MATH_STYLE))
    return f


def loads_in_transformers(folder: Path) -> None:
    """The saved folder loads in transformers and gives the same logits as our model."""
    import transformers

    hf = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ours = load_pretrained(folder)
    ids = torch.tensor([[1, 504, 1159, 314, 216, 33, 30]])
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, ours(ids), atol=2e-4)


@pytest.mark.slow
def test_grpo_and_sft_two_steps_on_smollm2(smollm2_dir, math_jsonl, tmp_path):
    rl_out = tmp_path / "rl"
    # beta > 0 puts every response into the loss (the KL term), so the update runs even if no reward differs
    # (its gradient is zero while the policy still equals the reference, so grad_norm may be 0 then)
    train_rl.main(["--model", str(smollm2_dir), "--data", str(math_jsonl), "--eval-data", str(math_jsonl),
                   "--template", "chatml", "--steps", "2", "--batch-questions", "2", "--group-size", "2",
                   "--max-new-tokens", "24", "--beta", "0.05", "--eval-every", "0", "--final-eval-samples", "0",
                   "--out", str(rl_out)])
    log = [json.loads(line) for line in (rl_out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["kl"] >= 0 and math.isfinite(r["loss"]) for r in log)
    assert json.loads((rl_out / "config.json").read_text())["lr"] == 1e-6  # the paper's preset for real models
    loads_in_transformers(rl_out / "final")

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"question": r["question"], "response": f"The answer is \\boxed{{{r['answer']}}}."}) + "\n"
            for r in MATH_STYLE
        )
    )
    sft_out = tmp_path / "sft"
    train_distill.main(["--student", str(smollm2_dir), "--sft-data", str(pairs), "--eval-data", str(math_jsonl),
                        "--template", "chatml", "--epochs", "1", "--batch-size", "2", "--max-new-tokens", "16",
                        "--final-eval-samples", "1", "--lr", "1e-5", "--out", str(sft_out)])
    log = [json.loads(line) for line in (sft_out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["loss"] > 0 for r in log)
    assert (sft_out / "curves.png").is_file()
    loads_in_transformers(sft_out / "final")


@pytest.mark.skipif(optional_math_verify() is None, reason="math-verify is not installed")
def test_every_script_runs_with_math_verify(tmp_path):
    toy = tmp_path / "toy.jsonl"
    rows = [{"id": f"q{i}", "question": f"What is {a} + {b}?", "answer": str(a + b)}
            for i, (a, b) in enumerate([(12, 30), (45, 11), (23, 64), (50, 17), (31, 31), (70, 22)])]
    toy.write_text("".join(json.dumps(r) + "\n" for r in rows))
    evaluate.main(["--data", str(toy), "--k", "4", "--grader", "math-verify", "--out", str(tmp_path / "eval"),
                   "--no-figures"])
    header = json.loads((tmp_path / "eval" / "samples-base.jsonl").read_text().splitlines()[0])["header"]
    assert header["grader"] == "math-verify"
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["models"]["teacher"]["accuracy"] > 0.5  # the clean toy teacher adds 2-digit numbers
    train_rl.main(
        [
            "--data",
            str(toy),
            "--eval-data",
            str(toy),
            "--steps",
            "1",
            "--batch-questions",
            "2",
            "--group-size",
            "2",
            "--eval-every",
            "0",
            "--final-eval-samples",
            "1",
            "--out",
            str(tmp_path / "rl"),
        ]
    )
    assert json.loads((tmp_path / "rl" / "config.json").read_text())["grader"] == "math-verify"  # auto, real data
    train_distill.main(["--data", str(toy), "--eval-data", str(toy), "--pool", "6", "--k", "2", "--epochs", "1",
                        "--final-eval-samples", "1", "--out", str(tmp_path / "sft")])
    assert len((tmp_path / "sft" / "sft_data.jsonl").read_text().splitlines()) >= 6


def test_scripts_report_unparseable_gold_answers(tmp_path):
    data = tmp_path / "golds.jsonl"
    data.write_text(json.dumps({"question": "What is 1 + 1?", "answer": "2"}) + "\n"
                    + json.dumps({"question": "Say nothing.", "answer": " "}) + "\n")
    r = subprocess.run([sys.executable, "evaluate.py", "--data", str(data), "--k", "1", "--grader", "exact",
                        "--model", "base=toy-base", "--out", str(tmp_path / "e"), "--no-figures"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "the exact grader cannot parse 1 of 2 gold answers" in r.stdout and "capped at 0.500" in r.stdout
