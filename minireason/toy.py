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
and "never solvable" is a property of the world, not luck. Two knobs, off in the shipped models, break
this on purpose (issue 16): `guess` boxes a guess that may be right over wrong steps, and `reflect` /
`reflect_fix` re-state a wrong step after "wait, let me recalculate:", repaired or not (only slips: never a gap,
partial or long-sum fact). A third, `long_sum`, makes five-digit final sums rare knowledge.

A solution (for the question "What is 347 * 29?", the prompt, question-only):
    7*9=63,4*9=36+6=42,3*9=27+4=31:3123;7*2=14,4*2=8+1=9,3*2=6:694;3123+6940=10063 \\boxed{10063}
then the end token <|im_end|>.

`python -m minireason.toy --help` lists every knob. `python -m minireason.toy` checks the tutor's own
success histogram (seconds), then pretrains `toy-base` (noisy, gapped tutor) and `toy-teacher`
(clean tutor) into minireason/toy_models/.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers
from tqdm.auto import tqdm

from .metrics import bin_counts, default_bins
from .model import TOY_MODELS_DIR, ModelConfig, ModelLoadError, build_model, model_hints, resolve_model_dir
from .sft import sft_step
from .tasks import LEVELS, TRAIN_LEVEL_WEIGHTS, Problem, make_problem, toy_split
from .training import OptimConfig, build_optimizer
from .verifier import is_correct

PAD, BOS, EOS, UNK = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"
BOX = "\\boxed{"
KNOWLEDGE_GROUPS = ("hard-gap", "long-sum", "partial-fact", "other")
REFLECTION = "wait, let me recalculate:"  # two of the paper's reflection keywords (Table 5), in toy characters


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
    # how far above its truth a gap fact is stated, always the same value. A slip moves a column by 1 or 2, so a
    # gap error of 2 is one a slip's absence can mirror: a guess's second attempt that lacks the first attempt's
    # slip boxes 2 less than the steps, which is the truth on a gap question (issue 16: mostly how world on's
    # first base solved 22 of 74 gap questions). At 5 or more no one or two slips undo a gap.
    gap_error: int = 2
    world_seed: int = 0  # which digit pairs are hard
    # unfaithful success (issue 16, E4): with probability `guess` the box holds a guess, not the steps' result:
    # an unwritten second attempt, kept with probability `guess_right`, so right less often than written work
    guess: float = 0.0
    guess_right: float = 0.3
    # reflection (issue 16, E5): after a wrong step, with probability `reflect` the tutor writes REFLECTION and the
    # step again, repaired with probability `reflect_fix` (low: superficial reflection; high: self-correction);
    # only slips are repaired: a gap, partial or long-sum fact never is (recalculating does not teach a fact)
    reflect: float = 0.0
    reflect_fix: float = 0.0
    # reach (issue 16, E1/E2): probability that a five-digit final sum is written right (else 1, 2 or 10 above);
    # only the hardest level (3-digit x 2-digit) has five-digit sums, so no easier question teaches it
    long_sum: float = 1.0

    @staticmethod
    def clean() -> "Tutor":
        """The teacher's tutor: no slips, no gaps, every fact known."""
        return Tutor(slip=0, hard_slip=0, carry_slip=0, final_slip=0, partial_facts=(), gap_facts=())

    @staticmethod
    def from_model(model: str) -> "Tutor":
        """The tutor a toy model imitated, as its folder's config.json records it (a model name or folder)."""
        folder = resolve_model_dir(model)
        stored = model_hints(folder).get("tutor")
        if not isinstance(stored, dict):
            raise ModelLoadError(f"{folder}/config.json: no minireason.tutor (is it a toy model?)")
        stored = {**stored, "partial_facts": tuple(map(tuple, stored.get("partial_facts", ()))),
                  "gap_facts": tuple(stored.get("gap_facts", ()))}
        return Tutor(**stored)

    def __post_init__(self):
        if self.gap_error < 1:
            raise ValueError(f"gap_error={self.gap_error}: expected at least 1 (a gap fact is stated above its truth)")
        self._partial_ok = dict(self.partial_facts)
        rng = random.Random(self.world_seed)
        pairs = [(x, y) for x in range(10) for y in range(10)]
        self._hard_mul = set(rng.sample(pairs, round(self.hard_fraction * len(pairs))))
        self._hard_add = set(rng.sample(pairs, round(self.hard_fraction * len(pairs))))

    # -- one step each: the value written, never below the truth --

    def _slipped(self, value: int, rate: float, rng: random.Random, sizes=(1, 2)) -> int:
        return value + rng.choice(sizes) if rate and rng.random() < rate else value

    def _product(self, x: int, y: int, rng: random.Random) -> int:
        fact, true = f"{min(x, y)}*{max(x, y)}", x * y
        if fact in self.gap_facts:
            return true + self.gap_error  # always the same wrong value: nothing near the truth is ever seen
        if fact in self._partial_ok and rng.random() >= self._partial_ok[fact]:
            return true + rng.choice((1, 2))
        return self._slipped(true, self.hard_slip if (x, y) in self._hard_mul else self.slip, rng)

    def _knowable(self, fact: str) -> bool:
        """Whether a reflection can repair a wrong statement of this fact: a slip, yes; rare or missing knowledge,
        no (recalculating does not teach the tutor a fact it does not know)."""
        return fact not in self.gap_facts and fact not in self._partial_ok

    def _checked(self, lhs: str, written: int, true: int, rng: random.Random, knowable: bool = True):
        """After a wrong step, perhaps a reflection: (text to append, value the next steps use)."""
        if not self.reflect or written == true or rng.random() >= self.reflect:
            return "", written
        fixed = true if knowable and rng.random() < self.reflect_fix else written
        return f" {REFLECTION} {lhs}={fixed}", fixed

    def _times_digit(self, a: int, d: int, rng: random.Random) -> tuple[list[str], int]:
        """Steps and result of a * d (d one digit), units first, carries written out."""
        steps, carry, digits = [], 0, []
        a_digits = [int(c) for c in reversed(str(a))]
        for i, x in enumerate(a_digits):
            written = self._product(x, d, rng)
            fact = f"{min(x, d)}*{max(x, d)}"
            again, p = self._checked(f"{x}*{d}", written, x * d, rng, self._knowable(fact))
            step = f"{x}*{d}={written}{again}"
            if carry:
                written = self._slipped(p + carry, self.carry_slip, rng)
                again, q = self._checked(f"{p}+{carry}", written, p + carry, rng)
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

    def _boxed(self, result: int, problem: Problem, rng: random.Random) -> str:
        """The box: the result the steps imply, or (with probability `guess`) a guess: the result of a second,
        unwritten attempt, kept with probability `guess_right` (else 1, 2 or 10 above it). So a guess succeeds
        less often than written work on the same question, and never where the knowledge is missing."""
        if self.guess and rng.random() < self.guess:
            result = self._work(problem, rng)[1]
            result += 0 if rng.random() < self.guess_right else rng.choice((1, 2, 10))
        return f"{BOX}{result}}}"

    def _final_sum(self, p1: int, p2: int, rng: random.Random) -> tuple[int, bool]:
        """The one-go addition of the partial products: (value written, whether a reflection can repair it).
        A five-digit sum is rare knowledge when `long_sum` < 1; otherwise only a slip can go wrong."""
        true = p1 + p2 * 10
        if true >= 10_000 and self.long_sum < 1:
            return (true if rng.random() < self.long_sum else true + rng.choice((1, 2, 10))), False
        return self._slipped(true, self.final_slip, rng, sizes=(1, 2, 10)), True

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
                again, s = self._checked(lhs, written, x + y + carry, rng)
                steps.append(f"{lhs}={written}{again}")
                digits.append(s % 10)
                carry = s // 10
            return ",".join(steps), int(str(carry) + "".join(str(d) for d in reversed(digits)))
        if b < 10:
            steps, result = self._times_digit(a, b, rng)
            return ",".join(steps), result
        (steps1, p1), (steps2, p2) = (self._times_digit(a, int(d), rng) for d in reversed(str(b)))
        written, knowable = self._final_sum(p1, p2, rng)
        again, total = self._checked(f"{p1}+{p2 * 10}", written, p1 + p2 * 10, rng, knowable)
        return ",".join(steps1) + f":{p1};" + ",".join(steps2) + f":{p2};{p1}+{p2 * 10}={written}{again}", total

    def solve(self, problem: Problem, rng: random.Random) -> str:
        """A step-by-step solution ending in \\boxed{result}: the result the steps imply, right or wrong, unless
        the tutor guesses (`guess`)."""
        steps, result = self._work(problem, rng)
        return steps + " " + self._boxed(result, problem, rng)

    def success_counts(self, problems: list[Problem], k: int, seed: int = 0) -> list[int]:
        """X per problem: how many of k tutor solutions are right (the imitation ceiling)."""
        rng = random.Random(seed)
        return [sum(is_correct(self.solve(p, rng), p.answer) for _ in range(k)) for p in problems]


def needs_any(problem: Problem, facts) -> bool:
    return any(f in problem.facts for f in facts)


@lru_cache(maxsize=1)
def _clean_tutor() -> Tutor:
    return Tutor.clean()


def clean_solution(problem: Problem) -> str:
    """The solution with every step right: the clean tutor's (which has no randomness) for this problem."""
    return _clean_tutor().solve(problem, random.Random(0))


def process_correct(text: str, problem: Problem) -> bool:
    """A process reward's test: every step of the trace is right, not only the boxed result. The toy trace
    format is fixed by the question, so that holds exactly when the response is the clean solution; a
    guessed result (outcome-correct, unfaithful) or a reflection fails it."""
    return text.strip() == clean_solution(problem)


def needs_long_sum(problem: Problem) -> bool:
    """Whether the solution ends in a five-digit sum of partial products (3-digit x 2-digit questions only)."""
    if problem.op != "*" or problem.a is None or problem.b is None:
        return False
    return problem.b >= 10 and problem.a * problem.b >= 10_000


_ADDITION = re.compile(r"(\d+)\+(\d+)=(\d+)")


def long_sum_stated_right(text: str) -> bool | None:
    """Whether a trace's last addition is stated right, when its true sum has five digits (the knowledge that
    `long_sum` < 1 makes rare); None when the trace's last addition has fewer digits, or there is none. After a
    reflection the last addition is the recalculated one. Whether the addends themselves are right does not
    matter: this reads the addition skill alone."""
    additions = _ADDITION.findall(text)
    if not additions:
        return None
    first, second, stated = map(int, additions[-1])
    return first + second == stated if first + second >= 10_000 else None


def knowledge_group(problem: Problem, tutor: Tutor) -> str:
    """What a question needs from the tutor's knowledge: a "hard-gap" fact (never stated correctly), else a
    five-digit sum the tutor rarely gets right ("long-sum", only when `long_sum` < 1), else a "partial-fact"
    (stated correctly only sometimes), else nothing rare ("other")."""
    if needs_any(problem, tutor.gap_facts):
        return "hard-gap"
    if tutor.long_sum < 1 and needs_long_sum(problem):
        return "long-sum"
    if needs_any(problem, [f for f, _ in tutor.partial_facts]):
        return "partial-fact"
    return "other"


def tutor_report(tutor: Tutor, problems: list[Problem], k: int = 64, seed: int = 0) -> dict:
    """The tutor's own X/k histogram over the toy bins, pass@1, pass@k, and rates by knowledge needed."""
    xs = tutor.success_counts(problems, k, seed)
    edges = default_bins(k)
    groups = {
        g: [x for p, x in zip(problems, xs) if knowledge_group(p, tutor) == g]
        for g in KNOWLEDGE_GROUPS
    }
    return {
        "k": k,
        "n": len(xs),
        "bins": [f"{lo}-{hi}" if lo != hi else f"{lo}" for lo, hi in edges],
        "bin_counts": bin_counts(xs, edges),
        "pass@1": sum(xs) / (k * len(xs)),
        f"pass@{k}": sum(x > 0 for x in xs) / len(xs),
        "by_knowledge": {
            g: {
                "n": len(v),
                "pass@1": (sum(v) / (k * len(v)) if v else None),
                f"pass@{k}": (sum(x > 0 for x in v) / len(v) if v else None),
            }
            for g, v in groups.items()
        },
        "pass@1_by_level": {
            lvl: sum(x for p, x in zip(problems, xs) if p.level == lvl)
            / (k * max(1, sum(p.level == lvl for p in problems)))
            for lvl in LEVELS
        },
    }


# ----------------------------------------------------------------------------------------------
# Pretraining


@dataclass
class PretrainConfig:
    steps: int = 1500
    batch_size: int = 64  # sequences per step, split into length-sorted micro-batches
    micro_batches: int = 2
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
        seqs = sorted(
            ((hf_tok.encode(p.question).ids, hf_tok.encode(tutor.solve(p, rng)).ids + [eos]) for p in problems),
            key=lambda s: len(s[0]) + len(s[1]),
        )
        seqs = [(q, s[: pc.context - len(q)]) for q, s in seqs]  # a rare run of reflections may overflow the context
        per = math.ceil(len(seqs) / pc.micro_batches)  # length-sorted, so each micro-batch pads little
        groups = [list(range(i, min(i + per, len(seqs)))) for i in range(0, len(seqs), per)]
        stats = sft_step(model, opt, oc, [s[0] for s in seqs], [s[1] for s in seqs], groups, 0, step)
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
    model.save_pretrained(tmp)
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


def build_parser() -> argparse.ArgumentParser:
    d, pd = Tutor(), PretrainConfig()
    ap = argparse.ArgumentParser(
        prog="python -m minireason.toy",
        description="Check the toy tutor's success histogram, then pretrain toy-base (noisy, gapped tutor) and "
                    "toy-teacher (clean tutor) from scratch into minireason/toy_models/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
    t.add_argument("--gap-error", type=int, default=d.gap_error, help="how far above its truth a gap fact is stated")
    t.add_argument("--world-seed", type=int, default=d.world_seed, help="which digit pairs are hard")
    t.add_argument("--guess", type=float, default=d.guess,
                   help="unfaithful success: rate of boxing a guess instead of the steps' result")
    t.add_argument("--guess-right", type=float, default=d.guess_right, help="how often a guess is right")
    t.add_argument("--reflect", type=float, default=d.reflect, help="rate of a reflection after a wrong step")
    t.add_argument("--reflect-fix", type=float, default=d.reflect_fix, help="how often a reflection repairs the step")
    t.add_argument("--long-sum", type=float, default=d.long_sum,
                   help="reach: how often a five-digit final sum (only in 3-digit x 2-digit questions) is right")
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
    p.add_argument("--out", type=Path, default=TOY_MODELS_DIR, help="folder that receives toy-base/ and toy-teacher/")
    ap.add_argument("--check-only", action="store_true", help="print the tutor's histogram and stop")
    ap.add_argument("--k", type=int, default=64, help="samples per test question for the tutor check")
    return ap


def main(argv=None) -> None:
    a = build_parser().parse_args(argv)
    tutor = Tutor(slip=a.slip, hard_slip=a.hard_slip, hard_fraction=a.hard_fraction, carry_slip=a.carry_slip,
                  final_slip=a.final_slip, partial_facts=a.partial_facts, gap_facts=a.gap_facts,
                  gap_error=a.gap_error, world_seed=a.world_seed, guess=a.guess, guess_right=a.guess_right,
                  reflect=a.reflect, reflect_fix=a.reflect_fix, long_sum=a.long_sum)
    t0 = time.time()
    report = tutor_report(tutor, toy_split("test"), k=a.k)
    print(f"tutor check on {report['n']} test questions, k={a.k} ({time.time() - t0:.1f}s):")
    print("  bins " + "  ".join(f"{b}: {c}" for b, c in zip(report["bins"], report["bin_counts"])))
    print(f"  pass@1 {report['pass@1']:.3f}  pass@{a.k} {report[f'pass@{a.k}']:.3f}")
    for g, v in report["by_knowledge"].items():
        if v["n"]:
            print(f"  {g:13s} n={v['n']:4d}  pass@1 {v['pass@1']:.3f}  pass@{a.k} {v[f'pass@{a.k}']:.3f}")
    if a.check_only:
        return
    jobs = []
    if a.only in (None, "base"):
        jobs.append(("toy-base", tutor, a.steps))
    if a.only in (None, "teacher"):
        jobs.append(("toy-teacher", Tutor.clean(), a.teacher_steps))
    for name, tut, steps in jobs:
        pc = PretrainConfig(
            steps=steps, batch_size=a.batch_size, lr=a.lr, seed=a.seed, hidden_size=a.hidden_size, layers=a.layers,
            context=a.context)
        s = pretrain(tut, pc, a.out / name, name, device=a.device)
        print(f"{name}: {s['params']:,} parameters, {s['steps']} steps, {s['loss_tokens']:,} loss tokens, "
              f"final loss {s['final_loss_ema']:.4f}, {s['seconds'] / 60:.1f} min -> {a.out / name}")


if __name__ == "__main__":
    main()
