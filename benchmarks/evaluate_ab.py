"""The real workload, A/B: evaluate.py's sampling of the whole toy test set with this sampler and with an older one.

    python benchmarks/evaluate_ab.py                     # toy-base, 600 questions x k = 8, this vs 4b74a6f, twice
    python benchmarks/evaluate_ab.py --old cc815fe --k 64 --rounds 1
    python benchmarks/evaluate_ab.py --model lab-off     # another model folder or shipped toy model

Each run is a fresh process that does what `python evaluate.py --model base=toy-base --k K --no-figures` does
for one model (collect.sample_model: blocks of questions, each block one `generate` call), with the package
of this tree or of commit --old (extracted with `git archive`: its sampler, model and collect together). Runs
alternate (new, old, new, old, ...) so that a machine busy for a while slows both. Reported per run: wall
seconds, samples/s, and the process's peak resident memory. The old sampler draws other random numbers, so
the samples differ, not their distribution. Both sides sample the same weights: this tree's model folder (an older
commit ships other toy models under the same names).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(tree: Path, k: int, out: Path, model: str) -> dict:
    """In this process: sample the toy test set with the minireason package of `tree` and measure it."""
    sys.path.insert(0, str(tree))
    from minireason import collect
    from minireason.sampler import SamplingParams
    from minireason.tasks import toy_split

    problems = toy_split("test")
    params = SamplingParams(n=k, temperature=1.0, top_k=50, max_new_tokens=160, seed=0)
    t0, before = time.time(), resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    collect.sample_model(model, problems, out, params, "test", progress=False)
    seconds = time.time() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": round(seconds, 1), "samples_per_s": round(len(problems) * k / seconds, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu_before, 1),
            "peak_mb": round(usage.ru_maxrss / 1024)}  # kilobytes on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default="4b74a6f", help="the commit whose sampler.py is the baseline")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--model", default="toy-base", help="a model folder, or a toy model this tree ships")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, help="torch threads per run (1: CPU seconds compare fairly on a busy "
                    "machine, where wall seconds do not)")
    ap.add_argument("--tree", type=Path, help=argparse.SUPPRESS)  # one measured run (a subprocess) of this tree
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.tree:
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        print(json.dumps(one_run(args.tree, args.k, args.out, args.model)))
        return
    sys.path.insert(0, str(ROOT))  # here, not at the top: a measured run must import only its own tree's package
    from minireason.checkpoint import resolve_model_dir

    model = str(resolve_model_dir(args.model).resolve())  # this tree's folder, for both sides
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        old_tree.mkdir()
        archive = subprocess.run(["git", "archive", args.old, "minireason"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
        for r in range(args.rounds):
            for which, tree in (("new", ROOT), ("old", old_tree)):
                cmd = [sys.executable, __file__, "--tree", str(tree), "--k", str(args.k), "--model", model,
                       "--out", str(Path(tmp) / f"{which}-{r}.jsonl"), *(["--threads", str(args.threads)]
                                                                         if args.threads else [])]
                done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                results.append({"sampler": which, **json.loads(done.stdout.strip().splitlines()[-1])})
                print(results[-1], flush=True)
    print(f"\ntoy test set, 600 questions x k = {args.k}, {args.model}, T = 1.0, top-k 50 (this tree vs {args.old}):")
    print("| sampler | seconds | samples/s | CPU seconds | peak memory (MB) |\n|---|---|---|---|---|")
    for row in results:
        print(f"| {row['sampler']} | {row['seconds']} | {row['samples_per_s']} | {row['cpu_s']} | {row['peak_mb']} |")
    for key, label in (("seconds", "wall"), ("cpu_s", "CPU")):
        new = sum(r[key] for r in results if r["sampler"] == "new")
        old = sum(r[key] for r in results if r["sampler"] == "old")
        print(f"speed-up of this tree over {args.old}: {old / new:.2f}x ({label} seconds, all rounds)")


if __name__ == "__main__":
    main()
