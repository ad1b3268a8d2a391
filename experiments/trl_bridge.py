"""Our configs through TRL, the engine the paper trained with: GRPO by `GRPOTrainer`, distillation by `SFTTrainer`.

    pip install trl                                                       # optional, like math-verify
    python experiments/trl_bridge.py rl --out runs/trl-rl                 # train_rl.py's toy defaults, through TRL
    python experiments/trl_bridge.py sft --sft-data runs/distill/sft_data.jsonl --out runs/trl-sft
    python evaluate.py --model base=toy-base --model trl=runs/trl-rl/final

`rl` takes train_rl.py's flags and `sft` train_distill.py's, resolved exactly as those scripts resolve them (the
dataclass defaults, the toy or paper preset, the model folder's hints, then the flags), and maps each setting onto
TRL's config one to one (`RL_MAP`, `SFT_MAP`; the table is in docs/trl.md). A flag that has no TRL equivalent is
refused in one line naming it. The data, template and reward are ours: the toy splits or our JSONL, `format_prompt`,
and `grpo.reward` of `verifier.grade` (or of `toy.process_correct`, `--reward process`). `sft` trains on the kept
data of one of our distillation runs (`--sft-data`), so that both engines see the same examples.

The run folder is a normal one: `config.json` (the resolved config, with the TRL settings it became under "trl"),
`log.jsonl` and `curves.png` from TRL's log, and `final/`, written by our own saver with the source model's
config.json (so a toy model keeps its hints), which `evaluate.py` reads. TRL's own files go to `trl/`. Nothing in
minireason/ or the three scripts imports TRL.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import train_distill  # noqa: E402
import train_rl  # noqa: E402
from minireason.checkpoint import load_pretrained, read_config, resolve_model_dir  # noqa: E402
from minireason.cli import config_parser, run_cli  # noqa: E402
from minireason.curves import draw_curves  # noqa: E402
from minireason.files import atomic_write, releasing_locks  # noqa: E402
from minireason.graders import get_grader  # noqa: E402
from minireason.grpo import reward  # noqa: E402
from minireason.runs import resolve_config, save_model_folder  # noqa: E402
from minireason.sft import load_examples  # noqa: E402
from minireason.tasks import Problem, is_real_data, load_questions  # noqa: E402
from minireason.tokenizer import Tokenizer, format_prompt  # noqa: E402
from minireason.toy import process_correct  # noqa: E402
from minireason.verifier import grade  # noqa: E402

LOSS_TYPES = {"token": "dapo", "sequence": "grpo", "constant": "dr_grpo"}  # our aggregation -> TRL's loss_type
# Our setting -> (TRL's GRPOConfig field, its value from our config). Settings the bridge reads itself (the model,
# data, template, grader, reward, out, device) have no TRL field; every other flag outside this map is refused.
TRAINING_MAP = {  # what both scripts share: the optimizer, its schedule, the seed
    "lr": ("learning_rate", lambda c: c.lr),
    "weight_decay": ("weight_decay", lambda c: c.weight_decay),
    "warmup": ("warmup_steps", lambda c: c.warmup),
    "grad_clip": ("max_grad_norm", lambda c: c.grad_clip),
    "seed": ("seed", lambda c: c.seed),
    "grad_checkpointing": ("activation_checkpointing", lambda c: c.grad_checkpointing),
}
RL_MAP = {
    "steps": ("max_steps", lambda c: c.steps),
    "batch_questions": ("per_device_train_batch_size", lambda c: c.batch_questions * c.group_size),
    "group_size": ("num_generations", lambda c: c.group_size),
    "temperature": ("temperature", lambda c: c.temperature),
    "top_k": ("top_k", lambda c: c.top_k),
    "max_new_tokens": ("max_completion_length", lambda c: c.max_new_tokens),
    "clip_eps": ("epsilon", lambda c: c.clip_eps),
    "mu": ("num_iterations", lambda c: c.mu),
    "aggregation": ("loss_type", lambda c: LOSS_TYPES[c.aggregation]),
    "scale_std": ("scale_rewards", lambda c: "group" if c.scale_std else "none"),
    "beta": ("beta", lambda c: c.beta),
    **TRAINING_MAP,
}
SFT_MAP = {
    "epochs": ("num_train_epochs", lambda c: c.epochs),
    "batch_size": ("per_device_train_batch_size", lambda c: c.batch_size),
    **TRAINING_MAP,
}
READ_HERE = {"model", "student", "data", "template", "grader", "reward", "out", "device", "sft_data", "overwrite"}
FIXED = dict(adam_beta1=0.9, adam_beta2=0.99, lr_scheduler_type="constant_with_warmup", logging_steps=1,
             save_strategy="no", report_to="none", disable_tqdm=False)  # OptimConfig's betas and schedule


def refuse_unmapped(cls, mapped: dict, argv: list[str]) -> None:
    """A given flag that TRL has no equivalent for ends the run in one line, naming it."""
    given = vars(config_parser(cls, "").parse_args(argv))
    unmapped = sorted(k for k in given if k not in mapped and k not in READ_HERE)
    if unmapped:
        flag = "--" + unmapped[0].replace("_", "-")
        raise ValueError(f"{flag} has no TRL equivalent in this bridge (it maps --"
                         + ", --".join(k.replace("_", "-") for k in mapped) + "; see docs/trl.md)")


def trl_settings(cfg, mapped: dict) -> dict:
    """Our resolved config as TRL's settings (the fixed ones, the mapped ones, where it runs and writes)."""
    where = {"output_dir": str(Path(cfg.out) / "trl"), "use_cpu": cfg.device == "cpu",
             "bf16": cfg.device.startswith("cuda")}
    return {**FIXED, **{field: value(cfg) for field, value in mapped.values()}, **where}


def record_config(cfg, settings: dict) -> None:
    atomic_write(Path(cfg.out) / "config.json", json.dumps({**asdict(cfg), "trl": settings}, indent=1) + "\n")


def hf_model_and_tokenizer(model_dir: Path):
    """The model folder as transformers loads it, and its tokenizer.json as a fast tokenizer with our pad and EOS."""
    import transformers

    ours = Tokenizer.from_dir(model_dir)
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"))
    tok.pad_token, tok.eos_token = tok.convert_ids_to_tokens(ours.pad_id), tok.convert_ids_to_tokens(ours.eos_ids[0])
    tok.padding_side = "left"
    return transformers.AutoModelForCausalLM.from_pretrained(model_dir), tok


def reward_function(cfg, grader, problems: dict[str, Problem]):
    """TRL's reward interface over ours: +1/-1 from the grader (or, --reward process, from every step's check)."""
    def rewards(prompts, completions, id, **kwargs) -> list[float]:
        if cfg.reward == "process":
            return [reward(process_correct(c, problems[i])) for c, i in zip(completions, id)]
        return [reward(grade(c, problems[i].answer, grader)) for c, i in zip(completions, id)]
    return rewards


def rank() -> int:
    """This process's rank under `accelerate launch` (0 alone): only rank 0 writes the run folder."""
    return int(os.environ.get("RANK", "0"))


def bridge_args(argv: list[str], cls) -> tuple[list[str], dict]:
    """Our flags, and the bridge's own TRL settings: `--vllm` generates with vLLM (TRL's colocate mode). A process
    of rank > 0 resolves the same config into a folder of its own (out/rank-N), so that only rank 0 holds the run."""
    extra = dict(use_vllm=True, vllm_mode="colocate") if "--vllm" in argv else {}
    argv = [a for a in argv if a != "--vllm"]
    if rank() > 0:
        given = vars(config_parser(cls, "").parse_args(argv))
        argv = argv + ["--out", str(Path(given.get("out", cls().out)) / f"rank-{rank()}"), "--overwrite"]
    return argv, extra


def finish_run(cfg, trainer, source: Path) -> Path:
    """log.jsonl and curves.png from TRL's log; final/ in our format, with the source model's config.json."""
    trained = Path(cfg.out) / "trl" / "final"
    trainer.save_model(str(trained))  # every rank: under ZeRO-3 it gathers the weights
    if rank() > 0:
        return trained
    names = {"reward": "reward_mean", "loss": "loss", "grad_norm": "grad_norm", "learning_rate": "lr",
             "entropy": "entropy", "completions/mean_length": "response_tokens_mean"}
    rows = [{"step": r["step"], **{ours: r[k] for k, ours in names.items() if k in r}}
            for r in trainer.state.log_history if "step" in r and ("loss" in r or "reward" in r)]
    atomic_write(Path(cfg.out) / "log.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    model = load_pretrained(trained)
    model.config = replace(read_config(source))  # the same shapes; the source's hints (toy models) kept
    final = save_model_folder(model, Path(cfg.out) / "final", source)
    draw_curves(Path(cfg.out))
    print(f"trained model: {final}")
    return final


def rl_trainer(argv: list[str]):
    """train_rl.py's flags as a GRPOTrainer, not yet trained: (our config, the trainer, the source model folder)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    argv, extra = bridge_args(argv, train_rl.RLConfig)
    refuse_unmapped(train_rl.RLConfig, RL_MAP, argv)
    cfg, _ = resolve_config(train_rl.RLConfig, argv, "model", __doc__, train_rl.PRESETS)
    grader = get_grader(cfg.grader, is_real_data(cfg.data))
    train = load_questions(cfg.data, grader)
    train_rl.check_data(cfg, train)
    settings = {**trl_settings(cfg, RL_MAP), **extra}
    record_config(cfg, settings)
    source = resolve_model_dir(cfg.model)
    model, tok = hf_model_and_tokenizer(source)
    data = Dataset.from_list([{"prompt": format_prompt(p.question, cfg.template), "id": p.id} for p in train])
    trainer = GRPOTrainer(model=model, reward_funcs=reward_function(cfg, grader, {p.id: p for p in train}),
                          args=GRPOConfig(**settings), train_dataset=data, processing_class=tok)
    return cfg, trainer, source


def sft_trainer(argv: list[str]):
    """train_distill.py's flags and --sft-data as an SFTTrainer, not yet trained: (config, trainer, source)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    argv, extra = bridge_args(argv, train_distill.DistillConfig)
    if extra:
        raise ValueError("--vllm is for rl: sft generates nothing")
    refuse_unmapped(train_distill.DistillConfig, SFT_MAP, argv)
    cfg, _ = resolve_config(train_distill.DistillConfig, argv, "student", __doc__, train_distill.PRESETS,
                            train_distill.derived)
    if not cfg.sft_data:
        raise ValueError("--sft-data is needed: the kept data of one of our distillation runs "
                         "(e.g. runs/distill/sft_data.jsonl), so that both engines train on the same examples")
    examples = load_examples(cfg.sft_data)
    settings = {**trl_settings(cfg, SFT_MAP), "max_length": None}
    record_config(cfg, settings)
    source = resolve_model_dir(cfg.student)
    model, tok = hf_model_and_tokenizer(source)
    data = Dataset.from_list([{"prompt": format_prompt(e.question, cfg.template), "completion": e.response}
                              for e in examples])
    trainer = SFTTrainer(model=model, args=SFTConfig(**settings), train_dataset=data, processing_class=tok)
    return cfg, trainer, source


@releasing_locks
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("rl", "sft"):
        raise ValueError("usage: experiments/trl_bridge.py {rl,sft} [train_rl.py's or train_distill.py's flags]")
    cfg, trainer, source = (rl_trainer if argv[0] == "rl" else sft_trainer)(argv[1:])
    trainer.train()
    finish_run(cfg, trainer, source)


if __name__ == "__main__":
    run_cli(main)
