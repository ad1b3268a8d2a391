"""Distillation by SFT (KL-free: cross-entropy on teacher text), in the paper's four variants.

    python train_distill.py                                   # toy-teacher -> toy-base, all questions
    python train_distill.py --variant reasoning-only          # only questions the base already solves, no new facts
    python train_distill.py --variant self                    # Base <- Base (self-distillation)
    python train_distill.py --variant rl --teacher runs/rl/final            # Base <- RL
    python train_distill.py --variant self --student runs/rl/final          # RL <- RL
    python train_distill.py --sft-data pairs.jsonl --student /models/Qwen2.5-Math-1.5B   # your own (question, response) pairs

Data: the teacher is sampled --k times on --pool questions; verified-correct responses are kept, at
most --max-per-question each (self/rl: 8, teacher: 4), and written to <out>/sft_data.jsonl. Samples
are stored (and resumable) in <out>/teacher-samples.jsonl and <out>/student-samples.jsonl. Training
shares train_rl.py's optimizer, checkpoints, logs and exact resume (--resume <out>).
"""

import argparse
import random
import time
from pathlib import Path

from tqdm.auto import tqdm

from minireason import run_cli
from minireason.collect import default_template, fingerprint, model_hints, read_samples_file, sample_model
from minireason.model import resolve_model_dir
from minireason.sampler import SamplingParams
from minireason.sft import drop_traces_stating, load_examples, rejection_sample, save_examples, solvable_ids
from minireason.tasks import load_problems
from minireason.tokenizer import Tokenizer, format_prompt
from minireason.training import (NonFiniteError, OptimConfig, add_training_args, begin_run, compare_before_after,
                                 completion_loss_backward, load_for_training, micro_batches, optimizer_step,
                                 parse_args_resumable, save_checkpoint, save_model_folder)

VARIANTS = ("all", "reasoning-only", "self", "rl")
TOY_DEFAULTS = dict(lr=3e-4, weight_decay=0.0, warmup=10, grad_clip=1.0, epochs=2)
PAPER_DEFAULTS = dict(lr=1e-6, weight_decay=1e-4, warmup=25, grad_clip=0.1, epochs=3)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=VARIANTS, default="all",
                    help="all: teacher on all questions (new knowledge allowed); reasoning-only: teacher on questions "
                         "the student solves, without facts it lacks; self: the student's own responses; rl: --teacher's")
    ap.add_argument("--student", default="toy-base", help="the model to fine-tune")
    ap.add_argument("--teacher", help="model sampled for data (default: toy-teacher; the student for --variant self)")
    ap.add_argument("--sft-data", type=Path, help="a JSONL of {question, response} pairs: skip sampling and filters")
    ap.add_argument("--data", default="train", help="where pool questions come from: 'train' (toy) or a JSONL file")
    ap.add_argument("--pool", type=int, default=2000, help="number of questions to distil on (from --data)")
    ap.add_argument("--k", type=int, help="teacher samples per question (self/rl 8, teacher 4)")
    ap.add_argument("--max-per-question", type=int, help="correct responses kept per question (self/rl 8, teacher 4)")
    ap.add_argument("--student-k", type=int, default=8, help="student samples per question for the solvable filter")
    ap.add_argument("--student-samples", type=Path, help="reuse stored student samples (evaluate.py's samples-NAME.jsonl)")
    ap.add_argument("--out", type=Path, default=Path("runs/distill"))
    ap.add_argument("--epochs", type=int, help=f"passes over the kept data: toy {TOY_DEFAULTS['epochs']}, real {PAPER_DEFAULTS['epochs']}")
    ap.add_argument("--batch-size", type=int, default=64, help="sequences per optimizer step")
    ap.add_argument("--checkpoint-every", type=int, default=50)
    add_training_args(ap, TOY_DEFAULTS, PAPER_DEFAULTS)
    return ap


def build_data(args, student: Path, template: str) -> list:
    """Rejection-sampled teacher data for the chosen variant, with each filter's effect printed."""
    teacher = resolve_model_dir(args.teacher or {"self": str(student)}.get(args.variant, "toy-teacher"))
    if args.variant == "rl" and not args.teacher:
        raise SystemExit("--variant rl needs --teacher pointing at the RL-trained model (e.g. runs/rl/final)")
    pool = load_problems(args.data)
    pool = random.Random(args.seed).sample(pool, min(args.pool, len(pool)))
    if args.student_samples:  # distil only on questions whose student samples we have
        stored = {r.id for r in read_samples_file(args.student_samples)[1]}
        pool = [p for p in pool if p.id in stored]
    max_new = args.max_new_tokens or model_hints(teacher).get("max_new_tokens", 1024)
    params = SamplingParams(n=args.k, temperature=args.temperature, top_k=50, max_new_tokens=max_new, seed=args.seed)
    t = time.time()
    records = sample_model(str(teacher), pool, args.out / "teacher-samples.jsonl", params, data_name=f"{args.data}:pool{len(pool)}",
                           template=template)
    examples = rejection_sample(records, args.max_per_question)
    print(f"teacher {teacher}: {len(pool)} questions x {args.k} samples ({time.time() - t:.0f}s); "
          f"kept {len(examples)} correct responses (<= {args.max_per_question} per question) "
          f"on {len({e.id for e in examples})} questions")
    if args.variant == "reasoning-only":
        if args.student_samples:
            student_records = read_samples_file(args.student_samples)[1]
        else:
            sp = SamplingParams(n=args.student_k, temperature=args.temperature, top_k=50, max_new_tokens=max_new, seed=args.seed + 1)
            student_records = sample_model(str(student), pool, args.out / "student-samples.jsonl", sp,
                                           data_name=f"{args.data}:pool{len(pool)}", template=template)
        solvable = solvable_ids(student_records)
        before = len(examples)
        examples = [e for e in examples if e.id in solvable]
        print(f"solvable filter: the student solves {len(solvable)} of {len(pool)} questions; "
              f"removed {before - len(examples)} traces, {len(examples)} left")
        tutor = model_hints(student).get("tutor")
        if tutor:
            lacking = set(tutor.get("gap_facts", [])) | {f for f, _ in tutor.get("partial_facts", [])}
            before = len(examples)
            examples = drop_traces_stating(examples, lacking)
            print(f"knowledge filter: removed {before - len(examples)} traces stating a fact the student lacks "
                  f"({', '.join(sorted(lacking))}), {len(examples)} left")
    return examples


def main(argv=None) -> None:
    args = parse_args_resumable(build_parser(), argv)
    run = begin_run(args, args.student, TOY_DEFAULTS, PAPER_DEFAULTS)
    per_question = 8 if args.variant in ("self", "rl") else 4
    args.k = args.k or per_question
    args.max_per_question = args.max_per_question or per_question
    tok = Tokenizer.from_dir(run.source)
    template = args.template or default_template(run.source, tok)

    data_file = run.out / "sft_data.jsonl"
    if args.sft_data:
        examples = load_examples(args.sft_data)
    elif run.ckpt or data_file.is_file():
        examples = load_examples(data_file)  # a resumed run trains on exactly the data it started with
    else:
        examples = build_data(args, run.source, template)
        if not examples:
            raise SystemExit("no training examples are left after sampling and filtering: raise --pool or --k, "
                             "or use --variant all")
        save_examples(examples, data_file)
        print(f"wrote {len(examples)} examples to {data_file}")
    prompts = [tok.encode(format_prompt(e.question, template)) for e in examples]
    completions = [tok.encode(e.response) + [tok.eos_ids[0]] for e in examples]

    oc = OptimConfig(lr=args.lr, betas=tuple(args.betas), weight_decay=args.weight_decay, warmup=args.warmup,
                     grad_clip=args.grad_clip, mode=args.optimizer)
    steps_per_epoch = -(-len(examples) // args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    settings = {"source": str(run.source), "model_fingerprint": fingerprint(run.source), "variant": args.variant,
                "examples": len(examples), "template": template, "batch_size": args.batch_size, "epochs": args.epochs,
                "seed": args.seed, "micro_batch_tokens": args.micro_batch_tokens, **oc.__dict__, "betas": list(oc.betas)}
    model, opt, start, log = load_for_training(run, args, oc, settings)

    bar = tqdm(range(start, total_steps), initial=start, total=total_steps, desc="SFT")
    for step in bar:
        t0 = time.time()
        epoch, offset = divmod(step, steps_per_epoch)
        order = list(range(len(examples)))
        random.Random(args.seed * 1_000_003 + epoch).shuffle(order)  # the batch depends only on (seed, step)
        batch = order[offset * args.batch_size : (offset + 1) * args.batch_size]
        p, c = [prompts[i] for i in batch], [completions[i] for i in batch]
        groups = micro_batches([len(a) + len(b) for a, b in zip(p, c)], args.micro_batch_tokens)
        try:
            loss = completion_loss_backward(model, p, c, groups, tok.pad_id, run.autocast)
            grad_norm = optimizer_step(model, opt, oc, step)
        except NonFiniteError as e:
            raise run.stop(e) from None
        n_tokens = sum(len(x) for x in c)
        log.write({"step": step + 1, "epoch": epoch, "loss": loss, "grad_norm": grad_norm, "lr": opt.param_groups[0]["lr"],
                   "tokens": n_tokens, "tokens_per_s": round(n_tokens / (time.time() - t0), 1)})
        bar.set_postfix(loss=f"{loss:.4f}")
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == total_steps:
            save_checkpoint(run.out, step + 1, model, opt, run.source, {"settings": settings})
    bar.close()

    print(f"distilled model: {save_model_folder(model, run.out / 'final', run.source)}")
    if args.final_eval_samples:
        max_new = args.max_new_tokens or run.hints.get("max_new_tokens", 1024)
        compare_before_after(run, model, tok, template, load_problems(args.eval_data), args.final_eval_samples, max_new,
                             args.temperature, f"{args.eval_data} (student -> distilled)")


if __name__ == "__main__":
    run_cli(main)
