"""The paper's six experiments in the toy world, from one command.

    python experiments/toy_study.py                 # the whole study (about 2 hours on 2 CPU cores)
    python experiments/toy_study.py --mini          # a miniature (tiny k, few steps) that checks the plumbing

Runs, in order (every step is skipped when its output already exists, so re-running resumes):
  RL      train_rl.py with --seeds seeds; ablations: Dr. GRPO (no std scaling, constant normaliser) and KL on
  distill Base<-Base, RL<-RL, Base<-RL (self-distillation test, E4); teacher reasoning-only and all questions (E6)
  eval    evaluate.py on the test set (every model) and on a train subset (E1/E4 models), k = 64, base as reference
then experiments/study_report.py draws one figure per experiment into <out>/figures and writes
<out>/tables.md, and <out>/summary.json keeps every number the write-up in experiments/RESULTS.md uses.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sh(*args: str) -> None:
    print("$ python " + " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def train(script: str, folder: Path, *flags: str) -> None:
    """Run a training script into folder: skipped when finished, resumed when started, else started."""
    if (folder / "final" / "model.safetensors").is_file():
        return
    if (folder / "config.json").is_file():
        sh(script, "--resume", str(folder))
    else:
        sh(script, "--out", str(folder), *flags)


def rl_runs(args, out: Path) -> dict[str, Path]:
    """GRPO over seeds 0..N-1, plus the Dr. GRPO and KL ablations (seed 0)."""
    rl_extra = ["--steps", "2", "--batch-questions", "4", "--group-size", "4", "--eval-every", "0"] if args.mini else []
    flags = {f"rl-seed{s}": ["--seed", str(s)] for s in range(args.seeds)}
    flags["rl-drgrpo"] = ["--no-scale-std", "--aggregation", "constant"]
    flags["rl-kl"] = ["--beta", "0.05"]
    for name, extra in flags.items():
        train("train_rl.py", out / name, *extra, *rl_extra, "--final-eval-samples", "0")
    return {name: out / name for name in flags}


def distill_runs(args, out: Path, rl_model: str) -> dict[str, Path]:
    """Self-distillation (E4) and teacher distillation (E6) arms."""
    sft_extra = ["--pool", "32", "--epochs", "1", "--batch-size", "16", "--k", "4", "--student-k", "4"]
    sft_extra = sft_extra if args.mini else []
    distill = {
        "base<-base": ["--variant", "self"],
        "rl<-rl": ["--variant", "self", "--student", rl_model],
        "base<-rl": ["--variant", "rl", "--teacher", rl_model],
        "reasoning-only": ["--variant", "reasoning-only"],
        "all-questions": ["--variant", "all"],
    }
    folders = {name: out / ("distill-" + name.replace("<-", "-from-")) for name in distill}
    for name, flags in distill.items():
        train("train_distill.py", folders[name], *flags, *sft_extra, "--final-eval-samples", "0")
    return folders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "study")
    ap.add_argument("--seeds", type=int, default=3, help="RL runs with seeds 0..N-1")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--train-questions", type=int, default=600, help="train-split questions evaluated for E1/E4")
    ap.add_argument("--mini", action="store_true", help="a miniature study: k=4, 2 RL steps, 16 questions")
    args = ap.parse_args()
    out, t0 = args.out, time.time()
    rl = rl_runs(args, out)
    folders = distill_runs(args, out, str(rl["rl-seed0"] / "final"))
    test_models = {"base": "toy-base", "teacher": "toy-teacher", **{n: str(f / "final") for n, f in rl.items()},
                   **{n: str(f / "final") for n, f in folders.items()}}
    train_models = {n: test_models[n] for n in ("base", "rl-seed0", "base<-base", "rl<-rl", "base<-rl")}
    k = 4 if args.mini else args.k
    limits = {"test": ["--limit", "16"] if args.mini else [],
              "train": ["--limit", "16" if args.mini else str(args.train_questions)]}
    for split, models in (("test", test_models), ("train", train_models)):
        spec = [a for n, p in models.items() for a in ("--model", f"{n.replace('<-', '-from-')}={p}")]
        sh("evaluate.py", "--data", split, "--k", str(k), "--out", str(out / f"eval-{split}"), "--no-figures",
           *spec, *limits[split])
    sh("experiments/study_report.py", str(out))

    summary = {"minutes": round((time.time() - t0) / 60, 1), "k": k,
               "test": json.loads((out / "eval-test" / "metrics.json").read_text()),
               "train": json.loads((out / "eval-train" / "metrics.json").read_text())}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"study finished in {summary['minutes']} min; reports in {out}/eval-test and {out}/eval-train")


if __name__ == "__main__":
    main()
