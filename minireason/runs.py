"""Runs: a training script's config, its folder, checkpoints with exact resume, the log, and before/after pass@1.

A run folder holds everything needed to continue or inspect it:

    runs/NAME/config.json                the resolved config (printed at start-up; resume reads it back)
    runs/NAME/log.jsonl                  one line per step
    runs/NAME/curves.png                 the log drawn against the step (curves.py)
    runs/NAME/checkpoints/step-000100/   an HF model folder (config, weights, tokenizer) + trainer_state.pt/.json
    runs/NAME/final/                     the trained model, an HF model folder

Config resolution, in one place and in this order: the config dataclass's defaults (the paper's
settings), the toy or paper preset of the script (and what it derives from the flags), the model folder's
hints (toy models ask for T = 1.0 and 160 new tokens), then the flags given on the command line.
`--resume DIR` instead reads DIR's config.json back and refuses any flag that disagrees with it (only
--device may change).

Every file a run writes is written to a temporary name and renamed when complete (`atomic_write`,
`save_model_folder`, `save_checkpoint`), so a kill never leaves a half-written one that looks whole.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError

from .cli import config_parser, flag
from .curves import draw_curves
from .files import append_lines, atomic_write, held_unchanged, lock, named, read_text, sync_folder
from .checkpoint import default_template, load_pretrained, model_hints, read_config, resolve_model_dir, save_pretrained
from .model import Transformer
from .sampler import SamplingParams, generate
from .tasks import Problem, is_real_data
from .tokenizer import TEMPLATES, Tokenizer, format_prompt
from .training import OptimConfig, build_optimizer
from .graders import GRADERS, get_grader
from .verifier import Grader, grade

# Seeds. Each training step samples with seed * STEP_SEED_STRIDE + step, a prime stride larger than any
# step count, so no two (seed, step) pairs share a sampling seed and a resumed step redraws exactly.
STEP_SEED_STRIDE = 1_000_003
HELD_OUT_SEED = 10_000  # periodic held-out pass@1 during RL (the same draws at every evaluation)
BEFORE_AFTER_SEED = 20_000  # the final before/after comparison (the same draws for both models)


# ----------------------------------------------------------------------------------------------
# Files


def _replace_dir(tmp: Path, final: Path) -> None:
    """Put the complete folder tmp at final; an old final is renamed aside first and deleted last."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def save_model_folder(model: Transformer, out: Path, source_dir: Path) -> Path:
    """Weights + config, with the tokenizer files of the folder it came from: a complete HF folder, atomically."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        save_pretrained(model, tmp)
        for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"):
            if (Path(source_dir) / name).is_file():
                shutil.copy(Path(source_dir) / name, tmp / name)
        sync_folder(tmp)
    except (OSError, SafetensorError) as e:  # e.g. a full disk: leave no half-written folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        e = e if isinstance(e, OSError) else OSError(errno.EIO, f"write failed ({e})")
        raise named(e, out, target=True) from None
    except BaseException:  # Ctrl-C or SIGTERM mid-write: nor then
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _replace_dir(tmp, out)
    return out


def save_checkpoint(run_dir: Path, step: int, model: Transformer, opt: torch.optim.Optimizer, source_dir: Path,
                    keep: int = 2) -> Path:
    """checkpoints/step-N: the model folder plus optimizer and RNG state. Older checkpoints beyond `keep` are
    removed only once the new one is complete, each renamed away first (so none is ever left half-deleted)."""
    ckpts = Path(run_dir) / "checkpoints"
    for stale in ckpts.glob("step-*.deleting"):  # a rotation that a kill cut short
        shutil.rmtree(stale)
    final = ckpts / f"step-{step:06d}"
    tmp = ckpts / f"step-{step:06d}.tmp"
    try:
        save_model_folder(model, tmp, source_dir)
        torch.save({"optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
        atomic_write(tmp / "trainer_state.json", json.dumps({"step": step}) + "\n")
        sync_folder(tmp)
    except (OSError, RuntimeError) as e:  # torch reports a failed write (e.g. a full disk) as a RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        raise named(e if isinstance(e, OSError) else OSError(errno.EIO, f"write failed ({e})"), final,
                    target=True) from None
    except BaseException:  # Ctrl-C or SIGTERM mid-write
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _replace_dir(tmp, final)
    for old in sorted(ckpts.glob("step-??????"))[:-keep]:
        trash = old.with_name(old.name + ".deleting")
        old.rename(trash)
        shutil.rmtree(trash)
    return final


def load_trainer_state(ckpt: Path, opt: torch.optim.Optimizer) -> int:
    """Restore optimizer and RNG state from a checkpoint; returns its step."""
    try:
        step = int(json.loads((ckpt / "trainer_state.json").read_text())["step"])
        saved = torch.load(ckpt / "trainer_state.pt", weights_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ValueError(f"{ckpt}: not a readable checkpoint ({e})") from None
    opt.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    return step


class JsonlLog:
    """Append-only log.jsonl. On resume, lines after the resumed step are dropped, and a torn last line (a
    kill or a full disk mid-write) is dropped with a warning that names the file."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
        rows = []
        if resume_step is not None and self.path.exists():
            lines = read_text(self.path).splitlines()
            for n, line in enumerate(lines, start=1):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    if n < len(lines):
                        raise ValueError(f"{self.path}:{n}: malformed log line") from None
                    warnings.warn(f"{self.path}:{n}: dropped a torn last line")
        atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in rows if r.get("step", 0) <= (resume_step or 0)))

    def write(self, row: dict) -> None:
        append_lines(self.path, [json.dumps(row)])


# ----------------------------------------------------------------------------------------------
# Configs: what the training scripts share, resolved in one place (their flags: cli.py)


@dataclass
class TrainConfig:
    """What train_rl.py and train_distill.py share. Defaults are the paper's settings for real models."""

    out: str = flag("runs/run", "run folder (config, log, checkpoints, final model)")
    data: str = flag("train", "training questions: 'train' (toy) or a JSONL file (python -m minireason.convert)")
    eval_data: str = flag("test", "held-out questions for the before/after pass@1")
    template: str | None = flag(None, "prompt template (default: the model's own)", choices=TEMPLATES)
    grader: str = flag("auto", "auto: math-verify for JSONL data when installed, else exact", choices=GRADERS)
    temperature: float = flag(0.9, "sampling temperature (paper 0.9; toy models ask for 1.0)", low=0.0)
    top_k: int = flag(50, "sampling top-k (0 = off)", low=0)
    max_new_tokens: int = flag(1024, "response length cap (toy models ask for 160)", low=1)
    max_rows: int = flag(0, "sampler rows decoding at once (0: sized by the machine: 60%% of free GPU memory "
                         "for the KV cache, or 128 on the CPU)", low=0)
    lr: float = flag(1e-6, "peak learning rate", low=0.0)
    weight_decay: float = flag(0.1, "AdamW weight decay on matrices", low=0.0)
    warmup: int = flag(20, "linear warmup steps", low=0)
    grad_clip: float = flag(0.1, "gradient norm clip", low=0.0)
    optimizer: str = flag("adamw", "lowmem: bf16 weights + fp32 master + bf16 moments", choices=("adamw", "lowmem"))
    grad_checkpointing: bool = flag(False, "recompute activations in the backward pass")
    micro_batch_tokens: int = flag(16384, "padded tokens per forward/backward", low=1)
    final_eval_samples: int = flag(8, "samples per held-out question, before vs after (0 = skip)", low=0)
    checkpoint_every: int = flag(40, "steps between checkpoints", low=1)
    seed: int = flag(0, "seed of questions, samples and batches")
    device: str | None = flag(None, "cuda or cpu (default: cuda when available)")
    cuda_graphs: bool = flag(True, "capture the sampler's decode step as CUDA graphs (--no-cuda-graphs: decode "
                             "eagerly, the way out if graphs misbehave; the CPU never uses them)")


RESUME_MAY_CHANGE = ("device", "keep_decode_graphs", "cuda_graphs")  # where it runs, not what it computes
RUN_LOCK = ".lock"  # held by the process that writes the run folder (files.lock)


def resume_config(cls, resume: Path, given: dict):
    """The config a run was started with (its config.json), refusing given flags that disagree with it, and the
    newest checkpoint (None when the run stopped before its first one, e.g. while sampling its data)."""
    resume = Path(resume)
    if (resume / "trainer_state.json").is_file():  # a checkpoint folder (its config.json is the model's)
        run_dir, ckpt = resume.parent.parent, resume
    elif (resume / "config.json").is_file():  # a run folder, perhaps stopped before its first checkpoint
        run_dir = resume
        ckpts = sorted(c for c in (resume / "checkpoints").glob("step-??????") if (c / "trainer_state.json").is_file())
        ckpt = ckpts[-1] if ckpts else None
    else:
        raise FileNotFoundError(f"{resume}: no run to resume (expected a run folder with config.json, or a checkpoint)")
    path = run_dir / "config.json"
    try:
        written = json.loads(path.read_text())
        saved = {**written, "out": str(run_dir)}  # a copied or moved run writes where it is now
        cfg = cls(**saved)
    except (OSError, json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{path}: cannot resume this run ({e})") from None
    conflicts = [f"--{k.replace('_', '-')} was {saved.get(k)!r}, now {v!r}" for k, v in given.items()
                 if k not in RESUME_MAY_CHANGE and saved.get(k) != v]
    if conflicts:
        raise ValueError(f"{path}: a resumed run keeps its config, but " + "; ".join(conflicts)
                         + " (use another --out for a new run)")
    lock(run_dir / RUN_LOCK, f"run folder {run_dir}")  # after every check: a refused resume writes nothing
    print(f"resuming {run_dir} from {ckpt.name if ckpt else 'the start'}")
    if written.get("out") != saved["out"]:
        atomic_write(path, json.dumps(asdict(cfg), indent=1) + "\n")
    return replace(cfg, **{k: v for k, v in given.items() if k in RESUME_MAY_CHANGE}), ckpt


def resolve_config(cls, argv, model_field: str, description: str, presets: dict[str, dict], derived=None):
    """(config, checkpoint to resume or None), resolved as the module docstring says and saved to out/.
    presets: the script's {"toy": ..., "paper": ...} settings; derived(given, toy), where settings depend on
    the flags given (distillation's protocol depends on --variant)."""
    given = vars(config_parser(cls, description).parse_args(argv))
    resume, overwrite = given.pop("resume", None), given.pop("overwrite", False)
    if resume:
        return resume_config(cls, resume, given)
    model_dir = resolve_model_dir(given.get(model_field, getattr(cls(), model_field)))
    read_config(model_dir)  # fail now, naming the file, if the folder is not a model we can load
    hints = model_hints(model_dir)
    fill = {k: hints[k] for k in ("temperature", "max_new_tokens") if k in hints}
    toy = bool(hints)  # our toy models carry hints; real checkpoints do not
    cfg = cls(**{**presets["toy" if toy else "paper"], **(derived(given, toy) if derived else {}), **fill, **given})
    real_data = is_real_data(cfg.data) or is_real_data(cfg.eval_data)
    cfg = replace(cfg, template=cfg.template or default_template(model_dir, Tokenizer.from_dir(model_dir)),
                  grader=get_grader(cfg.grader, real_data).name,
                  device=cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    prepare_out(Path(cfg.out), overwrite)
    atomic_write(Path(cfg.out) / "config.json", json.dumps(asdict(cfg), indent=1) + "\n")
    print("config: " + json.dumps(asdict(cfg)))
    return cfg, None


def prepare_out(out: Path, overwrite: bool) -> None:
    """Make the run folder and lock it; refuse one that already holds a run unless --overwrite (which moves it
    aside, every byte as it was), and one that another process is writing. A refused command writes nothing."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    log = out / "log.jsonl"
    finished_work = any((out / n).exists() for n in ("checkpoints", "final")) or (log.is_file() and log.stat().st_size)
    if out.is_dir() and finished_work:  # a folder of a run that stopped before its first step holds nothing to lose
        if not overwrite:
            raise ValueError(f"--out {out} already holds a run: continue it with --resume {out}, "
                             "or start afresh with --overwrite (the old run is moved aside, not deleted)")
        aside = out.with_name(f"{out.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        with held_unchanged(out / RUN_LOCK, f"--out {out}"):  # refused while another process writes it
            out.rename(aside)
        print(f"moved the old run aside to {aside}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock(out / RUN_LOCK, f"--out {out}")
    except OSError as e:
        raise ValueError(f"--out {out}: not a writable folder ({e.strerror})") from None


# ----------------------------------------------------------------------------------------------
# A training run: model, optimizer, log; and the evaluation around it


@dataclass
class Run:
    out: Path
    source: Path  # the model folder the run starts from
    device: str
    dtype: torch.dtype
    grader: Grader

    def autocast(self):
        """bf16 autocast for fp32 weights on CUDA; nothing on the CPU (or for bf16 weights)."""
        if self.device.startswith("cuda") and self.dtype == torch.float32:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def stop(self, err: Exception) -> SystemExit:
        last = sorted((self.out / "checkpoints").glob("step-??????"))
        return SystemExit(f"stopping: {err}. The last good checkpoint, {last[-1] if last else 'none yet'}, is "
                          "unchanged; lower --lr or --grad-clip and resume from it with --resume.")


def start_training(cfg: TrainConfig, model_name: str, ckpt: Path | None, oc: OptimConfig):
    """Run, model (from the source or the checkpoint), optimizer (restored on resume), first step, log."""
    source = resolve_model_dir(model_name)
    dtype = torch.bfloat16 if cfg.optimizer == "lowmem" else torch.float32
    run = Run(Path(cfg.out), source, cfg.device, dtype, get_grader(cfg.grader, is_real_data(cfg.data)))
    model = load_pretrained(ckpt or source, dtype=dtype, device=cfg.device).train()
    model.gradient_checkpointing = cfg.grad_checkpointing
    optimizer = build_optimizer(model, oc)
    start = load_trainer_state(ckpt, optimizer) if ckpt else 0
    return run, model, optimizer, start, JsonlLog(run.out / "log.jsonl", resume_step=start)


def sampling_params(cfg: TrainConfig, n: int, seed: int) -> SamplingParams:
    """The run's sampling settings (temperature, top-k, length cap, rows, CUDA graphs), n samples a prompt."""
    return SamplingParams(n=n, temperature=cfg.temperature, top_k=cfg.top_k, max_new_tokens=cfg.max_new_tokens,
                          max_rows=cfg.max_rows, seed=seed, cuda_graph=cfg.cuda_graphs)


def pass_at_1(model: Transformer, tokenizer: Tokenizer, problems: list[Problem], template: str, params: SamplingParams,
              grader: Grader) -> float:
    """Mean correctness of params.n samples per question (a quick accuracy estimate, nothing stored)."""
    samples = generate(model, tokenizer, [format_prompt(p.question, template) for p in problems], params)
    return sum(grade(s.text, problems[s.prompt_index].answer, grader) for s in samples) / len(samples)


def compare_before_after(run: Run, model: Transformer, tokenizer: Tokenizer, cfg: TrainConfig, problems: list[Problem],
                         label: str) -> tuple[float, float]:
    """pass@1 of the source model and the trained one on held-out problems, with the run's sampling settings."""
    t = time.time()
    params = sampling_params(cfg, cfg.final_eval_samples, BEFORE_AFTER_SEED)
    source = load_pretrained(run.source, dtype=run.dtype, device=run.device)
    before = pass_at_1(source, tokenizer, problems, cfg.template, params, run.grader)
    after = pass_at_1(model, tokenizer, problems, cfg.template, params, run.grader)
    print(f"{label} pass@1 ({len(problems)} questions x {params.n} samples, T={params.temperature}): before "
          f"{before:.3f} -> after {after:.3f} ({100 * (after - before):+.1f} points) [{time.time() - t:.0f}s]")
    return before, after


def finish(run: Run, model: Transformer) -> Path:
    """Save the trained model to out/final and draw out/curves.png from the log."""
    final = save_model_folder(model, run.out / "final", run.source)
    print(f"trained model: {final}; curves: {draw_curves(run.out)}")
    return final
