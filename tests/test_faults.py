"""Fault injection: kills at any moment (kill -9, and exact points inside checkpoint writes and rotation), cut
files, a full disk, and every kind of bad input. A run must resume bit for bit, never lose finished work, and
every script must end with one line and no traceback."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import train_rl
from minireason import files, runs
from minireason.cli import run_cli
from minireason.checkpoint import TOY_MODELS_DIR

ROOT = Path(__file__).resolve().parents[1]
RL = ["--batch-questions", "4", "--group-size", "4", "--eval-every", "0", "--final-eval-samples", "0", "--lr", "1e-3",
      "--steps", "4", "--checkpoint-every", "1"]


def script(*args, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def one_line_error(r, *needles):
    """Exit status non-zero, no traceback, and a last stderr line holding every needle."""
    last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    return r.returncode != 0 and "Traceback" not in r.stderr and all(n in last for n in needles)


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a / "final" / "model.safetensors"), load_file(b / "final" / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run every interrupted one must equal."""
    out = tmp_path_factory.mktemp("straight") / "run"
    train_rl.main(RL + ["--out", str(out)])
    return out


class Killed(BaseException):
    """Stands for the process dying at this exact point: nothing after it runs."""


def kill_at(monkeypatch, module, name, when):
    """Make module.name die (raise Killed) on the call for which when(*args) is true."""
    real = getattr(module, name)

    def dying(*args, **kwargs):
        if when(*args):
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, dying)


@pytest.mark.parametrize("window", ["checkpoint complete, not yet renamed", "final folder complete, not yet renamed",
                                    "rotation half deleted"])
def test_a_kill_inside_the_checkpoint_windows_resumes_bit_for_bit(window, straight, tmp_path, monkeypatch):
    out = tmp_path / "run"
    if window == "checkpoint complete, not yet renamed":  # step 3's checkpoint written whole under .tmp
        kill_at(monkeypatch, runs, "_replace_dir", lambda tmp, final: final.name == "step-000003")
    elif window == "final folder complete, not yet renamed":  # after the last checkpoint, writing final/
        kill_at(monkeypatch, runs, "_replace_dir", lambda tmp, final: final.name == "final")
    else:  # step 3 removes step 1: killed in the middle of deleting it
        kill_at(monkeypatch, runs.shutil, "rmtree", lambda path, *a: str(path).endswith("step-000001.deleting"))
    with pytest.raises(Killed):
        train_rl.main(RL + ["--out", str(out)])
    monkeypatch.undo()
    assert all((c / "trainer_state.pt").is_file() for c in (out / "checkpoints").glob("step-??????"))
    train_rl.main(["--resume", str(out)])
    assert same_weights(straight, out)
    assert [json.loads(l)["step"] for l in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert not list((out / "checkpoints").glob("*.deleting"))


def test_kill_9_at_random_moments_then_resume_equals_the_straight_run(straight, tmp_path):
    out = tmp_path / "run"
    args = ["train_rl.py", *RL, "--out", str(out)]
    delays = iter([0.3, 0.9, 0.2, 1.5])  # after the first log line appears: early, late, at once, later
    for delay in delays:
        proc = subprocess.Popen([sys.executable, *(args if not (out / "config.json").exists()
                                                   else ["train_rl.py", "--resume", str(out)])],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log, t0 = out / "log.jsonl", time.time()
        while proc.poll() is None and not (log.is_file() and log.stat().st_size) and time.time() - t0 < 120:
            time.sleep(0.05)
        time.sleep(delay)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    if not (out / "final").is_dir():
        r = script("train_rl.py", "--resume", str(out))
        assert r.returncode == 0, r.stderr[-2000:]
    assert same_weights(straight, out)


def test_a_torn_log_line_is_dropped_with_a_warning_naming_the_file(straight, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Killed):
        with pytest.MonkeyPatch.context() as mp:
            kill_at(mp, train_rl, "update", lambda model, opt, oc, ro, cfg, step, *a: step == 3)
            train_rl.main(RL + ["--out", str(out)])
    with open(out / "log.jsonl", "a") as f:
        f.write('{"step": 4, "reward_me')  # a kill mid-append
    with pytest.warns(UserWarning, match=r"log.jsonl:4: dropped a torn last line"):
        train_rl.main(["--resume", str(out)])
    assert same_weights(straight, out)


def test_a_full_disk_ends_with_one_line_and_loses_nothing(straight, tmp_path, monkeypatch):
    out, calls = tmp_path / "run", []
    real_fsync = files.os.fsync

    def fsync_until_full(fd):
        calls.append(fd)
        if len(calls) > 16:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync_until_full)
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: train_rl.main(RL + ["--out", str(out)]))
    assert "no space left while writing" in str(stop.value) and "nothing finished was lost" in str(stop.value)
    monkeypatch.undo()
    assert not list(out.rglob("*.tmp"))  # no half-written file left behind
    train_rl.main(["--resume", str(out)])  # the disk has room again
    assert same_weights(straight, out)


def test_distillation_data_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from minireason.sft import Example, load_examples, save_examples

    path = tmp_path / "sft_data.jsonl"
    examples = [Example(f"q{i}", "prompt", "response", "1") for i in range(50)]
    save_examples(examples, path)
    pieces = []
    real_write = open

    class CutShort:  # the disk fills after 10 examples: the old file must survive untouched
        def __init__(self, *a, **k):
            self.f = real_write(*a, **k)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, piece):
            pieces.append(piece)
            if len(pieces) > 10:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.f.write(piece)

    monkeypatch.setattr(files, "open", CutShort, raising=False)
    with pytest.raises(OSError, match="sft_data.jsonl"):
        save_examples(examples[:20], path)
    monkeypatch.undo()
    assert load_examples(path) == examples and not list(tmp_path.glob("sft_data.jsonl*.tmp"))
    path.write_text(path.read_text()[:-30])  # cut by something outside the project
    with pytest.raises(ValueError, match=r"sft_data.jsonl:50: not valid JSON"):
        load_examples(path)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    model = d / "truncated-model"
    model.mkdir()
    for f in (TOY_MODELS_DIR / "toy-base").iterdir():
        (model / f.name).write_bytes(f.read_bytes())
    weights = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    (d / "latin1.jsonl").write_bytes(b'{"question": "1 + 1?", "answer": "2"}\n'
                                     b'{"question": "caf\xe9 + 1?", "answer": "2"}\n')
    (d / "long.jsonl").write_text(json.dumps({"question": "1 + " * 25_000 + "1?", "answer": "25001"}) + "\n")
    (d / "a-file").write_text("not a folder")
    return d


@pytest.mark.parametrize("case", ["truncated weights: evaluate", "truncated weights: train_rl",
                                  "truncated weights: distill", "non-UTF-8 data", "prompt over the context",
                                  "out is a file", "out not writable", "resume with another model"])
def test_bad_input_is_one_line(case, bad_files, tmp_path):
    d, out = bad_files, str(tmp_path / "out")
    model = str(d / "truncated-model")
    context = json.loads((TOY_MODELS_DIR / "toy-base" / "config.json").read_text())["max_position_embeddings"]
    args, needles = {
        "truncated weights: evaluate": (["evaluate.py", "--model", f"m={model}", "--limit", "2", "--k", "1", "--out",
                                         out], ["model.safetensors: not a readable safetensors file"]),
        "truncated weights: train_rl": (["train_rl.py", "--model", model, "--out", out],
                                        ["model.safetensors: not a readable safetensors file"]),
        "truncated weights: distill": (["train_distill.py", "--student", model, "--out", out],
                                       ["model.safetensors: not a readable safetensors file"]),
        "non-UTF-8 data": (["evaluate.py", "--data", str(d / "latin1.jsonl"), "--out", out],
                           ["latin1.jsonl:2: not UTF-8 text (byte 0xe9"]),
        "prompt over the context": (["evaluate.py", "--data", str(d / "long.jsonl"), "--k", "1", "--out", out],
                                    ["prompt 0 has", f"more than the model's context of {context}"]),
        "out is a file": (["train_rl.py", "--out", str(d / "a-file")], ["a-file: exists and is not a folder"]),
        "out not writable": (["evaluate.py", "--limit", "2", "--k", "1", "--out", "/proc/minireason-x"],
                             ["/proc/minireason-x"]),
        "resume with another model": (["train_rl.py", "--resume", str(d / "run"), "--model", "toy-teacher"],
                                      ["--model was 'toy-base', now 'toy-teacher'"]),
    }[case]
    if case == "resume with another model" and not (d / "run" / "config.json").exists():
        train_rl.main(RL + ["--steps", "1", "--out", str(d / "run")])
    r = script(*args)
    assert one_line_error(r, *needles), r.stderr[-1500:]


@pytest.mark.parametrize("script_name,argv,message", [
    ("evaluate", ["--max-new-tokens", "0"], "argument --max-new-tokens: must be >= 1, got 0"),
    ("evaluate", ["--k", "0"], "argument --k: must be >= 1, got 0"),
    ("evaluate", ["--limit", "-1"], "argument --limit: must be >= 1, got -1"),
    ("evaluate", ["--limit", "0"], "argument --limit: must be >= 1, got 0"),
    ("train_rl", ["--checkpoint-every", "0"], "argument --checkpoint-every: must be >= 1, got 0"),
    ("evaluate", ["--top-p", "2"], "argument --top-p: must be <= 1.0, got 2"),
    ("train_distill", ["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    ("train_distill", ["--k", "0"], "argument --k: must be >= 1, got 0"),
])
def test_bad_values_are_refused_at_parse_time_in_one_line(script_name, argv, message, capsys):
    main = __import__(script_name).main
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_more_questions_per_step_than_the_data_is_one_line(tmp_path):
    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(3)))
    with pytest.raises(SystemExit, match="--batch-questions 4 is more than the 3 questions of"):
        run_cli(lambda: train_rl.main(RL + ["--data", str(data), "--out", str(tmp_path / "r")]))
    assert not (tmp_path / "r" / "checkpoints").exists()
    train_rl.main(RL + ["--steps", "1", "--batch-questions", "2", "--group-size", "2", "--data", str(data),
                        "--out", str(tmp_path / "r")])  # the failed start left nothing in the way


def test_checkpoint_files_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    synced, real_fsync = [], files.os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}"))
                        or real_fsync(fd))
    train_rl.main(RL + ["--steps", "1", "--out", str(tmp_path / "r")])
    ckpt = tmp_path / "r" / "checkpoints" / "step-000001"
    names = {Path(p).name for p in synced if "step-000001" in p}
    assert names >= {f.name for f in ckpt.iterdir()} and "model.safetensors" in names


def test_analyze_only_warns_about_a_torn_samples_file(tmp_path):
    out = tmp_path / "res"
    assert script("evaluate.py", "--limit", "6", "--k", "2", "--out", str(out)).returncode == 0
    for name in ("samples-base.jsonl", "samples-teacher.jsonl"):
        text = (out / name).read_text()
        (out / name).write_text(text[: len(text) - 40])  # the last question cut mid-line
    r = script("evaluate.py", "--analyze-only", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "samples-base.jsonl:7: dropped a torn last line" in r.stderr and "5 complete questions" in r.stderr
    assert json.loads((out / "metrics.json").read_text())["questions"] == 5


def test_interrupt_is_one_line(monkeypatch):
    with pytest.raises(SystemExit, match="interrupted: finished work is kept"):
        run_cli(lambda: (_ for _ in ()).throw(KeyboardInterrupt))

