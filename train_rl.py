"""RLVR with GRPO (KL-free by default, as in the paper).

    python train_rl.py                                    # toy-base on the toy train set, minutes on 2 CPU cores
    python train_rl.py --model models/Qwen2.5-Math-1.5B --data math_train.jsonl --eval-data math500.jsonl \\
        --template question --optimizer lowmem --grad-checkpointing --max-new-tokens 1024   # paper settings, one GPU
    python train_rl.py --resume runs/rl                   # continue a run exactly where it stopped

Each step draws --batch-questions training questions, samples --group-size responses each, rewards
them with the grader (+1/-1; with `--reward process`, toy data only, +1 needs every step of the trace
right), and takes --mu optimizer steps on the GRPO loss (minireason/grpo.py).
The run folder (--out) gets config.json, log.jsonl, curves.png, checkpoints/ and final/ (runs.py).
"""

import random
import time
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from minireason.cli import flag, run_cli
from minireason.files import releasing_locks
from minireason.grpo import AGGREGATIONS, GRPOConfig, rollout, update
from minireason.checkpoint import load_pretrained
from minireason.runs import (
    HELD_OUT_SEED,
    STEP_SEED_STRIDE,
    TrainConfig,
    compare_before_after,
    finish,
    pass_at_1,
    resolve_config,
    sampling_params,
    save_checkpoint,
    start_training,
)
from minireason.decode_state import DecodeSession
from minireason.tasks import is_real_data, load_questions
from minireason.tokenizer import Tokenizer
from minireason.toy import process_correct
from minireason.training import NonFiniteError, OptimConfig


@dataclass
class RLConfig(TrainConfig):
    model: str = flag("toy-base", "model folder or shipped toy model name")
    out: str = flag("runs/rl", "run folder")
    steps: int = flag(300, "rollout steps (toy preset: 200)", low=1)
    batch_questions: int = flag(16, "questions per step (B)", low=1)
    group_size: int = flag(8, "responses per question (G)", low=2)
    clip_eps: float = flag(0.2, "PPO clip epsilon", low=0.0)
    mu: int = flag(1, "optimizer steps per rollout", low=1)
    aggregation: str = flag("token", "token (DAPO), sequence (GRPO) or constant (Dr. GRPO)", choices=AGGREGATIONS)
    scale_std: bool = flag(True, "divide advantages by the group's std (--no-scale-std: Dr. GRPO)")
    beta: float = flag(0.0, "k3 KL penalty weight to the initial model (paper: 0)", low=0.0)
    reward: str = flag("outcome", "outcome: +1 when the boxed answer is right (the paper); process (toy data only): "
                      "+1 only when every step of the trace is right", choices=("outcome", "process"))
    eval_every: int = flag(40, "held-out pass@1 every N steps (0 = never)", low=0)
    keep_decode_graphs: bool = flag(False, "keep the sampler's KV cache and CUDA graphs from one rollout to the next: "
                                    "no capture per step, but the cache stays in memory through each update (fp32 "
                                    "weights under bf16 autocast, --optimizer adamw on CUDA, keep only the cache: "
                                    "their graphs read the autocast region's weight copies)")
    eval_samples: int = flag(4, "samples per held-out question for the periodic pass@1", low=1)
    eval_questions: int = flag(300, "held-out questions for the periodic pass@1", low=1)


# The toy world's settings. Micro-batches of 4,096 tokens, not the GPU default's 16,384: on 2 CPU cores the update is
# 1.6x faster and the run's peak memory 0.79 GB instead of 1.78 GB (the activations of one micro-batch; RESULTS.md).
PRESETS = {"toy": dict(lr=2e-4, weight_decay=0.0, warmup=5, grad_clip=1.0, steps=200, micro_batch_tokens=4096),
           "paper": dict(lr=1e-6, weight_decay=0.1, warmup=20, grad_clip=0.1, steps=300)}  # the paper's (§10)


def check_data(cfg: RLConfig, train: list) -> Callable | None:
    """Refuse settings the data cannot serve; the process reward's judge, or None for the outcome reward."""
    if cfg.batch_questions > len(train):
        raise ValueError(f"--batch-questions {cfg.batch_questions} is more than the {len(train)} questions of "
                         f"{cfg.data}")
    if cfg.reward == "process" and is_real_data(cfg.data):
        raise ValueError(f"--reward process needs the toy world's parseable traces; {cfg.data} is real data")
    return process_correct if cfg.reward == "process" else None


@releasing_locks
def main(argv=None) -> None:
    cfg, ckpt = resolve_config(RLConfig, argv, "model", __doc__, PRESETS)
    grpo = GRPOConfig.of(cfg)
    oc = OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup=cfg.warmup, grad_clip=cfg.grad_clip,
                     mode=cfg.optimizer)
    run, model, optimizer, start, log = start_training(cfg, cfg.model, ckpt, oc)
    tok = Tokenizer.from_dir(run.source)
    train, held_out = load_questions(cfg.data, run.grader), load_questions(cfg.eval_data, run.grader)
    judge = check_data(cfg, train)
    eval_subset = random.Random(0).sample(held_out, min(cfg.eval_questions, len(held_out)))
    eval_params = sampling_params(cfg, cfg.eval_samples, HELD_OUT_SEED)
    ref_model = None
    if cfg.beta:  # the KL anchor: the model the run started from
        ref_model = load_pretrained(run.source, dtype=run.dtype, device=run.device).eval().requires_grad_(False)

    session = DecodeSession() if cfg.keep_decode_graphs else None
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="GRPO")
    for step in bar:
        t0 = time.time()
        step_seed = cfg.seed * STEP_SEED_STRIDE + step  # questions and samples depend only on (seed, step)
        questions = random.Random(step_seed).sample(train, cfg.batch_questions)
        with torch.no_grad(), run.autocast():
            ro = rollout(model, tok, questions, cfg.template, grpo, step_seed, run.grader, judge, session)
        try:
            row = {
                "step": step + 1,
                "questions": [q.id for q in questions],
                **update(model, optimizer, oc, ro, grpo, step, tok.pad_id, ref_model, run.autocast),
            }
        except NonFiniteError as e:
            raise run.stop(e) from None
        n_tokens = sum(len(s.token_ids) for s in ro.samples)
        row.update(rollout_s=round(ro.seconds, 3), rollout_tokens_per_s=round(n_tokens / max(ro.seconds, 1e-9), 1),
                   update_s=round(time.time() - t0 - ro.seconds, 3), lr=optimizer.param_groups[0]["lr"])
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0:
            row["held_out_pass@1"] = pass_at_1(model, tok, eval_subset, cfg.template, eval_params, run.grader)
        log.write(row)
        bar.set_postfix(reward=f"{row['reward_mean']:+.2f}", zero_var=f"{row['frac_zero_variance_groups']:.2f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_checkpoint(run.out, step + 1, model, optimizer, run.source)
    bar.close()
    finish(run, model)
    if cfg.final_eval_samples:
        compare_before_after(run, model, tok, cfg, held_out, f"{cfg.eval_data} (base -> RL)")


if __name__ == "__main__":
    run_cli(main)
