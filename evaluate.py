"""Accuracy vs capability: sample k responses per question for each model, store them, report.

    python evaluate.py                                   # toy base vs toy teacher on the toy test set
    python evaluate.py --model base=toy-base --model rl=runs/rl/final --k 64
    python evaluate.py --model base=/models/Qwen2.5-Math-1.5B --data math500.jsonl --k 256 --max-new-tokens 4000

Samples go to <out>/samples-NAME.jsonl (resumable: re-run the same command after an interruption);
the report (report.md, metrics.json, PNG figures) to <out>/. The first model is the reference whose
success counts define the difficulty bins. --analyze-only re-reports from stored samples.
"""

import argparse
import time
from pathlib import Path

from minireason import run_cli
from minireason.collect import model_hints, read_samples_file, sample_model
from minireason.model import resolve_model_dir
from minireason.report import analyze, console_table, write_report
from minireason.sampler import SamplingParams
from minireason.tasks import load_problems
from minireason.tokenizer import TEMPLATES


def parse_model(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--model expects NAME=DIR (e.g. base=toy-base), got {spec!r}")
    return name, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=parse_model, action="append",
                    help="NAME=DIR, repeatable; the first is the reference (default: base=toy-base teacher=toy-teacher)")
    ap.add_argument("--data", default="test", help="'test' or 'train' (toy splits) or a JSONL file")
    ap.add_argument("--limit", type=int, help="use only the first N questions")
    ap.add_argument("--k", type=int, default=64, help="samples per question")
    ap.add_argument("--temperature", type=float, help="default: the model's hint (toy 1.0), else 0.9 (the paper)")
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--max-new-tokens", type=int, help="default: the model's hint (toy: 160), else 1024")
    ap.add_argument("--template", choices=TEMPLATES, help="prompt template (default: the model's own)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--out", type=Path, default=Path("results/toy"), help="results folder")
    ap.add_argument("--analyze-only", action="store_true", help="report from the stored samples, sample nothing")
    ap.add_argument("--no-figures", action="store_true", help="metrics.json and report.md only (the toy study draws its own)")
    args = ap.parse_args()
    models = args.model or [("base", "toy-base"), ("teacher", "toy-teacher")]

    t0 = time.time()
    problems = load_problems(args.data)[: args.limit]
    records = {}
    for name, path in models:
        out_file = args.out / f"samples-{name}.jsonl"
        if args.analyze_only:
            records[name] = read_samples_file(out_file)[1]
            continue
        hints = model_hints(resolve_model_dir(path))
        max_new = args.max_new_tokens or hints.get("max_new_tokens", 1024)
        temperature = args.temperature if args.temperature is not None else hints.get("temperature", 0.9)
        params = SamplingParams(n=args.k, temperature=temperature, top_k=args.top_k, top_p=args.top_p,
                                max_new_tokens=max_new, seed=args.seed)
        t = time.time()
        records[name] = sample_model(path, problems, out_file, params, data_name=f"{args.data}[:{args.limit}]" if args.limit else args.data,
                                     template=args.template, device=args.device)
        print(f"{name}: {len(problems)} questions x {args.k} samples in {time.time() - t:.0f}s -> {out_file}")
    metrics = analyze(records)
    files = write_report(metrics, args.out, figures=not args.no_figures)
    print(console_table(metrics))
    print(f"\nwrote {', '.join(str(f) for f in files)} ({time.time() - t0:.0f}s in all)")


if __name__ == "__main__":
    run_cli(main)
