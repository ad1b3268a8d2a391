"""What a learner must read to follow one GRPO step: the project files and functions it runs through.

    python benchmarks/grpo_path.py

Runs one toy GRPO step (a rollout of 4 questions x 4 samples, then the update) under a profiler hook and
counts, among the project's own code (torch and the standard library left out): the files it enters, the
distinct named functions it calls (comprehensions and lambdas left out), and the calls that cross from one
project file into another (each distinct caller -> callee pair once). RESULTS.md quotes
these numbers.
"""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import train_rl  # noqa: E402
from minireason.grpo import GRPOConfig, rollout, update  # noqa: E402
from minireason.checkpoint import load_pretrained  # noqa: E402
from minireason.tasks import toy_split  # noqa: E402
from minireason.tokenizer import Tokenizer  # noqa: E402
from minireason.training import OptimConfig, build_optimizer  # noqa: E402


def project_file(code) -> str | None:
    """The project file a code object comes from (relative to the repository), or None for anything else."""
    if code.co_filename.startswith("<"):
        return None
    path = Path(code.co_filename).resolve()
    return str(path.relative_to(ROOT)) if ROOT in path.parents and ".venv" not in path.parts else None


def main() -> None:
    cfg = replace(train_rl.RLConfig(), group_size=4, temperature=1.0, max_new_tokens=160)
    grpo = GRPOConfig.of(cfg)
    model = load_pretrained("toy-base")
    tok = Tokenizer.from_dir(ROOT / "minireason" / "toy_models" / "toy-base")
    oc = OptimConfig(lr=1e-4, weight_decay=0.0, warmup=1, grad_clip=1.0)
    opt = build_optimizer(model, oc)
    questions = random.Random(0).sample(toy_split("train"), 4)
    files, functions, crossings = set(), set(), set()

    def hook(frame, event, arg):
        if event != "call":
            return
        here = project_file(frame.f_code)
        if here is None or "<" in frame.f_code.co_qualname:  # comprehensions and lambdas are not calls to follow
            return
        files.add(here)
        functions.add(f"{here}:{frame.f_code.co_qualname}")
        caller = frame.f_back
        while caller is not None and project_file(caller.f_code) is None:
            caller = caller.f_back  # a call through torch (a module's forward) counts from the project frame
        if caller is not None and project_file(caller.f_code) != here:
            crossings.add((f"{project_file(caller.f_code)}:{caller.f_code.co_qualname}",
                           f"{here}:{frame.f_code.co_qualname}"))

    sys.setprofile(hook)
    with torch.no_grad():
        ro = rollout(model, tok, questions, "question", grpo, seed=0)
    update(model, opt, oc, ro, grpo, 0, tok.pad_id)
    sys.setprofile(None)
    print(f"one GRPO step: {len(files)} project files, {len(functions)} functions, "
          f"{len(crossings)} calls between files")
    for f in sorted(files):
        print(f"  {f}: " + ", ".join(sorted(n.split(':', 1)[1] for n in functions if n.startswith(f + ":"))))


if __name__ == "__main__":
    main()
