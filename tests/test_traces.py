"""Leave no trace: a refused command leaves every folder as it was (names, sizes and bytes), --overwrite moves the
old run aside untouched, and a temporary file never outlives its process: a handled signal removes it, and the next
process to lock the folder sweeps a dead one's, naming each file."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import evaluate
import train_rl
from minireason import files
from minireason.cli import run_cli
from test_failures import samples_file, toy_copy
from test_faults import RL, ROOT
from minireason.tasks import toy_split


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below folder, by its path relative to folder: the bytes it holds (so its name and size too)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(main, argv) -> str:
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: main(argv))
    return str(stop.value)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    train_rl.main(RL + ["--steps", "1", "--out", str(out)])
    return out


def written_elsewhere(run: Path) -> Path:
    """The run as another process left it: its .lock holds that process's pid, not this one's."""
    (run / ".lock").write_text(str(dead_pid()))
    return run


def dead_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------------------------------------- refused commands


def test_resuming_a_model_folder_is_refused_and_writes_nothing_into_it(tmp_path):
    model = toy_copy(tmp_path)
    before = snapshot(model)
    assert "cannot resume this run" in refused(train_rl.main, ["--resume", str(model)])
    assert snapshot(model) == before  # no .lock in the user's model folder


def test_a_resume_with_another_flag_is_refused_and_the_run_is_untouched(finished_run):
    written_elsewhere(finished_run)
    before = snapshot(finished_run)
    assert "--lr was 0.001, now 1.0" in refused(train_rl.main, ["--resume", str(finished_run), "--lr", "1"])
    assert snapshot(finished_run) == before  # .lock keeps the pid of the process that wrote the run


def test_a_fresh_run_into_a_used_folder_is_refused_and_writes_nothing(finished_run):
    written_elsewhere(finished_run)
    before = snapshot(finished_run)
    assert "already holds a run" in refused(train_rl.main, RL + ["--out", str(finished_run)])
    assert snapshot(finished_run) == before


def test_samples_of_another_run_are_refused_and_the_results_folder_is_untouched(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    samples_file(out / "samples-base.jsonl", toy_split("test")[:2])
    before = snapshot(out)
    message = refused(evaluate.main, ["--model", "base=toy-base", "--limit", "2", "--k", "2", "--out", str(out)])
    assert "holds samples from a different run" in message
    assert snapshot(out) == before  # no samples-base.jsonl.lock


def test_overwrite_moves_the_old_run_aside_byte_for_byte(tmp_path, finished_run):
    out = tmp_path / "run"
    shutil.copytree(written_elsewhere(finished_run), out)
    before = snapshot(out)
    train_rl.main(RL + ["--steps", "1", "--out", str(out), "--overwrite"])
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and snapshot(aside[0]) == before
    assert (out / "final").is_dir()


# ---------------------------------------------------------------------------------------------- temporary files


def test_a_handled_signal_removes_the_temporary_file_it_interrupted(tmp_path, monkeypatch):
    """Ctrl-C (KeyboardInterrupt) while evaluate.py writes metrics.json: one line, and no *.tmp left."""
    out = tmp_path / "res"
    out.mkdir()
    problems = toy_split("test")[:3]
    samples_file(out / "samples-base.jsonl", problems)

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupted)
    message = refused(evaluate.main, ["--model", "base=toy-base", "--analyze-only", "--no-figures", "--out", str(out)])
    assert message.startswith("interrupted")
    assert not list(out.glob("*.tmp")) and not (out / "metrics.json").exists()


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_inside_a_write_removes_its_temporary_file(tmp_path, signal_name):
    """A real signal, sent while a process is inside atomic_write: the script's boundary ends it in one line and
    the temporary file is gone."""
    target = tmp_path / "sft_data.jsonl"
    child = (f"import os, signal, sys\nfrom minireason import files\nfrom minireason.cli import run_cli\n"
             f"def pieces():\n    yield 'half'\n    os.kill(os.getpid(), signal.{signal_name})\n    yield 'rest'\n"
             f"run_cli(lambda: files.atomic_write(sys.argv[1], pieces()))\n")
    # As from a terminal: a shell's background job starts with SIGINT ignored, and a Python started so never turns
    # SIGINT into KeyboardInterrupt (the child would finish its write, exit 0, and test nothing)
    as_from_a_terminal = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    r = subprocess.run([sys.executable, "-c", child, str(target)], cwd=ROOT, capture_output=True, text=True,
                       preexec_fn=as_from_a_terminal)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert os.listdir(tmp_path) == []


def test_kill_9_leaves_a_temporary_file_that_the_next_run_sweeps(tmp_path, capsys):
    """kill -9 cannot be handled: the file stays until the next process locks the folder, which removes it and
    names it; a live process's temporary file is left alone."""
    out = tmp_path / "run"
    out.mkdir()
    child = ("import sys, time\nfrom minireason import files\n"
             "def pieces():\n    yield 'half'\n    print('writing', flush=True)\n    time.sleep(60)\n"
             "files.atomic_write(sys.argv[1], pieces())\n")
    proc = subprocess.Popen([sys.executable, "-c", child, str(out / "sft_data.jsonl")], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    stale = out / f"sft_data.jsonl.{proc.pid}.tmp"
    assert stale.is_file()
    live = out / f"metrics.json.{os.getpid()}.tmp"  # this process is alive: never swept
    live.write_text("in progress")
    train_rl.main(RL + ["--steps", "1", "--out", str(out)])
    assert not stale.exists() and live.is_file()
    assert f"removed {stale}, a temporary file left by process {proc.pid}, which is no longer running" \
        in capsys.readouterr().out


def test_the_report_sweeps_its_folder_of_dead_processes_files(tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()
    samples_file(out / "samples-base.jsonl", toy_split("test")[:3])
    stale = out / f"metrics.json.{dead_pid()}.tmp"
    stale.write_text("{")
    evaluate.main(["--model", "base=toy-base", "--analyze-only", "--no-figures", "--out", str(out)])
    assert not stale.exists() and "removed " + str(stale) in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["questions"] == 3
