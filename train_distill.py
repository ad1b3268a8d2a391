"""Distillation by SFT (KL-free: cross-entropy on teacher text), in the paper's four variants.

    python train_distill.py                                   # toy-teacher -> toy-base, all questions
    python train_distill.py --variant reasoning-only          # only questions the base already solves, no new facts
    python train_distill.py --variant self                    # Base <- Base (self-distillation)
    python train_distill.py --variant rl --teacher runs/rl/final            # Base <- RL
    python train_distill.py --variant self --student runs/rl/final          # RL <- RL
    python train_distill.py --sft-data pairs.jsonl --student models/Qwen2.5-Math-1.5B   # your own pairs

Data follows the paper's rejection-sampling protocol (sft.protocol): the teacher is sampled --k times on
--pool questions, verified-correct responses that ended with EOS are kept, at most --max-per-question
each, and written to <out>/sft_data.jsonl. Real models: self/rl draw 256 and keep up to 8; a teacher
draws 8 and keeps the correct ones; the reasoning-only filter keeps questions the student solves at least
once in 256. Samples are stored (and resumable) in <out>/teacher-samples.jsonl and student-samples.jsonl,
or reused from evaluate.py's files (--teacher-samples, --student-samples). Training shares train_rl.py's
optimizer, checkpoints, logs and exact resume (--resume <out>).
"""

import random
import time
from dataclasses import dataclass

from tqdm.auto import tqdm

from minireason.cli import flag, run_cli
from minireason.collect import read_samples_file, sample_model
from minireason.files import releasing_locks
from minireason.lab_world import knowledge_filter
from minireason.runs import (STEP_SEED_STRIDE, Run, TrainConfig, compare_before_after, finish, resolve_config,
                             sampling_params, save_checkpoint, start_training)
from minireason.sft import load_examples, protocol, rejection_sample, save_examples, sft_step, solvable_ids
from minireason.tasks import load_questions
from minireason.tokenizer import Tokenizer, format_prompt
from minireason.training import NonFiniteError, OptimConfig

VARIANTS = ("all", "reasoning-only", "self", "rl")


@dataclass
class DistillConfig(TrainConfig):
    variant: str = flag("all", "all: a teacher on every question (new knowledge allowed); reasoning-only: only on "
                       "questions the student solves, without facts it lacks; self: the student's own responses; "
                       "rl: --teacher's (an RL model's)", choices=VARIANTS)
    student: str = flag("toy-base", "the model to fine-tune")
    teacher: str | None = flag(None, "the model sampled for data (toy: toy-teacher; self: the student)")
    sft_data: str | None = flag(None, "a JSONL of {question, response} pairs: skip sampling and filters")
    pool: int = flag(2000, "questions to distil on (from --data)", low=1)
    k: int | None = flag(None, "teacher samples per question (protocol: self/rl 256, teacher 8; toy 64 / 8)", low=1)
    max_per_question: int | None = flag(None, "correct responses kept per question (protocol: 8; toy teacher 4)", low=1)
    student_k: int | None = flag(None, "student samples per question for the solvable filter (256; toy 64)", low=1)
    teacher_samples: str | None = flag(None, "reuse stored teacher samples (evaluate.py's samples-NAME.jsonl)")
    student_samples: str | None = flag(None, "reuse stored student samples (evaluate.py's samples-NAME.jsonl)")
    out: str = flag("runs/distill", "run folder")
    epochs: int = flag(3, "passes over the kept data (toy preset: 2)", low=1)
    batch_size: int = flag(64, "sequences per optimizer step", low=1)


PRESETS = {"toy": dict(lr=3e-4, weight_decay=0.0, warmup=10, grad_clip=1.0, epochs=2),  # the toy world's settings
           "paper": dict(lr=1e-6, weight_decay=1e-4, warmup=25, grad_clip=0.1, epochs=3)}  # the paper's (§10.3)


def derived(given: dict, toy: bool) -> dict:
    """What the variant decides: the protocol's k and caps, and the model sampled for data."""
    variant = given.get("variant", "all")
    teacher = {"self": given.get("student", "toy-base"), "rl": None}.get(variant, "toy-teacher" if toy else None)
    return {**protocol(variant, toy), "teacher": teacher}


def stored_records(path: str, flag: str, cfg: DistillConfig, data: list) -> list:
    """Stored samples to reuse (evaluate.py's samples-NAME.jsonl), refused when any of their questions is not one
    of --data's: distilling on them would train on questions outside the training pool (a test set, say)."""
    header, records = read_samples_file(path)
    known = {(p.id, p.question, p.answer) for p in data}
    outside = [r for r in records if (r.id, r.question, r.answer) not in known]
    if outside:
        raise ValueError(f"{flag} {path}: {len(outside)} of {len(records)} stored questions (e.g. {outside[0].id!r}) "
                         f"are not questions of --data {cfg.data}; these samples are of {header.get('data')!r}, and "
                         "distilling on them would train on questions outside the training pool")
    return records


def teacher_records(cfg: DistillConfig, run: Run, pool: list, stored: dict):
    """The teacher's samples on the pool: stored ones (--teacher-samples) or freshly sampled (resumable)."""
    if cfg.teacher_samples:
        return [r for r in stored[cfg.teacher_samples] if r.id in {p.id for p in pool}]
    if not cfg.teacher:
        raise ValueError(f"--variant {cfg.variant} needs --teacher (e.g. runs/rl/final for --variant rl)")
    return sample_model(cfg.teacher, pool, run.out / "teacher-samples.jsonl", sampling_params(cfg, cfg.k, cfg.seed),
                        f"{cfg.data}:pool{len(pool)}", cfg.template, cfg.device, grader=run.grader)


def reasoning_only(cfg: DistillConfig, run: Run, pool: list, examples: list, stored: dict) -> list:
    """The paper's reasoning-only filters: questions the student solves (X >= 1 of student_k), and (toy
    world) no trace stating a fact the student's tutor lacks."""
    if cfg.student_samples:
        student = [r for r in stored[cfg.student_samples] if r.id in {p.id for p in pool}]
    else:
        params = sampling_params(cfg, cfg.student_k, cfg.seed + 1)
        student = sample_model(str(run.source), pool, run.out / "student-samples.jsonl", params,
                               f"{cfg.data}:pool{len(pool)}", cfg.template, cfg.device, grader=run.grader)
    solvable = solvable_ids(student)
    kept = [e for e in examples if e.id in solvable]
    print(f"solvable filter: the student solves {len(solvable)} of {len(student)} questions "
          f"(X >= 1 of {len(student[0].samples) if student else 0}); removed {len(examples) - len(kept)} traces")
    return knowledge_filter(kept, pool, run.source)  # a toy student: no trace stating knowledge it lacks


def build_data(cfg: DistillConfig, run: Run) -> list:
    """Rejection-sampled teacher data for the chosen variant, with each filter's effect printed."""
    data = load_questions(cfg.data, run.grader)
    pool = random.Random(cfg.seed).sample(data, min(cfg.pool, len(data)))
    stored = {f: stored_records(f, option, cfg, data) for option, f in
              (("--teacher-samples", cfg.teacher_samples), ("--student-samples", cfg.student_samples)) if f}
    for records in stored.values():  # distil only on questions whose stored samples we have
        ids = {r.id for r in records}
        pool = [p for p in pool if p.id in ids]
    t = time.time()
    records = teacher_records(cfg, run, pool, stored)
    examples = rejection_sample(records, cfg.max_per_question)
    print(f"teacher: {len(records)} questions x {len(records[0].samples) if records else 0} samples "
          f"({time.time() - t:.0f}s); kept {len(examples)} correct responses that ended with EOS "
          f"(<= {cfg.max_per_question} per question) on {len({e.id for e in examples})} questions")
    if cfg.variant == "reasoning-only":
        examples = reasoning_only(cfg, run, pool, examples, stored)
    if not examples:
        raise ValueError("no training examples are left after sampling and filtering: raise --pool or --k, "
                         "or use --variant all")
    return examples


def training_data(cfg: DistillConfig, run: Run) -> list:
    """--sft-data, or the run's own sft_data.jsonl (a resumed run trains on exactly the data it started with:
    a fresh run starts in an empty folder), or new data built and saved there."""
    data_file = run.out / "sft_data.jsonl"
    if cfg.sft_data:
        return load_examples(cfg.sft_data)
    if data_file.is_file():
        return load_examples(data_file)
    examples = build_data(cfg, run)
    save_examples(examples, data_file)
    print(f"wrote {len(examples)} examples to {data_file}")
    return examples


@releasing_locks
def main(argv=None) -> None:
    cfg, ckpt = resolve_config(DistillConfig, argv, "student", __doc__, PRESETS, derived)
    oc = OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup=cfg.warmup, grad_clip=cfg.grad_clip,
                     mode=cfg.optimizer)
    run, model, optimizer, start, log = start_training(cfg, cfg.student, ckpt, oc)
    examples = training_data(cfg, run)
    tok = Tokenizer.from_dir(run.source)
    prompts = [tok.encode(format_prompt(e.question, cfg.template)) for e in examples]
    completions = [tok.encode(e.response) + [tok.eos_ids[0]] for e in examples]
    steps_per_epoch = -(-len(examples) // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs

    bar = tqdm(range(start, total_steps), initial=start, total=total_steps, desc="SFT")
    for step in bar:
        t0 = time.time()
        epoch, offset = divmod(step, steps_per_epoch)
        order = list(range(len(examples)))
        random.Random(cfg.seed * STEP_SEED_STRIDE + epoch).shuffle(order)  # the batch depends only on (seed, step)
        batch = order[offset * cfg.batch_size : (offset + 1) * cfg.batch_size]
        try:
            stats = sft_step(model, optimizer, oc, [prompts[i] for i in batch], [completions[i] for i in batch],
                             tok.pad_id, step, cfg.micro_batch_tokens, run.autocast)
        except NonFiniteError as e:
            raise run.stop(e) from None
        seconds = time.time() - t0
        log.write({"step": step + 1, "epoch": epoch, "loss": stats["loss"], "grad_norm": stats["grad_norm"],
                   "lr": optimizer.param_groups[0]["lr"], "tokens": stats["tokens"], "step_s": round(seconds, 3),
                   "tokens_per_s": round(stats["tokens"] / seconds, 1)})
        bar.set_postfix(loss=f"{stats['loss']:.4f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == total_steps:
            save_checkpoint(run.out, step + 1, model, optimizer, run.source)
    bar.close()
    finish(run, model)
    if cfg.final_eval_samples:
        compare_before_after(run, model, tok, cfg, load_questions(cfg.eval_data, run.grader),
                             f"{cfg.eval_data} (student -> distilled)")


if __name__ == "__main__":
    run_cli(main)
