"""The toy world: an arithmetic tutor whose reasoning noise and knowledge are separate knobs, a
character tokenizer, and from-scratch pretraining of a tiny base and teacher.

Why: the paper asks whether RL sharpens or expands what a model can do, and whether distillation
adds knowledge or only patterns. Here both are controllable properties of the data a model imitates:

- slips (noisy reasoning): any step may be written wrong, with a rate that depends on its digit
  pair (half of the pairs are "hard"), so questions within one level differ in difficulty. Later
  steps use the wrong value consistently, as a real chain of thought would.
- partial facts (rare knowledge): a few products are stated correctly only a small fraction of the time.
- hard gaps (missing knowledge): a few products are never stated correctly.
- one unscaffolded step: questions with a two-digit multiplier end with a multi-digit addition of
  the partial products written in one go, so model capacity also limits success.

Every error the tutor makes is upward (a slip adds 1 or 2, or 10 in the final addition; a gap or
partial fact is stated above its true value). Column arithmetic turns a trace's errors into
result = truth + sum_j error_j * 10^j, so a trace with any error is wrong: no slip can undo a gap,
and "never solvable" is a property of the world, not luck. (The claim lab's tutor, lab_world.py, adds
mechanisms that break this on purpose: guesses, reflections, rare long sums.)

A solution (for the question "What is 347 * 29?", the prompt, question-only):
    7*9=63,4*9=36+6=42,3*9=27+4=31:3123;7*2=14,4*2=8+1=9,3*2=6:694;3123+6940=10063 \\boxed{10063}
then the end token <|im_end|>.

`python -m minireason.toy --help` lists the knobs. `python -m minireason.toy` checks the tutor's own
success histogram (seconds), then pretrains a base on this tutor (noisy, gapped) and `toy-teacher` (clean tutor)
into runs/toy-models/ (`--out minireason/toy_models --only teacher` re-creates the shipped teacher). The shipped
`toy-base` is the claim lab's default world's base (lab_world.py's tutor, with its mechanisms on):
`python -m minireason.lab_world --only base --out minireason/toy_models` with that world's flags
(experiments/claim_lab.py's `WORLDS["on"]`) re-creates it.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers
from tqdm.auto import tqdm

from .checkpoint import save_pretrained
from .metrics import bin_counts, default_bins
from .model import ModelConfig, build_model
from .sft import sft_step
from .tasks import LEVELS, TRAIN_LEVEL_WEIGHTS, Problem, make_problem, toy_split
from .training import OptimConfig, build_optimizer
from .verifier import is_correct

PAD, BOS, EOS, UNK = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"
BOX = "\\boxed{"


# ----------------------------------------------------------------------------------------------
# Tokenizer


def build_tokenizer() -> HFTokenizer:
    """Characters as tokens (every digit its own token), plus `\\boxed{` and ChatML specials."""
    chars = list("0123456789+-*/=,.:;?!{}()\\ ") + [chr(c) for c in range(ord("a"), ord("z") + 1)] + [
        chr(c) for c in range(ord("A"), ord("Z") + 1)]
    vocab = {t: i for i, t in enumerate([PAD, BOS, EOS, UNK, BOX, "What"] + chars)}
    tok = HFTokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\\boxed\{|What|[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([PAD, BOS, EOS, UNK])
    return tok


# ----------------------------------------------------------------------------------------------
# The tutor


GAP_ERROR = 2  # a gap fact is always stated this far above its truth: nothing near the truth is ever seen


@dataclass
class Tutor:
    slip: float = 0.01  # slip rate of an easy step
    hard_slip: float = 0.25  # slip rate of a step on a hard digit pair
    hard_fraction: float = 0.35  # share of ordered digit pairs that are hard
    carry_slip: float = 0.01  # slip rate of adding a carry ("36+6=42")
    final_slip: float = 0.02  # slip rate of the final multi-digit addition
    # rare knowledge: (fact, probability that it is stated correctly)
    partial_facts: tuple[tuple[str, float], ...] = (
        ("4*7", 0.05), ("4*6", 0.08), ("3*8", 0.1), ("5*8", 0.1), ("6*7", 0.25), ("2*9", 0.3), ("3*7", 0.4))
    gap_facts: tuple[str, ...] = ("7*8", "6*9")  # never stated correctly
    world_seed: int = 0  # which digit pairs are hard

    @classmethod
    def clean(cls) -> "Tutor":
        """The teacher's tutor: no slips, no gaps, every fact known."""
        return cls(slip=0, hard_slip=0, carry_slip=0, final_slip=0, partial_facts=(), gap_facts=())

    def __post_init__(self):
        self._partial_ok = dict(self.partial_facts)
        rng = random.Random(self.world_seed)
        pairs = [(x, y) for x in range(10) for y in range(10)]
        self._hard_mul = set(rng.sample(pairs, round(self.hard_fraction * len(pairs))))
        self._hard_add = set(rng.sample(pairs, round(self.hard_fraction * len(pairs))))

    # -- one step each: the value written, never below the truth --

    def _slipped(self, value: int, rate: float, rng: random.Random, sizes=(1, 2)) -> int:
        return value + rng.choice(sizes) if rate and rng.random() < rate else value

    def _gap_value(self, true: int) -> int:
        return true + GAP_ERROR

    def _product(self, x: int, y: int, rng: random.Random) -> int:
        fact, true = f"{min(x, y)}*{max(x, y)}", x * y
        if fact in self.gap_facts:
            return self._gap_value(true)  # always the same wrong value
        if fact in self._partial_ok and rng.random() >= self._partial_ok[fact]:
            return true + rng.choice((1, 2))
        return self._slipped(true, self.hard_slip if (x, y) in self._hard_mul else self.slip, rng)

    def _final_sum(self, p1: int, p2: int, rng: random.Random) -> int:
        """The one-go addition of the partial products: only a slip can go wrong."""
        return self._slipped(p1 + p2 * 10, self.final_slip, rng, sizes=(1, 2, 10))

    def _after_step(self, lhs: str, written: int, true: int, rng: random.Random, fact: str | None = None):
        """What the trace adds after a written step, and the value later steps use: nothing, and the value as
        written. (`fact` names the knowledge the step used: a product, "sum", or None for a carry or a column
        sum; the claim lab's tutor, lab_world.LabTutor, may write a reflection here.)"""
        return "", written

    def _boxed(self, result: int, problem: Problem, rng: random.Random) -> str:
        """The box: the result the steps imply."""
        return f"{BOX}{result}}}"

    def _times_digit(self, a: int, d: int, rng: random.Random) -> tuple[list[str], int]:
        """Steps and result of a * d (d one digit), units first, carries written out."""
        steps, carry, digits = [], 0, []
        a_digits = [int(c) for c in reversed(str(a))]
        for i, x in enumerate(a_digits):
            written = self._product(x, d, rng)
            again, p = self._after_step(f"{x}*{d}", written, x * d, rng, f"{min(x, d)}*{max(x, d)}")
            step = f"{x}*{d}={written}{again}"
            if carry:
                written = self._slipped(p + carry, self.carry_slip, rng)
                again, q = self._after_step(f"{p}+{carry}", written, p + carry, rng)
                step += f"+{carry}={written}{again}"
            else:
                q = p
            steps.append(step)
            if i == len(a_digits) - 1:
                digits.append(str(q)[::-1])
            else:
                digits.append(str(q % 10))
                carry = q // 10
        return steps, int("".join(reversed("".join(digits))))

    def _work(self, problem: Problem, rng: random.Random) -> tuple[str, int]:
        """The written steps and the result they imply, right or wrong."""
        a, b, op = problem.a, problem.b, problem.op
        if a is None or b is None or op not in "+*":
            raise ValueError(f"problem {problem.id}: the tutor needs the operands (a, b, op)")
        if op == "+":
            steps, carry, digits = [], 0, []
            xs, ys = [int(c) for c in reversed(str(a))], [int(c) for c in reversed(str(b))]
            for x, y in zip(xs, ys):
                written = self._slipped(x + y + carry, self.hard_slip if (x, y) in self._hard_add else self.slip, rng)
                lhs = f"{x}+{y}+{carry}" if carry else f"{x}+{y}"
                again, s = self._after_step(lhs, written, x + y + carry, rng)
                steps.append(f"{lhs}={written}{again}")
                digits.append(s % 10)
                carry = s // 10
            return ",".join(steps), int(str(carry) + "".join(str(d) for d in reversed(digits)))
        if b < 10:
            steps, result = self._times_digit(a, b, rng)
            return ",".join(steps), result
        (steps1, p1), (steps2, p2) = (self._times_digit(a, int(d), rng) for d in reversed(str(b)))
        written = self._final_sum(p1, p2, rng)
        again, total = self._after_step(f"{p1}+{p2 * 10}", written, p1 + p2 * 10, rng, "sum")
        return ",".join(steps1) + f":{p1};" + ",".join(steps2) + f":{p2};{p1}+{p2 * 10}={written}{again}", total

    def solve(self, problem: Problem, rng: random.Random) -> str:
        """A step-by-step solution ending in \\boxed{result}: the result the steps imply, right or wrong."""
        steps, result = self._work(problem, rng)
        return steps + " " + self._boxed(result, problem, rng)

    def success_counts(self, problems: list[Problem], k: int, seed: int = 0) -> list[int]:
        """X per problem: how many of k tutor solutions are right (the imitation ceiling)."""
        rng = random.Random(seed)
        return [sum(is_correct(self.solve(p, rng), p.answer) for _ in range(k)) for p in problems]


@lru_cache(maxsize=1)
def _clean_tutor() -> Tutor:
    return Tutor.clean()


def clean_solution(problem: Problem) -> str:
    """The solution with every step right: the clean tutor's (which has no randomness) for this problem."""
    return _clean_tutor().solve(problem, random.Random(0))


def process_correct(text: str, problem: Problem) -> bool:
    """A process reward's test: every step of the trace is right, not only the boxed result. The toy trace
    format is fixed by the question, so that holds exactly when the response is the clean solution; an
    unfaithful answer (a right box over wrong steps) fails it."""
    return text.strip() == clean_solution(problem)


_QUESTION = re.compile(r"^What is (\d+) ([+*]) (\d+)\?$")


def faithful(text: str, question: str) -> bool | None:
    """Whether a response to a toy question is right at every step (`process_correct`): what faithful pass@k
    counts. None when the question is not a toy world's ("What is A + B?" or "What is A * B?")."""
    m = _QUESTION.match(question.strip())
    if m is None:
        return None
    a, op, b = int(m[1]), m[2], int(m[3])
    return process_correct(text, Problem("", question, str(a + b if op == "+" else a * b), None, [], a, b, op))


# ----------------------------------------------------------------------------------------------
# Pretraining


@dataclass
class PretrainConfig:
    steps: int = 1500
    batch_size: int = 64  # sequences per step
    micro_batch_tokens: int = 4096  # padded tokens per forward/backward
    lr: float = 2e-3
    final_lr_frac: float = 0.1  # cosine decay to lr * final_lr_frac
    warmup: int = 60
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    hidden_size: int = 192
    layers: int = 4
    heads: int = 6
    kv_heads: int = 2
    intermediate_size: int = 512
    context: int = 256  # positions; a reflecting tutor's longest traces need 384


def toy_model_config(pc: PretrainConfig, vocab_size: int) -> ModelConfig:
    return ModelConfig(
        model_type="llama", vocab_size=vocab_size, hidden_size=pc.hidden_size, intermediate_size=pc.intermediate_size,
        num_hidden_layers=pc.layers, num_attention_heads=pc.heads, num_key_value_heads=pc.kv_heads,
        head_dim=pc.hidden_size // pc.heads, rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=pc.context,
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=2, pad_token_id=0,
    )


def pretrain(tutor: Tutor, pc: PretrainConfig, out_dir: Path, name: str, progress: bool = True,
             device: str | None = None) -> dict:
    """Train a toy model from scratch on fresh tutor solutions (sft_loss on solution tokens only); save it.
    On `device` (default: cuda when available), in float32."""
    torch.manual_seed(pc.seed)
    hf_tok = build_tokenizer()
    eos = hf_tok.token_to_id(EOS)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(toy_model_config(pc, hf_tok.get_vocab_size()), device=device, seed=pc.seed).train()
    oc = OptimConfig(lr=pc.lr, betas=(0.9, 0.95), weight_decay=pc.weight_decay, warmup=pc.warmup,
                     grad_clip=pc.grad_clip, total_steps=pc.steps, final_lr_frac=pc.final_lr_frac)
    opt = build_optimizer(model, oc)
    rng = random.Random(pc.seed)
    test_questions = {p.question for p in toy_split("test")}
    log, t0, tokens_seen, ema = [], time.time(), 0, None
    bar = tqdm(range(pc.steps), desc=f"pretrain {name}", disable=not progress)
    for step in bar:
        problems = []
        while len(problems) < pc.batch_size:  # fresh questions every step, never a test question
            p = make_problem(rng.choices(LEVELS, TRAIN_LEVEL_WEIGHTS)[0], rng)
            if p.question not in test_questions:
                problems.append(p)
        prompts = [hf_tok.encode(p.question).ids for p in problems]
        solutions = [hf_tok.encode(tutor.solve(p, rng)).ids + [eos] for p in problems]
        solutions = [s[: pc.context - len(q)] for q, s in zip(prompts, solutions)]  # a rare long trace: cut it
        stats = sft_step(model, opt, oc, prompts, solutions, 0, step, pc.micro_batch_tokens)
        total = stats["loss"]
        tokens_seen += stats["tokens"]
        ema = total if ema is None else 0.95 * ema + 0.05 * total
        bar.set_postfix(loss=f"{ema:.4f}")
        if (step + 1) % 100 == 0 or step + 1 == pc.steps:
            log.append({"step": step + 1, "loss_ema": round(ema, 5), "seconds": round(time.time() - t0, 1)})
    summary = {"name": name, "steps": pc.steps, "seconds": round(time.time() - t0, 1), "loss_tokens": tokens_seen,
               "final_loss_ema": round(ema, 5), "params": model.num_params(), "log": log}
    save_toy_model(model.cpu(), hf_tok, out_dir, {"max_new_tokens": pc.context * 5 // 8, "tutor": asdict(tutor),
                                            "pretrain": asdict(pc), "summary": summary})
    return summary


def save_toy_model(model, hf_tok: HFTokenizer, out_dir: Path, provenance: dict) -> None:
    """An HF-format folder (config.json, model.safetensors, tokenizer.json, generation_config.json),
    written atomically."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    # Defaults the scripts read for this model: its prompt format, a length cap, and the temperature at
    # which a toy model reproduces its tutor's own noise (1.0; the paper's 0.9 is for real models).
    model.config.extra["minireason"] = {"prompt_template": "question", "max_new_tokens": 160, "temperature": 1.0,
                                        **provenance}
    save_pretrained(model, tmp)
    hf_tok.save(str(tmp / "tokenizer.json"))
    (tmp / "generation_config.json").write_text(json.dumps({"eos_token_id": 2, "pad_token_id": 0}, indent=2) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


# ----------------------------------------------------------------------------------------------
# Command line


def _parse_partial(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for item in filter(None, text.split(",")):
        fact, _, p = item.partition(":")
        out.append((fact.strip(), float(p)))
    return tuple(out)


def build_parser(prog: str = "python -m minireason.toy") -> argparse.ArgumentParser:
    """The tutor's knobs (flag names = Tutor's field names) and pretraining's settings."""
    d, pd = Tutor(), PretrainConfig()
    ap = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Check the toy tutor's success histogram, then pretrain toy-base (noisy, gapped tutor) and "
                    "toy-teacher (clean tutor) from scratch into --out (runs/toy-models/; the shipped models are "
                    "in minireason/toy_models/).")
    t = ap.add_argument_group("tutor knobs (the base's tutor; the teacher's tutor is clean: no slips, no gaps)")
    t.add_argument("--slip", type=float, default=d.slip, help="slip rate of a step on an easy digit pair")
    t.add_argument("--hard-slip", type=float, default=d.hard_slip, help="slip rate of a step on a hard digit pair")
    t.add_argument(
        "--hard-fraction", type=float, default=d.hard_fraction, help="share of ordered digit pairs that are hard"
    )
    t.add_argument("--carry-slip", type=float, default=d.carry_slip, help="slip rate of adding a carry")
    t.add_argument("--final-slip", type=float, default=d.final_slip, help="slip rate of the final multi-digit addition")
    t.add_argument("--partial-facts", type=_parse_partial, default=d.partial_facts,
                   help="rare knowledge: comma-separated FACT:P, each fact stated correctly with probability P")
    t.add_argument("--gap-facts", type=lambda s: tuple(filter(None, s.split(","))), default=d.gap_facts,
                   help="hard knowledge gaps: comma-separated facts never stated correctly ('' for none)")
    t.add_argument("--world-seed", type=int, default=d.world_seed, help="which digit pairs are hard")
    p = ap.add_argument_group("pretraining")
    p.add_argument("--steps", type=int, default=pd.steps, help="optimizer steps for the base")
    p.add_argument("--teacher-steps", type=int, default=1000, help="optimizer steps for the teacher")
    p.add_argument("--batch-size", type=int, default=pd.batch_size, help="sequences per step")
    p.add_argument("--lr", type=float, default=pd.lr, help="peak learning rate (cosine to 10%%)")
    p.add_argument("--seed", type=int, default=pd.seed, help="initialisation and data seed")
    p.add_argument("--hidden-size", type=int, default=pd.hidden_size, help="model width (split over 6 attention heads)")
    p.add_argument("--layers", type=int, default=pd.layers, help="transformer blocks")
    p.add_argument("--context", type=int, default=pd.context, help="positions (384 for a reflecting tutor)")
    p.add_argument("--only", choices=["base", "teacher"], help="train just one of the two models")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--out", type=Path, default=Path("runs") / "toy-models",
                   help="folder that receives toy-base/ and toy-teacher/ (to replace a shipped model, copy it into "
                        "minireason/toy_models/ or pass that folder)")
    ap.add_argument("--check-only", action="store_true", help="print the tutor's histogram and stop")
    ap.add_argument("--k", type=int, default=64, help="samples per test question for the tutor check")
    return ap


def tutor_from_args(cls, args: argparse.Namespace):
    """A tutor of class cls (Tutor, or the lab's) whose every field comes from its flag."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def tutor_check(tutor: Tutor, problems: list[Problem], k: int = 64, seed: int = 0) -> tuple[list[int], dict]:
    """The tutor's own X per problem (out of k), and its histogram over the toy bins, pass@1 and pass@k."""
    xs = tutor.success_counts(problems, k, seed)
    edges = default_bins(k)
    return xs, {"k": k, "n": len(xs), "bins": [f"{lo}-{hi}" if lo != hi else f"{lo}" for lo, hi in edges],
                "bin_counts": bin_counts(xs, edges), "pass@1": sum(xs) / (k * len(xs)),
                f"pass@{k}": sum(x > 0 for x in xs) / len(xs)}


def print_check(report: dict, seconds: float) -> None:
    k = report["k"]
    print(f"tutor check on {report['n']} test questions, k={k} ({seconds:.1f}s):")
    print("  bins " + "  ".join(f"{b}: {c}" for b, c in zip(report["bins"], report["bin_counts"])))
    print(f"  pass@1 {report['pass@1']:.3f}  pass@{k} {report[f'pass@{k}']:.3f}")


def pretrain_models(args: argparse.Namespace, tutor: Tutor) -> None:
    """toy-base on `tutor` and toy-teacher on the clean tutor (or the one --only names), into --out."""
    jobs = []
    if args.only in (None, "base"):
        jobs.append(("toy-base", tutor, args.steps))
    if args.only in (None, "teacher"):
        jobs.append(("toy-teacher", Tutor.clean(), args.teacher_steps))
    for name, tut, steps in jobs:
        pc = PretrainConfig(steps=steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            hidden_size=args.hidden_size, layers=args.layers, context=args.context)
        s = pretrain(tut, pc, args.out / name, name, device=args.device)
        print(f"{name}: {s['params']:,} parameters, {s['steps']} steps, {s['loss_tokens']:,} loss tokens, "
              f"final loss {s['final_loss_ema']:.4f}, {s['seconds'] / 60:.1f} min -> {args.out / name}")


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    tutor = tutor_from_args(Tutor, args)
    t0 = time.time()
    print_check(tutor_check(tutor, toy_split("test"), k=args.k)[1], time.time() - t0)
    if not args.check_only:
        pretrain_models(args, tutor)


if __name__ == "__main__":
    main()
