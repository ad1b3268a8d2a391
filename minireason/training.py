"""What RL, distillation and toy pretraining share: batching, token log-probs, the optimizer and its
schedule, checkpoints with exact resume, and the run log.

Sequences are right-padded (the prompt first, then the completion), so plain causal attention is
exact for every real token and no attention mask is needed in training.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .model import Transformer


def pad_right(seqs: list[list[int]], pad_id: int, device=None) -> torch.Tensor:
    """(B, T) tensor of the sequences, right-padded with pad_id."""
    T = max(len(s) for s in seqs)
    out = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out.to(device) if device is not None else out


def completion_batch(prompts: list[list[int]], completions: list[list[int]], pad_id: int, device=None):
    """ids (B, T) of prompt+completion, and loss_mask (B, T-1): 1 where token t+1 is a completion token."""
    ids = pad_right([p + c for p, c in zip(prompts, completions)], pad_id, device)
    mask = torch.zeros(ids.shape[0], ids.shape[1] - 1, device=ids.device)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        mask[i, len(p) - 1 : len(p) - 1 + len(c)] = 1.0
    return ids, mask


def token_logprobs(model: Transformer, ids: torch.Tensor) -> torch.Tensor:
    """log pi(ids[:, t+1] | ids[:, :t+1]) for every position: (B, T-1), in fp32."""
    logits = model(ids[:, :-1]).float()
    return -F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")


def lr_at(step: int, lr: float, warmup: int, total: int | None = None, final_frac: float = 1.0) -> float:
    """Linear warmup over `warmup` steps, then constant (total None) or cosine decay to final_frac * lr."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if total is None or final_frac == 1.0:
        return lr
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def completion_loss_backward(model: Transformer, prompts: list[list[int]], completions: list[list[int]],
                             groups: list[list[int]], pad_id: int, autocast=contextlib.nullcontext) -> float:
    """Backpropagate the mean cross-entropy over all completion tokens, one micro-batch (group of row
    indices) at a time: L = -sum log p(completion token) / (completion tokens in the whole batch).
    Returns L; raises NonFiniteError on a NaN/inf loss."""
    device = next(model.parameters()).device
    n_tokens = sum(len(c) for c in completions)
    total = 0.0
    for group in groups:
        ids, mask = completion_batch([prompts[i] for i in group], [completions[i] for i in group], pad_id, device)
        with autocast():
            loss = -(token_logprobs(model, ids) * mask).sum() / n_tokens
        if not torch.isfinite(loss):
            raise NonFiniteError(f"non-finite loss ({loss.item()})")
        loss.backward()
        total += loss.item()
    return total


def token_logprobs_and_entropy(model: Transformer, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """As `token_logprobs`, plus the policy's entropy at each position (no grad), for logging."""
    logits = model(ids[:, :-1]).float()
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, ids[:, 1:, None]).squeeze(-1)
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def micro_batches(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Split row indices into groups whose padded size (rows x longest row) stays within max_tokens.

    Rows are taken longest first, so each group pads little. A row longer than max_tokens gets a group of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= max_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


# ----------------------------------------------------------------------------------------------
# Optimizer


@dataclass
class OptimConfig:
    lr: float
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.1
    warmup: int = 20
    grad_clip: float = 0.1
    mode: str = "adamw"  # "adamw" (fp32 weights and state) or "lowmem" (bf16 weights, see LowMemAdamW)
    total_steps: int | None = None  # with final_lr_frac < 1: cosine decay over total_steps
    final_lr_frac: float = 1.0


class LowMemAdamW(torch.optim.Optimizer):
    """AdamW for bf16 weights: an fp32 master copy of each weight and bf16 moments.

    12 bytes per parameter (bf16 weight + bf16 grad + fp32 master + 2 x bf16 moments) instead of 16
    for fp32 training, so Qwen2.5-1.5B's optimizer and weights need about 18.5 GB. The master copy keeps
    small updates (lr 1e-6) that bf16 weights alone would round away.
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        w = w (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.99), weight_decay: float = 0.0, eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            (b1, b2), lr, wd, eps = group["betas"], group["lr"], group["weight_decay"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = torch.zeros((), dtype=torch.float32)
                    st["master"] = p.detach().float().clone()
                    st["exp_avg"] = torch.zeros_like(p, dtype=torch.bfloat16)
                    st["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.bfloat16)
                st["step"] += 1
                t = st["step"].item()
                g = p.grad.float()
                m = st["exp_avg"].float().mul_(b1).add_(g, alpha=1 - b1)
                v = st["exp_avg_sq"].float().mul_(b2).addcmul_(g, g, value=1 - b2)
                st["exp_avg"].copy_(m)
                st["exp_avg_sq"].copy_(v)
                master = st["master"]
                master.mul_(1 - lr * wd)
                master.addcdiv_(m, (v / (1 - b2**t)).sqrt_().add_(eps), value=-lr / (1 - b1**t))
                p.copy_(master)


def build_optimizer(model: Transformer, oc: OptimConfig) -> torch.optim.Optimizer:
    """AdamW (decay on matrices only), or LowMemAdamW for bf16 weights."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": oc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if oc.mode == "lowmem":
        return LowMemAdamW(groups, lr=oc.lr, betas=oc.betas)
    if oc.mode != "adamw":
        raise ValueError(f"unknown optimizer mode {oc.mode!r}; expected 'adamw' or 'lowmem'")
    return torch.optim.AdamW(groups, lr=oc.lr, betas=oc.betas)


def optimizer_step(model: Transformer, opt: torch.optim.Optimizer, oc: OptimConfig, step: int) -> float:
    """Clip, check, step, zero. Returns the pre-clip gradient norm; raises on a non-finite gradient."""
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), oc.grad_clip).item()
    if not math.isfinite(grad_norm):
        opt.zero_grad(set_to_none=True)
        raise NonFiniteError(f"non-finite gradient norm ({grad_norm}) at step {step}")
    for g in opt.param_groups:
        g["lr"] = lr_at(step, oc.lr, oc.warmup, oc.total_steps, oc.final_lr_frac)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return grad_norm


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN/inf: the run stops, its last checkpoint stays as it was."""


# ----------------------------------------------------------------------------------------------
# Runs: checkpoints, resume, logs
#
# runs/NAME/args.json                 the run's settings
# runs/NAME/log.jsonl                 one line per step
# runs/NAME/checkpoints/step-000100/  an HF model folder (config, weights, tokenizer) + trainer_state.pt/.json
# A checkpoint is written to step-N.tmp and renamed when complete, so a kill never leaves a half one.


def save_model_folder(model: Transformer, out: Path, source_dir: Path) -> Path:
    """model weights + config, with the tokenizer files of the folder it came from: a complete HF folder."""
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"):
        if (Path(source_dir) / name).is_file():
            shutil.copy(Path(source_dir) / name, Path(out) / name)
    return Path(out)


def save_checkpoint(run_dir: Path, step: int, model: Transformer, opt: torch.optim.Optimizer, source_dir: Path,
                    state: dict, keep: int = 2) -> Path:
    ckpts = Path(run_dir) / "checkpoints"
    final = ckpts / f"step-{step:06d}"
    tmp = ckpts / f"step-{step:06d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    save_model_folder(model, tmp, source_dir)
    torch.save({"optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
    (tmp / "trainer_state.json").write_text(json.dumps({"step": step, **state}, indent=1) + "\n")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in sorted(ckpts.glob("step-??????"))[:-keep]:
        shutil.rmtree(old)
    return final


def latest_checkpoint(path: Path) -> Path:
    """`path` itself if it is a checkpoint, else the newest checkpoint of the run folder `path`."""
    path = Path(path)
    if (path / "trainer_state.json").is_file():
        return path
    found = sorted((path / "checkpoints").glob("step-??????"))
    if not found:
        raise FileNotFoundError(f"{path}: no checkpoint to resume from (expected checkpoints/step-N/ or a step-N folder)")
    return found[-1]


def run_settings(ckpt: Path) -> dict:
    """The settings a checkpoint's run was started with."""
    try:
        return json.loads((Path(ckpt) / "trainer_state.json").read_text())["settings"]
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise ValueError(f"{ckpt}/trainer_state.json: not a checkpoint of ours ({e})") from None


def load_trainer_state(ckpt: Path, opt: torch.optim.Optimizer, expect: dict) -> int:
    """Restore optimizer and RNG from a checkpoint, refusing one written with other settings; returns its step."""
    state = json.loads((ckpt / "trainer_state.json").read_text())
    diff = sorted(k for k in expect if state.get("settings", {}).get(k) != expect[k])
    if diff:
        raise ValueError(f"{ckpt} is from another run: " + ", ".join(
            f"{k} was {state.get('settings', {}).get(k)!r}, now {expect[k]!r}" for k in diff))
    saved = torch.load(ckpt / "trainer_state.pt", weights_only=True)
    opt.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    return int(state["step"])


class JsonlLog:
    """Append-only log.jsonl; on resume, lines after the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [l for l in self.path.read_text().splitlines() if l.strip() and json.loads(l).get("step", 0) <= resume_step]
            self.path.write_text("".join(l + "\n" for l in kept))
        elif resume_step is None:
            self.path.write_text("")

    def write(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def add_training_args(ap, toy: dict, paper: dict) -> None:
    """The options train_rl.py and train_distill.py share; defaults None are filled by `begin_run`
    from `toy` (toy models) or `paper` (real models)."""
    from .tokenizer import TEMPLATES

    both = lambda key: f"toy {toy[key]}, real {paper[key]}"  # noqa: E731
    ap.add_argument("--resume", type=Path, help="a run folder or one of its checkpoints: continue it exactly")
    ap.add_argument("--temperature", type=float, help="sampling temperature: toy 1.0, real 0.9 (the paper)")
    ap.add_argument("--max-new-tokens", type=int, help="default: the model's hint (toy 160), else 1024")
    ap.add_argument("--template", choices=TEMPLATES, help="prompt template (default: the model's own)")
    ap.add_argument("--lr", type=float, help=both("lr"))
    ap.add_argument("--weight-decay", type=float, help=both("weight_decay"))
    ap.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.99))
    ap.add_argument("--warmup", type=int, help=both("warmup"))
    ap.add_argument("--grad-clip", type=float, help=both("grad_clip"))
    ap.add_argument("--micro-batch-tokens", type=int, default=16384, help="padded tokens per forward/backward")
    ap.add_argument("--optimizer", choices=["adamw", "lowmem"], default="adamw",
                    help="lowmem: bf16 weights + fp32 master copy + bf16 moments (Qwen2.5-1.5B on 24 GB)")
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument("--eval-data", default="test", help="held-out questions for the before/after pass@1")
    ap.add_argument("--final-eval-samples", type=int, default=8,
                    help="samples per held-out question, before vs after training (0 = skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", help="cuda or cpu (default: cuda when available)")


def parse_args_resumable(parser, argv=None):
    """Parse a training script's arguments; with --resume, the run's own args.json supplies the defaults,
    so `--resume DIR` alone continues it (flags given again must agree with the checkpoint's settings)."""
    args = parser.parse_args(argv)
    if args.resume:
        run_dir = latest_checkpoint(args.resume).parent.parent
        try:
            saved = json.loads((run_dir / "args.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"{run_dir}/args.json: cannot resume this run ({e})")
        known = {a.dest for a in parser._actions}
        parser.set_defaults(**{k: v for k, v in saved.items() if k in known and k not in ("resume", "out")})
        args = parser.parse_args(argv)
        for a in parser._actions:  # JSON turned paths and tuples into strings and lists
            if a.type is Path and isinstance(getattr(args, a.dest, None), str):
                setattr(args, a.dest, Path(getattr(args, a.dest)))
    return args


# ----------------------------------------------------------------------------------------------
# What both training scripts do around their loop


@dataclass
class Run:
    out: Path
    source: Path  # the model folder the run started from
    ckpt: Path | None  # the checkpoint being resumed, if any
    hints: dict  # the source model's minireason hints (non-empty for toy models)
    device: str
    dtype: torch.dtype

    def autocast(self):
        """bf16 autocast for fp32 weights on CUDA; nothing on the CPU (or for bf16 weights)."""
        if self.device.startswith("cuda") and self.dtype == torch.float32:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def stop(self, err: Exception) -> SystemExit:
        last = sorted((self.out / "checkpoints").glob("step-??????"))
        return SystemExit(f"stopping: {err}. The last good checkpoint, {last[-1] if last else 'none yet'}, is "
                          "unchanged; lower --lr or --grad-clip and resume from it with --resume.")


def begin_run(args, model_name: str, toy_defaults: dict, paper_defaults: dict) -> Run:
    """Resolve the source model (or the resumed run's), fill hyper-parameter defaults (toy or paper), pick device."""
    from .collect import model_hints
    from .model import read_config, resolve_model_dir

    ckpt = latest_checkpoint(args.resume) if args.resume else None
    source = Path(run_settings(ckpt)["source"]) if ckpt else resolve_model_dir(model_name)
    read_config(source)  # fail now, naming the file, if the folder is not a model we can load
    if ckpt:
        args.out = ckpt.parent.parent
    hints = model_hints(source)
    for key, value in (toy_defaults if hints else paper_defaults).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.temperature is None:  # toy models ask for 1.0; real models get the paper's 0.9
        args.temperature = hints.get("temperature", 0.9)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if args.optimizer == "lowmem" else torch.float32
    args.out.mkdir(parents=True, exist_ok=True)
    return Run(args.out, source, ckpt, hints, device, dtype)


def load_for_training(run: Run, args, oc: OptimConfig, settings: dict):
    """Model (from the source or the checkpoint), optimizer (restored on resume), first step, log."""
    from .model import load_pretrained

    model = load_pretrained(run.ckpt or run.source, dtype=run.dtype, device=run.device).train()
    model.gradient_checkpointing = args.grad_checkpointing
    opt = build_optimizer(model, oc)
    start = 0
    if run.ckpt:
        start = load_trainer_state(run.ckpt, opt, {k: v for k, v in settings.items() if k != "source"})
        print(f"resuming {run.out} from step {start} ({run.ckpt})")
    else:
        (run.out / "args.json").write_text(json.dumps({**vars(args), "settings": settings}, indent=1, default=str) + "\n")
    return model, opt, start, JsonlLog(run.out / "log.jsonl", resume_step=start if run.ckpt else None)


def compare_before_after(run: Run, model: Transformer, tokenizer, template: str, problems, n: int, max_new: int,
                         temperature: float, label: str) -> tuple[float, float]:
    """pass@1 of the source model and the trained one on held-out problems; printed and returned."""
    import time

    from .collect import pass_at_1
    from .model import load_pretrained

    t = time.time()
    before = pass_at_1(load_pretrained(run.source, dtype=run.dtype, device=run.device), tokenizer, problems, template,
                       n, max_new, 20_000, temperature)
    after = pass_at_1(model, tokenizer, problems, template, n, max_new, 20_000, temperature)
    print(f"{label} pass@1 ({len(problems)} questions x {n} samples, T={temperature}): before {before:.3f} -> after {after:.3f} "
          f"({100 * (after - before):+.1f} points) [{time.time() - t:.0f}s]")
    return before, after
