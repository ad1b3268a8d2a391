"""Ours against TRL on the same work, side by side: seconds a GRPO step and an SFT step, and peak memory.

    pip install trl                              # optional, like the bridge
    python benchmarks/vs_trl.py                  # toy-base on this machine: 2 rounds, alternating
    python benchmarks/vs_trl.py --device cuda --rounds 1 --json runs/vs_trl.json

The work is the toy defaults, as `train_rl.py` and `experiments/trl_bridge.py rl` run them: a GRPO step is one
rollout of 16 questions x 8 samples (up to 240 new tokens, T = 1, top-k 50) and one optimizer step on it; an SFT step
is one optimizer step on 64 kept examples (the toy training questions' clean traces), as `train_distill.py
--sft-data` and `trl_bridge.py sft` run it. TRL generates with transformers' `generate` (no vLLM).

Each measurement is a fresh process (so that peak memory is its own) that runs --grpo-steps or --sft-steps steps of
one engine through the script a user runs, and reads each step's seconds: ours from the run's log.jsonl
(rollout_s + update_s; step_s), TRL's from a callback around each optimizer step. The first step (warm-up: first
calls, allocations, CUDA graphs) is left out; the median of the rest is reported. Processes alternate (ours, TRL, ours,
TRL, ...) so that a machine busy for a while slows both. Peak memory: the process's peak resident memory on the CPU;
on CUDA, torch's peak allocated GPU memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("ours", "trl")
KINDS = ("grpo", "sft")


def write_sft_data(path: Path, n: int) -> None:
    """n kept examples: the toy training questions with their clean traces (what distillation keeps, toy world)."""
    from minireason.sft import Example, save_examples
    from minireason.tasks import toy_split
    from minireason.toy import clean_solution

    save_examples([Example(p.id, p.question, p.answer, clean_solution(p)) for p in toy_split("train")[:n]], path)


def ours_steps(kind: str, steps: int, device: str, work: Path) -> tuple[list[float], list[float]]:
    """Our script, run as a user runs it; each step's seconds (and GRPO's mean response tokens) from its log."""
    import train_distill
    import train_rl

    out = work / f"ours-{kind}"
    common = ["--final-eval-samples", "0", "--out", str(out), "--device", device]
    if kind == "grpo":
        train_rl.main(["--steps", str(steps), "--eval-every", "0", *common])
    else:
        write_sft_data(work / "sft_data.jsonl", 64 * steps)
        train_distill.main(["--sft-data", str(work / "sft_data.jsonl"), "--epochs", "1", *common])
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    if kind == "sft":
        return [r["step_s"] for r in rows], []
    return [r["rollout_s"] + r["update_s"] for r in rows], [r["response_tokens_mean"] for r in rows]


def trl_steps(kind: str, steps: int, device: str, work: Path) -> tuple[list[float], list[float]]:
    """The bridge's TRL trainer on the same flags; each optimizer step timed by a callback (and GRPO's mean
    completion tokens, EOS included as in ours, from TRL's log)."""
    sys.path.insert(0, str(ROOT / "experiments"))
    import trl_bridge
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds, self.start = [], None

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.start)

    out = work / f"trl-{kind}"
    if kind == "grpo":
        _, trainer, _ = trl_bridge.rl_trainer(["--steps", str(steps), "--out", str(out), "--device", device])
    else:
        write_sft_data(work / "sft_data.jsonl", 64 * steps)
        _, trainer, _ = trl_bridge.sft_trainer(["--sft-data", str(work / "sft_data.jsonl"), "--epochs", "1",
                                                "--out", str(out), "--device", device])
    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.train()
    lengths = [r["completions/mean_length"] for r in trainer.state.log_history if "completions/mean_length" in r]
    return timer.seconds, lengths


def measure(engine: str, kind: str, steps: int, device: str) -> dict:
    """In this process: `steps` steps of one engine; the median step after the first, and peak memory."""
    import torch

    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        seconds, lengths = (ours_steps if engine == "ours" else trl_steps)(kind, steps, device, Path(tmp))
    row = {"engine": engine, "kind": kind, "steps": len(seconds), "step_s": [round(s, 3) for s in seconds],
           "response_tokens": [round(n, 1) for n in lengths],  # GRPO: the work a step's rollout did
           "median_s": round(statistics.median(seconds[1:]), 3),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}  # kB on Linux
    if device.startswith("cuda"):
        row["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of the four measurements")
    ap.add_argument("--grpo-steps", type=int, default=5, help="GRPO steps a measurement (the first is warm-up)")
    ap.add_argument("--sft-steps", type=int, default=8, help="SFT steps a measurement (the first is warm-up)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--measure", nargs=2, metavar=("ENGINE", "KIND"), help=argparse.SUPPRESS)  # one subprocess
    args = ap.parse_args()
    if args.measure:
        engine, kind = args.measure
        steps = args.grpo_steps if kind == "grpo" else args.sft_steps
        print(json.dumps(measure(engine, kind, steps, args.device)))
        return
    try:  # refuse at once, not in every subprocess
        import datasets  # noqa: F401
        import trl  # noqa: F401
    except ImportError as e:
        sys.exit(f"vs_trl.py needs trl and datasets ({e}): pip install trl")

    rows = []
    for r in range(args.rounds):
        for kind in KINDS:
            for engine in ENGINES:
                cmd = [sys.executable, __file__, "--measure", engine, kind, "--device", args.device,
                       "--grpo-steps", str(args.grpo_steps), "--sft-steps", str(args.sft_steps)]
                done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                if done.returncode:
                    sys.exit(f"{engine} {kind} failed:\n{done.stderr[-3000:]}")
                rows.append({"round": r, **json.loads(done.stdout.strip().splitlines()[-1])})
                print(json.dumps(rows[-1]), flush=True)
    print(summary(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


def summary(rows: list[dict]) -> str:
    """A table: per kind and engine, the median step over rounds, peak memory, the GRPO rollouts' mean response
    tokens (the work a step did), and TRL's time over ours."""
    lines = ["| step | engine | s / step (median of rounds) | peak memory (MB) | response tokens | TRL / ours |",
             "|---|---|---|---|---|---|"]
    for kind in KINDS:
        mine = {e: [r for r in rows if r["kind"] == kind and r["engine"] == e] for e in ENGINES}
        med = {e: statistics.median(r["median_s"] for r in mine[e]) for e in ENGINES}
        for e in ENGINES:
            peak = max(r.get("peak_gpu_mb", r["peak_rss_mb"]) for r in mine[e])
            lengths = [n for r in mine[e] for n in r["response_tokens"]]
            tokens = f"{statistics.mean(lengths):.1f}" if lengths else "-"
            ratio = f"{med['trl'] / med['ours']:.2f}x" if e == "trl" else ""
            lines.append(f"| {kind} | {e} | {med[e]:.3f} | {peak} | {tokens} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
