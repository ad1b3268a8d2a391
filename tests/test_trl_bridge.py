"""The TRL bridge (experiments/trl_bridge.py): two GRPO steps and two SFT steps of our configs through TRL on the
toy base. The output folder loads with our loader, its config records TRL's settings, and a flag with no TRL
equivalent is refused in one line. Skipped without trl (an optional dependency, like math-verify)."""

import json
import sys
from pathlib import Path

import pytest

from minireason.checkpoint import load_pretrained, model_hints
from minireason.cli import run_cli
from minireason.sft import Example, save_examples
from minireason.tasks import toy_split
from minireason.toy import clean_solution

pytest.importorskip("trl")
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
