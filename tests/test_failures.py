"""No silent wrong answers: every probe here once exited 0 with a wrong result, lost data or ended in a traceback.
Each now ends in one line naming the flag, file or line, with nothing written or lost (or, for changed weights,
refuses the old samples)."""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer as HFTokenizer

import evaluate
import train_distill
import train_rl
from minireason import files
from minireason.cli import run_cli
from minireason.collect import read_samples_file
from minireason.convert import main as convert_main
from minireason.checkpoint import ModelLoadError, TOY_MODELS_DIR, fingerprint, load_pretrained, read_config
from minireason.tasks import load_jsonl, toy_split
from minireason.tokenizer import Tokenizer
from test_faults import RL, ROOT, Killed, kill_at, one_line_error, script


def samples_file(path, problems, data="test"):
    """A samples file as evaluate.py writes it: one right sample per question."""
    header = {"model": "toy-teacher", "data": data, "questions": len(problems), "k": 1}
    rows = [{"id": p.id, "question": p.question, "answer": p.answer, "level": p.level, "facts": p.facts,
             "samples": [{"text": f"\\boxed{{{p.answer}}}", "tokens": 3, "answer": p.answer, "correct": True,
                          "finish": "eos"}]} for p in problems]
    path.write_text("".join(json.dumps(r) + "\n" for r in [{"header": header}, *rows]))
    return path


def toy_copy(tmp_path, name="toy-base"):
    model = tmp_path / name
    shutil.copytree(TOY_MODELS_DIR / name, model)
    return model


# ---------------------------------------------------------------------------------------------- 1: test-set leak


def test_stored_test_samples_never_become_training_data(tmp_path):
    stored = samples_file(tmp_path / "samples-teacher.jsonl", toy_split("test")[:5])
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: train_distill.main(["--teacher-samples", str(stored), "--out", str(tmp_path / "d")]))
    message = str(stop.value)
    assert "--teacher-samples" in message and "5 of 5 stored questions (e.g. 'test-0')" in message
    assert "not questions of --data train" in message and "'test'" in message
    assert not (tmp_path / "d" / "sft_data.jsonl").exists() and not (tmp_path / "d" / "checkpoints").exists()


def test_stored_samples_are_used_only_inside_the_pool(tmp_path):
    train = toy_split("train")
    stored = samples_file(tmp_path / "samples-teacher.jsonl", train[:40], data="train")
    train_distill.main(["--teacher-samples", str(stored), "--pool", "4000", "--epochs", "1", "--batch-size", "64",
                        "--final-eval-samples", "0", "--out", str(tmp_path / "d")])
    kept = {json.loads(line)["id"] for line in (tmp_path / "d" / "sft_data.jsonl").read_text().splitlines()}
    pool = {p.id for p in __import__("random").Random(0).sample(train, 4000)}
    assert kept == {p.id for p in train[:40]} & pool and kept  # never a stored question outside the pool


# ---------------------------------------------------------------------------------------------- 2, 3: run folders


def test_resume_writes_into_the_folder_it_is_given(tmp_path, monkeypatch):
    original = tmp_path / "run"
    with pytest.raises(Killed):
        with monkeypatch.context() as mp:
            kill_at(mp, train_rl, "update", lambda model, opt, oc, ro, cfg, step, *a: step == 2)
            train_rl.main(RL + ["--out", str(original)])
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original)
    train_rl.main(["--resume", str(copy)])
    assert (copy / "final" / "model.safetensors").is_file() and (copy / "curves.png").is_file()
    assert not original.exists()
    assert json.loads((copy / "config.json").read_text())["out"] == str(copy)
    assert [json.loads(line)["step"] for line in (copy / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def hold_lock(lock_file):
    """Another process's lock: an flock on its own open file (flock locks conflict between open files)."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"4242")
    return fd


def test_a_second_writer_of_a_run_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    fd = hold_lock(out / ".lock")
    try:
        with pytest.raises(SystemExit, match=r"--out .*run is being written by another process \(pid 4242\)"):
            run_cli(lambda: train_rl.main(RL + ["--out", str(out)]))
        assert not (out / "config.json").exists()
        train_rl.main(RL + ["--steps", "1", "--out", str(tmp_path / "other")])  # other folders go ahead
    finally:
        os.close(fd)
    train_rl.main(RL + ["--steps", "1", "--out", str(out)])  # the lock is gone with its holder
    os.close(hold_lock(out / ".lock"))  # and main released its own when it returned


def test_two_processes_on_one_run_folder(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from minireason import files; "
                               "files.lock(sys.argv[1] + '/.lock', 'x'); print('held', flush=True); time.sleep(60)",
                               str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    out.mkdir()
    try:
        assert holder.stdout.readline().strip() == "held"
        r = script("train_rl.py", *RL, "--out", str(out))
        assert one_line_error(r, f"--out {out} is being written by another process (pid {holder.pid})"), r.stderr
        (out / "config.json").write_text("{}")  # the run it writes, as far as it got
        r = script("train_rl.py", "--resume", str(out))
        assert one_line_error(r, f"run folder {out} is being written by another process"), r.stderr
    finally:
        holder.kill()
        holder.wait()


def test_a_second_writer_of_a_samples_file_is_refused_and_a_doubled_file_is_not_read(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    fd = hold_lock(out / "samples-base.jsonl.lock")
    try:
        with pytest.raises(SystemExit, match=r"samples-base.jsonl is being written by another process"):
            run_cli(lambda: evaluate.main(["--model", "base=toy-base", "--limit", "2", "--k", "1", "--out",
                                           str(out)]))
    finally:
        os.close(fd)
    doubled = samples_file(tmp_path / "doubled.jsonl", toy_split("test")[:3])
    doubled.write_text(doubled.read_text() + doubled.read_text().split("\n", 1)[1])
    with pytest.raises(ValueError, match=r"doubled.jsonl:5: question 'test-0' is stored twice"):
        read_samples_file(doubled)


# ---------------------------------------------------------------------------------------------- 4: changed weights


def test_changed_weights_change_the_fingerprint_and_refuse_old_samples(tmp_path):
    model = toy_copy(tmp_path)
    before = fingerprint(model)
    out = tmp_path / "res"
    evaluate.main(["--model", f"m={model}", "--limit", "2", "--k", "1", "--out", str(out), "--no-figures"])
    weights = load_file(model / "model.safetensors")
    name = sorted(weights)[-1]
    weights[name][-1] += 1.0  # one value, same file size
    size = (model / "model.safetensors").stat().st_size
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    assert (model / "model.safetensors").stat().st_size == size and fingerprint(model) != before
    with pytest.raises(SystemExit, match=r"samples-m.jsonl: the model .* changed since these samples were drawn"):
        run_cli(lambda: evaluate.main(["--model", f"m={model}", "--limit", "2", "--k", "1", "--out", str(out)]))


# ---------------------------------------------------------------------------------------------- 5: NaN


@pytest.mark.parametrize("script_name,argv", [
    ("evaluate", ["--temperature", "nan"]), ("evaluate", ["--top-p", "nan"]), ("train_rl", ["--lr", "nan"]),
    ("train_rl", ["--lr", "inf"]), ("train_distill", ["--grad-clip", "inf"]),
])
def test_nan_and_infinite_flags_are_refused(script_name, argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        __import__(script_name).main(argv + ["--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and f"argument {argv[0]}: expected a finite number" in err, err
    assert not (tmp_path / "o").exists()


def test_nan_weights_are_refused_at_load(tmp_path):
    model = toy_copy(tmp_path)
    weights = load_file(model / "model.safetensors")
    weights["model.norm.weight"][3] = float("nan")
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=r"model.safetensors: tensor 'model.norm.weight' holds NaN"):
        load_pretrained(model)


# ---------------------------------------------------------------------------------------------- 6, 8: data


def test_contradictory_answers_are_refused_naming_both_lines(tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [{"question": "What is 23 + 23?", "answer": "46"}, {"question": "What is 2 + 2?", "answer": "4"},
            {"question": "What is 23 + 23?", "answer": "47"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"d.jsonl:3: asks the question of .*d.jsonl:1 again, with answer '47' "
                                         r"where that line has '46'"):
        load_jsonl(data)
    rows[2]["answer"] = "46.0"  # the same answer, written otherwise: fine
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert len(load_jsonl(data)) == 3


def test_deeply_nested_json_is_one_line(tmp_path):
    data = tmp_path / "deep.jsonl"
    data.write_text('{"question": "1?", "answer": "1"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ValueError, match=r"deep.jsonl:2: JSON nested too deeply"):
        load_jsonl(data)
    with pytest.raises(SystemExit, match=r"deep.jsonl:2: JSON nested too deeply"):
        convert_main(["fields", str(data), str(tmp_path / "out.jsonl")])


def test_impossible_shapes_and_foreign_tokenizers_are_one_line(tmp_path):
    model = toy_copy(tmp_path)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "num_attention_heads": 0}))
    with pytest.raises(ModelLoadError, match=r"config.json: num_attention_heads must be at least 1, got 0"):
        read_config(model)
    (model / "config.json").write_text(json.dumps(config))
    foreign = HFTokenizer.from_file(str(model / "tokenizer.json"))
    foreign.add_tokens([f"<extra-{i}>" for i in range(50)])  # another model's, larger vocabulary
    foreign.save(str(model / "tokenizer.json"))
    message = f"tokenizer.json: token ids go up to {config['vocab_size'] + 49}, but config.json's vocab_size is " \
              f"{config['vocab_size']}"
    with pytest.raises(ValueError, match=message):
        Tokenizer.from_dir(model)
    r = script("evaluate.py", "--model", f"m={model}", "--limit", "1", "--k", "1", "--out", str(tmp_path / "r"))
    assert one_line_error(r, message), r.stderr[-1500:]


# ---------------------------------------------------------------------------------------------- 7: converter


def test_the_converter_never_overwrites_its_input_and_asks_before_replacing(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    before = raw.read_text()
    for extra in ([], ["--overwrite"]):
        with pytest.raises(SystemExit, match=r"raw.jsonl: is the input file"):
            convert_main(["math", str(raw), str(raw), *extra])
    assert raw.read_text() == before
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n")
    with pytest.raises(SystemExit, match=r"out.jsonl: already exists; .* --overwrite"):
        convert_main(["math", str(raw), str(out)])
    assert out.read_text() == "keep me\n"
    convert_main(["math", str(raw), str(out), "--overwrite"])
    assert json.loads(out.read_text())["answer"] == "2"


# ---------------------------------------------------------------------------------------------- 9: messages


def test_a_repeated_model_name_is_refused_before_anything_is_sampled(tmp_path):
    with pytest.raises(SystemExit, match=r"--model a=\.\.\. is given more than once"):
        run_cli(lambda: evaluate.main(["--model", "a=toy-base", "--model", "a=toy-teacher", "--limit", "1",
                                       "--k", "1", "--out", str(tmp_path / "r")]))
    assert not (tmp_path / "r").exists()


def test_a_failed_write_names_the_file_asked_for_not_its_temporary(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError) as err:
        files.atomic_write(tmp_path / "report.md", "x")
    assert err.value.filename == str(tmp_path / "report.md")
    assert files.describe_os_error(err.value) == f"no space left while writing {tmp_path / 'report.md'}; " \
                                                 "nothing finished was lost"


def test_sigterm_ends_a_run_in_one_line(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "train_rl.py", *RL, "--steps", "400", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # the config line: the script is inside its error boundary
        if line.startswith("config:"):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 1 and "Traceback" not in err, err[-1500:]
    assert err.strip().splitlines()[-1] == "terminated (SIGTERM): finished work is kept (a training run continues " \
                                           "with --resume)"
