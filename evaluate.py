"""Accuracy vs capability: sample k responses per question for each model, store them, report.

    python evaluate.py                                   # toy base vs toy teacher on the toy test set
    python evaluate.py --model base=toy-base --model rl=runs/rl/final --k 64
    python evaluate.py --model base=models/Qwen2.5-Math-1.5B --data math500.jsonl --k 256 --max-new-tokens 4000

Samples go to <out>/samples-NAME.jsonl (resumable: re-run the same command after an interruption);
the report (report.md, metrics.json, PNG figures) to <out>/. The first model is the reference whose
success counts define the difficulty bins. --analyze-only re-reports from stored samples, with the
grader their header names.
"""

import time
from dataclasses import dataclass
from pathlib import Path

from minireason.cli import config_parser, flag, run_cli
from minireason.collect import read_samples_file, sample_model
from minireason.files import releasing_locks
from minireason.checkpoint import model_hints, resolve_model_dir
from minireason.report import analyze, console_table, write_report
from minireason.sampler import SamplingParams
from minireason.tasks import is_real_data, load_questions
from minireason.tokenizer import TEMPLATES
from minireason.toy import faithful
from minireason.graders import GRADERS, get_grader


@dataclass
class EvalConfig:
    model: list[str] = flag(["base=toy-base", "teacher=toy-teacher"], "NAME=DIR; the first is the reference")
    data: str = flag("test", "'test' or 'train' (toy splits) or a JSONL file (python -m minireason.convert)")
    limit: int | None = flag(None, "use only the first N questions", low=1)
    k: int = flag(64, "samples per question", low=1)
    temperature: float = flag(0.9, "sampling temperature (paper 0.9; toy models ask for 1.0)", low=0.0)
    top_k: int = flag(50, "sampling top-k (0 = off)", low=0)
    top_p: float = flag(1.0, "nucleus sampling mass (1 = off)", low=1e-6, high=1.0)
    max_new_tokens: int = flag(1024, "response length cap (toy models ask for 160)", low=1)
    max_rows: int = flag(0, "sampler rows decoding at once (0: sized by the machine: 60%% of free GPU memory "
                         "for the KV cache, or 128 on the CPU)", low=0)
    template: str | None = flag(None, "prompt template (default: the model's own)", choices=TEMPLATES)
    grader: str = flag("auto", "auto: math-verify for JSONL data when installed, else exact", choices=GRADERS)
    seed: int = flag(0, "sampling seed")
    device: str | None = flag(None, "cuda or cpu (default: cuda when available)")
    cuda_graphs: bool = flag(True, "capture the sampler's decode step as CUDA graphs (--no-cuda-graphs: decode "
                             "eagerly, the way out if graphs misbehave; the CPU never uses them)")
    out: str = flag("results/toy", "results folder")
    analyze_only: bool = flag(False, "report from the stored samples, sample nothing")
    figures: bool = flag(True, "draw the figures (--no-figures: metrics.json and report.md only)")


def parse_model(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--model expects NAME=DIR (e.g. base=toy-base), got {spec!r}")
    return name, path


def sample_all(cfg: EvalConfig, given: dict, models: list[tuple[str, str]], grader) -> dict:
    """Each model's samples on the questions, collected (or resumed) into <out>/samples-NAME.jsonl. A model's
    hints (toy models ask for T = 1.0 and 160 new tokens) replace the defaults, never a flag given."""
    problems = load_questions(cfg.data, grader, cfg.limit)
    records = {}
    for name, path in models:
        out_file = Path(cfg.out) / f"samples-{name}.jsonl"
        sampling = {"temperature": cfg.temperature, "max_new_tokens": cfg.max_new_tokens}
        sampling.update({k: v for k, v in model_hints(resolve_model_dir(path)).items()
                         if k in sampling and k not in given})
        params = SamplingParams(n=cfg.k, top_k=cfg.top_k, top_p=cfg.top_p, seed=cfg.seed, max_rows=cfg.max_rows,
                                cuda_graph=cfg.cuda_graphs, **sampling)
        t = time.time()
        data_name = f"{cfg.data}[:{cfg.limit}]" if cfg.limit else cfg.data
        records[name] = sample_model(
            path, problems, out_file, params, data_name, cfg.template, cfg.device, grader=grader
        )
        print(f"{name}: {len(problems)} questions x {cfg.k} samples in {time.time() - t:.0f}s -> {out_file}")
    return records


@releasing_locks
def main(argv=None) -> None:
    given = vars(config_parser(EvalConfig, __doc__, run_flags=False).parse_args(argv))
    cfg = EvalConfig(**given)
    models = [parse_model(spec) for spec in cfg.model]
    if repeated := sorted({name for name, _ in models if [n for n, _ in models].count(name) > 1}):
        raise ValueError(f"--model {repeated[0]}=... is given more than once; each model needs its own name "
                         f"(its samples go to {Path(cfg.out) / f'samples-{repeated[0]}.jsonl'})")
    t0 = time.time()
    if cfg.analyze_only:
        files = {name: read_samples_file(Path(cfg.out) / f"samples-{name}.jsonl") for name, _ in models}
        grader = get_grader(next(iter(files.values()))[0].get("grader", "exact"), real_data=True)
        records = {name: recs for name, (_, recs) in files.items()}
    else:
        grader = get_grader(cfg.grader, real_data=is_real_data(cfg.data))
        records = sample_all(cfg, given, models, grader)
    metrics = analyze(records, grader=grader, faithful=faithful)  # faithful pass@k where every question is a toy one
    files = write_report(metrics, cfg.out, figures=cfg.figures)
    print(console_table(metrics))
    print(f"\nwrote {', '.join(str(f) for f in files)} ({time.time() - t0:.0f}s in all)")


if __name__ == "__main__":
    run_cli(main)
