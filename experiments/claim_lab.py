"""The claim lab: each of the paper's claims measured in toy worlds where its mechanism is on, and in one where it
is off.

    python experiments/claim_lab.py            # k = 256, the paper's bins
    python experiments/claim_lab.py --fast     # k = 64, a 1000-question distillation pool, stages 1-5
    python experiments/claim_lab.py --mini     # the same pipeline at toy sizes (the test suite runs it)

Kim et al. explain each claim by a mechanism. Here each mechanism is a knob of the tutor that a toy base
imitates (minireason/lab_world.py). The knobs were fixed before any RL run; `WORLDS` holds them, claims_notes.md
the reasons:
  reach (E1, E2)      --long-sum: five-digit final sums, which only the hardest level has, are rare knowledge
  faithfulness (E4)   --guess: some boxes hold an unwritten attempt's result, not the result of the steps
  reflection (E5)     --reflect / --reflect-fix: superficial reflection in "on", effective in "off"
World "on" (shared knowledge, the default world; its base is the shipped toy-base) has all three at their paper-like
settings, and states its gap facts 5 above their truth instead of 2 (a change after the lab's first run:
claims_notes.md says why). World "off" is the toy study's tutor (the earlier toy-base's), whose rare facts easy
questions share and which never guesses, with effective reflection. World "local" (knowledge locality)
is world off's tutor and base, but RL's training questions seldom need a rare fact (`LOCALITY`): the paper's §4.2
mechanism for E1 and E2, as a knob.

Stages, in order (each is skipped when done, so re-running resumes; CLAIMS.md is rewritten after each):
  1 pretrain a base per world                  python -m minireason.lab_world --only base
  2 GRPO with the outcome reward, seeds 0..2   train_rl.py (world local: on its own question list); in world on
    also with the process reward (beside the outcome runs: with --jobs no core waits for a stage's last seed)
  3 evaluate base and RL on the test set       evaluate.py, k samples  -> E1, E2, E3, E5, outcome vs process reward
  4 self-distillation Base<-Base, Base<-RL (RL seed 0 as teacher; not world local) -> E4
  5 teacher distillation, reasoning-only and all questions, world on          -> E6
  6 world on in detail (the toy study, folded in): GRPO's ablations Dr. GRPO and KL (seed 0), RL<-RL, the teacher,
    and the first 600 train questions for the E1 and E4 models            -> the page's default-world section
--fast (k = 64, every verdict labelled so) runs stages 1-5, the claims in each world; stage 6 is the full lab's.
Outputs: the one experiments page experiments/CLAIMS.md, with experiments/figures/lab/*.png (each claim, the worlds
side by side) and experiments/figures/*.png (the default world in detail; claims_report.py and world_report.py
write them), and <out>/times.json, the seconds of each stage. --fast and --mini write their page and figures under
<out> instead (default runs/lab/CLAIMS.md), so that they never replace the k = 256 lab's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from claims_report import write_claims  # noqa: E402
from evaluate import main as evaluate_main  # noqa: E402
from minireason.files import atomic_write  # noqa: E402
from minireason.lab_world import LabTutor, lab_parser, local_rl_questions  # noqa: E402
from minireason.checkpoint import TOY_MODELS_DIR, fingerprint, model_hints, resolve_model_dir  # noqa: E402
from minireason.tasks import save_jsonl, toy_split  # noqa: E402
from minireason.toy import tutor_from_args  # noqa: E402

# The tutor of each world, as `python -m minireason.lab_world` flags (fixed before any RL run;
# experiments/claims_notes.md says why).
# A reflection adds about 30 characters, so both worlds' models get 384 positions instead of 256.
REFLECT = ["--reflect", "0.3", "--context", "384"]
WORLDS = {
    "on": ["--long-sum", "0.05", "--guess", "0.3", "--guess-right", "0.5", *REFLECT, "--reflect-fix", "0.1",
           "--gap-error", "5"],
    "off": [*REFLECT, "--reflect-fix", "0.9"],
}
# Knowledge locality (E1, E2; its predictions in claims_notes.md, written before its runs): world off's
# tutor and shipped base, but RL trains on questions of which only this share of those needing a rare fact stay, so
# each rare fact is met by a handful of RL groups per run instead of ~190 (lab_world.local_rl_questions).
LOCALITY = {"local": 0.02}
WORLDS["local"] = WORLDS["off"]
MINI_RL = ["--steps", "2", "--batch-questions", "4", "--group-size", "4", "--eval-every", "0"]
ABLATIONS = {"rl-drgrpo": ["--no-scale-std", "--aggregation", "constant"], "rl-kl": ["--beta", "0.05"]}  # seed 0
TRAIN_QUESTIONS = 600  # the train subset stage 6 evaluates (--mini: 16)
MINI_SFT = ["--pool", "24", "--epochs", "1", "--batch-size", "16", "--k", "4", "--student-k", "4"]
# Rows the sampler decodes at once on the CPU, for every script the lab starts: 512, where the scripts' own default
# is 128 (decode_state.CPU_ROWS, held there for evaluation's peak memory). On toy evaluation at k = 256 it is 1.2x
# faster, at about 580 MB a process instead of 350 (benchmarks/RESULTS.md), with the same samples (a sample does not
# depend on its row count, up to float rounding). On CUDA the scripts size their rows from free memory.
CPU_ROWS = [] if torch.cuda.is_available() else ["--max-rows", "512"]


def sh(*args: str) -> None:
    print("$ python " + " ".join(args) + "\n", end="", flush=True)  # one write: with --jobs, lines stay whole
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def train(script: str, folder: Path, *flags: str) -> None:
    """Run a training script into folder: skipped when finished, resumed when started, else started."""
    if (folder / "final" / "model.safetensors").is_file():
        return
    if (folder / "config.json").is_file():
        sh(script, "--resume", str(folder))
    else:
        sh(script, "--out", str(folder), *flags, *CPU_ROWS)


@dataclass
class Lab:
    out: Path
    k: int
    seeds: int
    page: Path
    mini: bool = False
    fast: bool = False
    jobs: int = 1  # runs at a time (--jobs); each gets an equal share of the CPU cores
    pretrain: bool = False  # pretrain every base, even where the repository ships one (--pretrain)
    worlds: tuple[str, ...] = tuple(WORLDS)  # the worlds this process runs (--world: one, e.g. one per process)
    models: dict = field(default_factory=dict)  # world -> evaluated name -> folder

    def __post_init__(self):
        self.models = {w: {} for w in self.worlds}

    def base(self, world: str) -> Path:
        return self.out / world / "toy-base"

    def test_data(self) -> list[str]:
        """evaluate.py's flags for the test set (--mini: its first 16 questions)."""
        return ["--data", "test", *(["--limit", "16"] if self.mini else [])]

    def timed(self, stage: str, run) -> None:
        """Run one stage, add its seconds to <out>/times.json, then rewrite CLAIMS.md with what exists."""
        t0 = time.time()
        run(self)
        times_file, key = self.out / "times.json", f"{stage} [{', '.join(self.worlds)}]"
        times = json.loads(times_file.read_text()) if times_file.is_file() else {}
        seconds = round(times.get(key, 0) + time.time() - t0)
        if seconds:  # a stage with nothing to do for these worlds gets no entry
            times[key] = seconds
        atomic_write(times_file, json.dumps(times, indent=1) + "\n")
        write_claims(self.out, self.settings(), self.page)

    def settings(self) -> dict:
        return {"k": self.k, "seeds": self.seeds, "mini": self.mini, "fast": self.fast, "worlds": WORLDS,
                "locality": LOCALITY,
                "distillation pool": 24 if self.mini else 1000 if self.fast else 2000}


def parallel(lab: Lab, tasks: list) -> None:
    """Run independent tasks (functions that start scripts), lab.jobs at a time. With jobs > 1 each script gets
    cores / (tasks at a time) threads, and training runs show no progress bar (sampling bars interleave); with 1,
    tasks run in order."""
    if lab.jobs == 1 or not tasks:
        for task in tasks:
            task()
        return
    at_once = min(lab.jobs, len(tasks))
    os.environ.update(OMP_NUM_THREADS=str(max(1, len(os.sched_getaffinity(0)) // at_once)), TQDM_DISABLE="1")
    with ThreadPoolExecutor(at_once) as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()  # re-raises a failed run's error


def shipped_base(world: str) -> Path | None:
    """The base the repository ships for a world, if any: the default world's is toy-base, the others' lab-WORLD
    (world local shares world off's). It must have been pretrained with the world's flags: its recorded tutor and
    context are checked against WORLDS."""
    folder = TOY_MODELS_DIR / ("toy-base" if world == "on" else f"lab-{'off' if world in LOCALITY else world}")
    if not folder.is_dir():
        return None
    flags, context = lab_parser().parse_args(WORLDS[world]), model_hints(folder).get("pretrain", {}).get("context")
    if (LabTutor.from_model(str(folder)), context) != (tutor_from_args(LabTutor, flags), flags.context):
        raise SystemExit(f"{folder}: its tutor or context is not world {world}'s ({' '.join(WORLDS[world])}); "
                         "run with --pretrain, or ship a base pretrained with these flags")
    return folder


def pretrain(lab: Lab) -> None:
    """Each world's base: a copy of the one the repository ships, else pretrained on the world's tutor (--pretrain:
    pretrained even where one is shipped; --mini: a copy of the shipped toy-base stands in)."""
    tasks = []
    for world in lab.worlds:
        shipped = resolve_model_dir("toy-base") if lab.mini else None if lab.pretrain else shipped_base(world)
        if shipped and not lab.base(world).is_dir():
            shutil.copytree(shipped, lab.base(world))
        if not (lab.base(world) / "model.safetensors").is_file():
            tasks.append(lambda w=world: sh("-m", "minireason.lab_world", "--only", "base", "--out", str(lab.out / w),
                                            *WORLDS[w]))
        lab.models[world]["base"] = lab.base(world)
    parallel(lab, tasks)


def rl(lab: Lab, world: str, reward: str) -> list:
    """GRPO on the world's base with seeds 0..N-1, every other setting the toy default (train_rl.py): the tasks.
    In a locality world RL trains on the train split without most questions that need rare knowledge."""
    data = []
    if world in LOCALITY:
        data = ["--data", str(lab.out / world / "rl-train.jsonl"), "--grader", "exact"]  # a JSONL file's auto
        # grader is math-verify; the toy splits' is exact, as in the other worlds
        if not Path(data[1]).is_file():
            tutor = LabTutor.from_model(str(lab.base(world)))
            save_jsonl(local_rl_questions(toy_split("train"), tutor, LOCALITY[world]), data[1])
    prefix = "rl" if reward == "outcome" else "process"
    return [rl_run(lab, world, f"{prefix}-seed{seed}", "--seed", str(seed), "--reward", reward, *data)
            for seed in range(lab.seeds)]


def rl_run(lab: Lab, world: str, name: str, *flags: str):
    """One GRPO run on the world's base (train_rl.py's toy defaults and the flags): the task."""
    lab.models[world][name] = lab.out / world / name / "final"
    return lambda: train("train_rl.py", lab.out / world / name, "--model", str(lab.base(world)), *flags,
                         "--final-eval-samples", "0", *(MINI_RL if lab.mini else []))


def distill(lab: Lab, world: str, name: str, *flags: str, student: Path | None = None):
    """One distillation arm into the student (default: the world's base; train_distill.py's protocol; --fast halves
    the pool): the task."""
    folder = lab.out / world / f"distill-{name}"
    sizes = MINI_SFT if lab.mini else ["--pool", "1000"] if lab.fast else []
    lab.models[world][name] = folder / "final"
    return lambda: train("train_distill.py", folder, "--student", str(student or lab.base(world)), *flags,
                         "--final-eval-samples", "0", *sizes)


def evaluate_into(lab: Lab, out: Path, models: dict[str, Path], k: int, *data: str) -> None:
    """evaluate.py for the models into out (skipped when out's report already covers them; samples resume). With
    --jobs, each model the report lacks is first sampled on its own (one samples file each), then this process
    reports them all from their samples (evaluate.py --analyze-only: no process to start)."""
    metrics = out / "metrics.json"
    reported = set(json.loads(metrics.read_text())["models"]) if metrics.is_file() else set()
    if set(models) <= reported:
        return
    copied = {name for name, folder in models.items() if copy_twin_samples(lab, out / f"samples-{name}.jsonl", folder)}
    flags = [*data, "--k", str(k), "--out", str(out), "--no-figures", *CPU_ROWS]
    every_model = [a for name, folder in models.items() for a in ("--model", f"{name}={folder}")]
    if lab.jobs == 1:
        return sh("evaluate.py", *flags, *every_model)
    parallel(lab, [lambda spec=f"{n}={f}": sh("evaluate.py", *flags, "--model", spec)
                   for n, f in models.items() if n not in reported | copied])
    print("$ python evaluate.py --analyze-only " + " ".join([*flags, *every_model]) + "   # in this process",
          flush=True)
    evaluate_main([*flags, "--analyze-only", *every_model])


def copy_twin_samples(lab: Lab, samples: Path, model: Path) -> bool:
    """Worlds off and local share their base (the same shipped weights). A model whose complete samples another
    world's folder holds under the same name, from the same weights (fingerprint), gets a copy of them with its own
    path in the header instead of drawing them again (True): a sample's draws are a hash of (seed, sample number,
    token number), so they are what drawing again would give. The twin is in this lab's folder of the same name
    (e.g. eval: the test set at the lab's k), so its data and sampling settings are this one's."""
    if samples.is_file():
        return False
    model, weights = resolve_model_dir(model), None
    for twin in sorted(lab.out.glob(f"*/{samples.parent.name}/{samples.name}")):
        lines = twin.read_text().splitlines(keepends=True)
        header = json.loads(lines[0])["header"]
        complete = len(lines) - 1 == header["questions"]
        if complete and header["fingerprint"] == (weights := weights or fingerprint(model)):
            samples.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(samples, [json.dumps({"header": {**header, "model": str(model)}}) + "\n", *lines[1:]])
            print(f"# {samples}: copied from {twin} (the same weights)", flush=True)
            return True
    return False


def evaluate(lab: Lab) -> None:
    """Every model trained so far on the test set, k samples each (the base is the reference)."""
    for world, models in lab.models.items():
        evaluate_into(lab, lab.out / world / "eval", models, lab.k, *lab.test_data())


def all_rl(lab: Lab) -> None:
    """Every GRPO run at once: the outcome reward in each world, and the process reward in world on."""
    parallel(lab, [*(task for world in lab.worlds for task in rl(lab, world, "outcome")),
                   *(rl(lab, "on", "process") if "on" in lab.worlds else [])])


def self_distillation(lab: Lab) -> None:
    """E4: the base distilled from its own right answers, and from RL seed 0's (not in a locality world: its
    question is E1 and E2)."""
    parallel(lab, [task for world in lab.worlds if world not in LOCALITY for task in (
        distill(lab, world, "base-from-base", "--variant", "self"),
        distill(lab, world, "base-from-rl", "--variant", "rl", "--teacher", str(lab.models[world]["rl-seed0"])))])
    evaluate(lab)


def teacher_distillation(lab: Lab) -> None:
    """E6: the clean toy-teacher distilled on base-solvable questions only, and on all questions."""
    if "on" in lab.worlds:
        parallel(lab, [distill(lab, "on", "reasoning-only", "--variant", "reasoning-only"),
                       distill(lab, "on", "all-questions", "--variant", "all")])
        evaluate(lab)


def default_world_detail(lab: Lab) -> None:
    """World on in detail (what the toy study ran): GRPO's two one-flag ablations (seed 0), RL<-RL self-distillation
    (RL seed 0 into itself), the teacher, all on the test set; then the E1 and E4 models on a train subset. Not with
    --fast: at k = 64 the world's detail would add about as much time as the claims (benchmarks/RESULTS.md)."""
    if "on" not in lab.worlds or lab.fast:
        return
    models = lab.models["on"]
    parallel(lab, [*(rl_run(lab, "on", name, "--seed", "0", *flags) for name, flags in ABLATIONS.items()),
                   distill(lab, "on", "rl-from-rl", "--variant", "self", student=models["rl-seed0"])])
    models["teacher"] = resolve_model_dir("toy-teacher")
    evaluate(lab)
    train_models = {n: models[n] for n in ("base", *(f"rl-seed{s}" for s in range(lab.seeds)), "base-from-base",
                                           "rl-from-rl", "base-from-rl")}
    evaluate_into(lab, lab.out / "on" / "eval-train", train_models, lab.k, "--data", "train",
                  "--limit", str(16 if lab.mini else TRAIN_QUESTIONS))


STAGES = [("1 pretrain", pretrain), ("2 RL (outcome; process in world on)", all_rl), ("3 evaluate", evaluate),
          ("4 self-distillation", self_distillation), ("5 teacher distillation", teacher_distillation),
          ("6 world on in detail", default_world_detail)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "lab")
    ap.add_argument("--seeds", type=int, default=3, help="RL runs with seeds 0..N-1, per world and reward")
    ap.add_argument("--world", choices=list(WORLDS), help="run one world only")
    ap.add_argument("--jobs", type=int, default=1,
                    help="independent runs (seeds, distillation arms, models to sample) at a time, sharing the cores")
    ap.add_argument("--pretrain", action="store_true", help="pretrain each world's base even where one is shipped")
    ap.add_argument("--page", type=Path,
                    help="the results page (default: experiments/CLAIMS.md; with --fast or --mini: <out>/CLAIMS.md, "
                    "so that a k = 64 page never replaces the k = 256 one)")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--fast", action="store_true",
                      help="k = 64 and a 1000-question distillation pool; the claims only (stages 1-5)")
    size.add_argument("--mini", action="store_true",
                      help="a miniature lab: the shipped toy-base for every world, 2 RL steps, 16 questions, k = 4")
    args = ap.parse_args()
    page = args.page or (args.out / "CLAIMS.md" if args.mini or args.fast else ROOT / "experiments" / "CLAIMS.md")
    lab = Lab(args.out, k=4 if args.mini else 64 if args.fast else 256, seeds=args.seeds, page=page, mini=args.mini,
              fast=args.fast, worlds=(args.world,) if args.world else tuple(WORLDS), jobs=args.jobs,
              pretrain=args.pretrain)
    if lab.jobs < 1:
        raise SystemExit(f"--jobs {lab.jobs}: expected at least 1")
    settings_file = lab.out / "settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != lab.settings():
        raise SystemExit(f"{settings_file}: this lab folder was run with other settings; use another --out")
    lab.out.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(lab.settings(), indent=1) + "\n")
    t0 = time.time()
    for stage, run in STAGES:
        lab.timed(stage, run)
    print(f"claim lab finished in {(time.time() - t0) / 60:.0f} min; the page is {lab.page}")


if __name__ == "__main__":
    main()
