"""RLVR with GRPO (KL-free by default, as in the paper).

    python train_rl.py                                    # toy-base on the toy train set, minutes on 2 CPU cores
    python train_rl.py --model /models/Qwen2.5-Math-1.5B --data math_train.jsonl --eval-data math500.jsonl \\
        --template question --optimizer lowmem --grad-checkpointing --max-new-tokens 1024   # paper settings, one GPU
    python train_rl.py --resume runs/rl                   # continue a run exactly where it stopped

Each step draws --batch-questions training questions, samples --group-size responses each, rewards
them with the verifier (+1/-1), and takes --mu optimizer steps on the GRPO loss (minireason/grpo.py).
Logs go to <out>/log.jsonl, checkpoints (HF model folders) to <out>/checkpoints/, the trained model to
<out>/final. Defaults follow the paper for real models (lr 1e-6, betas 0.9/0.99, wd 0.1, warmup 20,
grad clip 0.1, 300 steps) and the toy world's values for toy models (lr 2e-4, wd 0, warmup 5, clip 1).
"""

import argparse
import random
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from minireason import run_cli
from minireason.collect import default_template, fingerprint, pass_at_1
from minireason.grpo import AGGREGATIONS, GRPOConfig, rollout, update
from minireason.model import load_pretrained
from minireason.tasks import load_problems
from minireason.tokenizer import Tokenizer
from minireason.training import (NonFiniteError, OptimConfig, add_training_args, begin_run, compare_before_after,
                                 load_for_training, parse_args_resumable, save_checkpoint, save_model_folder)

TOY_DEFAULTS = dict(lr=2e-4, weight_decay=0.0, warmup=5, grad_clip=1.0, steps=200)
PAPER_DEFAULTS = dict(lr=1e-6, weight_decay=0.1, warmup=20, grad_clip=0.1, steps=300)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="toy-base", help="model folder, shipped toy name, or org/name")
    ap.add_argument("--data", default="train", help="'train' (toy) or a JSONL file of question/answer")
    ap.add_argument("--out", type=Path, default=Path("runs/rl"))
    ap.add_argument("--steps", type=int, help=f"rollout steps: toy {TOY_DEFAULTS['steps']}, real {PAPER_DEFAULTS['steps']}")
    ap.add_argument("--batch-questions", type=int, default=16, help="questions per step (B)")
    ap.add_argument("--group-size", type=int, default=8, help="responses per question (G)")
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--clip-eps", type=float, default=0.2, help="PPO clip epsilon")
    ap.add_argument("--mu", type=int, default=1, help="optimizer steps per batch of rollouts")
    ap.add_argument("--aggregation", choices=AGGREGATIONS, default="token",
                    help="token (DAPO), sequence (original GRPO) or constant (Dr. GRPO)")
    ap.add_argument("--no-std-scaling", dest="scale_std", action="store_false", help="Dr. GRPO advantages r - mean")
    ap.add_argument("--beta", type=float, default=0.0, help="k3 KL penalty weight to the initial model (paper: 0)")
    ap.add_argument("--eval-every", type=int, default=40, help="held-out pass@1 every N steps (0 = never)")
    ap.add_argument("--eval-samples", type=int, default=4, help="samples per held-out question")
    ap.add_argument("--eval-questions", type=int, default=300, help="held-out questions for periodic pass@1")
    ap.add_argument("--checkpoint-every", type=int, default=40)
    add_training_args(ap, TOY_DEFAULTS, PAPER_DEFAULTS)
    return ap


def main(argv=None) -> None:
    args = parse_args_resumable(build_parser(), argv)
    run = begin_run(args, args.model, TOY_DEFAULTS, PAPER_DEFAULTS)
    args.max_new_tokens = args.max_new_tokens or run.hints.get("max_new_tokens", 1024)
    tok = Tokenizer.from_dir(run.source)
    template = args.template or default_template(run.source, tok)
    train, held_out = load_problems(args.data), load_problems(args.eval_data)
    eval_subset = random.Random(0).sample(held_out, min(args.eval_questions, len(held_out)))
    cfg = GRPOConfig(group_size=args.group_size, temperature=args.temperature, top_k=args.top_k,
                     max_new_tokens=args.max_new_tokens, clip_eps=args.clip_eps, mu=args.mu, aggregation=args.aggregation,
                     scale_std=args.scale_std, beta=args.beta, micro_batch_tokens=args.micro_batch_tokens)
    oc = OptimConfig(lr=args.lr, betas=tuple(args.betas), weight_decay=args.weight_decay, warmup=args.warmup,
                     grad_clip=args.grad_clip, mode=args.optimizer)
    settings = {"source": str(run.source), "model_fingerprint": fingerprint(run.source), "data": args.data,
                "template": template, "batch_questions": args.batch_questions, "seed": args.seed,
                **cfg.__dict__, **oc.__dict__, "betas": list(oc.betas)}
    model, opt, start, log = load_for_training(run, args, oc, settings)
    ref_model = None
    if args.beta:  # the KL anchor: the model the run started from
        ref_model = load_pretrained(run.source, dtype=run.dtype, device=run.device).eval().requires_grad_(False)

    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc="GRPO")
    for step in bar:
        t0 = time.time()
        step_seed = args.seed * 1_000_003 + step  # questions and samples depend only on (seed, step): exact resume
        questions = random.Random(step_seed).sample(train, args.batch_questions)
        with torch.no_grad(), run.autocast():
            ro = rollout(model, tok, questions, template, cfg, step_seed)
        try:
            row = {"step": step + 1, **update(model, opt, oc, ro, cfg, step, tok.pad_id, ref_model, run.autocast)}
        except NonFiniteError as e:
            raise run.stop(e) from None
        row["update_s"] = round(time.time() - t0 - ro.seconds, 3)
        row["lr"] = opt.param_groups[0]["lr"]
        if args.eval_every and (step + 1) % args.eval_every == 0:
            row["held_out_pass@1"] = pass_at_1(model, tok, eval_subset, template, args.eval_samples, args.max_new_tokens,
                                               10_000, args.temperature)
        log.write(row)
        bar.set_postfix(reward=f"{row['reward_mean']:+.2f}", zero_var=f"{row['frac_zero_variance_groups']:.2f}",
                        **({"held_out": f"{row['held_out_pass@1']:.3f}"} if "held_out_pass@1" in row else {}))
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            save_checkpoint(run.out, step + 1, model, opt, run.source, {"settings": settings})
    bar.close()

    print(f"trained model: {save_model_folder(model, run.out / 'final', run.source)}")
    if args.final_eval_samples:
        compare_before_after(run, model, tok, template, held_out, args.final_eval_samples, args.max_new_tokens,
                             args.temperature, f"{args.eval_data} (base -> RL)")


if __name__ == "__main__":
    run_cli(main)
