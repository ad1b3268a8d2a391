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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "study")
    ap.add_argument("--seeds", type=int, default=3, help="RL runs with seeds 0..N-1")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--train-questions", type=int, default=600, help="train-split questions evaluated for E1/E4")
    ap.add_argument("--mini", action="store_true", help="a miniature study: k=4, 2 RL steps, 16 questions")
    args = ap.parse_args()
    out, t0 = args.out, time.time()
    mini = args.mini
    rl_extra = ["--steps", "2", "--batch-questions", "4", "--group-size", "4", "--eval-every", "0"] if mini else []
    sft_extra = ["--pool", "32", "--epochs", "1", "--batch-size", "16"] if mini else []
    common = ["--final-eval-samples", "0"]
    k = 4 if mini else args.k
    limit = ["--limit", "16"] if mini else []
    train_limit = ["--limit", "16" if mini else str(args.train_questions)]

    rl = {}
    for seed in range(args.seeds):
        rl[f"rl-seed{seed}"] = out / f"rl-seed{seed}"
    rl["rl-drgrpo"] = out / "rl-drgrpo"
    rl["rl-kl"] = out / "rl-kl"
    ablation_flags = {"rl-drgrpo": ["--no-scale-std", "--aggregation", "constant"], "rl-kl": ["--beta", "0.05"]}
    for name, folder in rl.items():
        if not (folder / "final" / "model.safetensors").is_file():
            seed = name.removeprefix("rl-seed") if name.startswith("rl-seed") else "0"
            sh("train_rl.py", "--out", str(folder), "--seed", seed, *ablation_flags.get(name, []), *rl_extra, *common)
    rl_model = str(rl["rl-seed0"] / "final")

    distill = {
        "base<-base": ["--variant", "self"],
        "rl<-rl": ["--variant", "self", "--student", rl_model],
        "base<-rl": ["--variant", "rl", "--teacher", rl_model],
        "reasoning-only": ["--variant", "reasoning-only"],
        "all-questions": ["--variant", "all"],
    }
    folders = {name: out / ("distill-" + name.replace("<-", "-from-")) for name in distill}
    for name, flags in distill.items():
        if not (folders[name] / "final" / "model.safetensors").is_file():
            sh("train_distill.py", "--out", str(folders[name]), *flags, *sft_extra, *common)

    test_models = {"base": "toy-base", "teacher": "toy-teacher", **{n: str(f / "final") for n, f in rl.items()},
                   **{n: str(f / "final") for n, f in folders.items()}}
    train_models = {n: test_models[n] for n in ("base", "rl-seed0", "base<-base", "rl<-rl", "base<-rl")}
    for split, models, extra in (("test", test_models, limit), ("train", train_models, train_limit)):
        spec = [a for n, p in models.items() for a in ("--model", f"{n.replace('<-', '-from-')}={p}")]
        sh("evaluate.py", "--data", split, "--k", str(k), "--out", str(out / f"eval-{split}"), "--no-figures", *spec, *extra)
    sh("experiments/study_report.py", str(out))

    summary = {"minutes": round((time.time() - t0) / 60, 1), "k": k,
               "test": json.loads((out / "eval-test" / "metrics.json").read_text()),
               "train": json.loads((out / "eval-train" / "metrics.json").read_text())}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"study finished in {summary['minutes']} min; reports in {out}/eval-test and {out}/eval-train")


if __name__ == "__main__":
    main()
