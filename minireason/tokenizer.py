"""Tokenizer wrapper and hand-written prompt templates (no jinja).

`Tokenizer` wraps `tokenizers.Tokenizer.from_file("tokenizer.json")` and adds what sampling needs:
the end-of-sequence ids (from config.json and generation_config.json) and a pad id.

Prompt templates, each a plain function of the question:
- "question":  the bare question (the paper's Template 3, used for its 3B RLVR run and our toy world)
- "qwen-math": ChatML with the system prompt "Please reason step by step, and put your final answer
               within \\boxed{}." (the paper's Template 2)
- "r1":        the DeepSeek-R1 "A conversation between User and Assistant..." prompt (Template 1)
- "chatml":    ChatML user turn (Qwen instruct models, SmolLM2), optional system prompt
- "llama3":    Llama-3 header tokens, optional system prompt
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer

TEMPLATES = ("question", "qwen-math", "r1", "chatml", "llama3")
QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
R1_PROMPT = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. "
    "The Assistant first thinks about the reasoning process in the mind and then provides the User with "
    "the answer. The reasoning process is enclosed within <think> </think> and the answer is enclosed within "
    "<answer> </answer> tags. User: {question} Assistant: <think>"
)


def chatml(question: str, system: str | None = None) -> str:
    sys_turn = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    return f"{sys_turn}<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def llama3(question: str, system: str | None = None) -> str:
    sys_turn = f"<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>" if system else ""
    return (
        f"<|begin_of_text|>{sys_turn}<|start_header_id|>user<|end_header_id|>\n\n{question}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def format_prompt(question: str, template: str, system: str | None = None) -> str:
    """The text a model is prompted with for one question."""
    if template == "question":
        return question
    if template == "qwen-math":
        return chatml(question, QWEN_MATH_SYSTEM)
    if template == "r1":
        return R1_PROMPT.format(question=question)
    if template == "chatml":
        return chatml(question, system)
    if template == "llama3":
        return llama3(question, system)
    raise ValueError(f"unknown prompt template {template!r}; expected one of {', '.join(TEMPLATES)}")


def _as_list(x) -> list[int]:
    if x is None:
        return []
    return [int(i) for i in (x if isinstance(x, list) else [x])]


def _check_vocab(tok: HFTokenizer, model_vocab: int, path: Path) -> None:
    """Every token id must have a row in the model's embedding: a tokenizer of another model fails here, not
    with an IndexError mid-run."""
    top = max(tok.get_vocab(with_added_tokens=True).values(), default=-1)
    if top >= model_vocab:
        raise ValueError(f"{path}: token ids go up to {top}, but config.json's vocab_size is {model_vocab}; this "
                         "tokenizer is not the model's")


class Tokenizer:
    """encode/decode plus the special ids a sampler needs."""

    def __init__(self, tok: HFTokenizer, eos_ids: list[int], pad_id: int, source: str = ""):
        if not eos_ids:
            raise ValueError(f"{source}: no end-of-sequence token id found (config.json eos_token_id)")
        self.tok, self.eos_ids, self.pad_id, self.source = tok, eos_ids, pad_id, source

    @staticmethod
    def from_dir(model_dir: str | os.PathLike) -> "Tokenizer":
        """Read tokenizer.json; EOS ids are the union of config.json and generation_config.json's `eos_token_id`."""
        d = Path(model_dir)
        path = d / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no tokenizer.json in the model folder")
        try:
            tok = HFTokenizer.from_file(str(path))
        except Exception as e:
            raise ValueError(f"{path}: could not be read by the tokenizers library ({e})") from None
        eos: list[int] = []
        pad = None
        for name in ("config.json", "generation_config.json"):
            f = d / name
            if f.is_file():
                try:
                    raw = json.loads(f.read_text())
                except json.JSONDecodeError as e:
                    raise ValueError(f"{f}: malformed JSON ({e})") from None
                eos += [i for i in _as_list(raw.get("eos_token_id")) if i not in eos]
                pad = raw.get("pad_token_id", pad) if pad is None else pad
                if name == "config.json" and isinstance(raw.get("vocab_size"), int):
                    _check_vocab(tok, raw["vocab_size"], path)
        if not eos:  # fall back to the usual end tokens if a config names none
            eos = [
                i
                for t in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "</s>")
                if (i := tok.token_to_id(t)) is not None
            ][:1]
        return Tokenizer(tok, eos, int(pad) if pad is not None else eos[0], source=str(path))

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; special tokens written in the text (e.g. <|im_start|>) become their ids.

        No BOS is added here: templates that need one write it (llama3's <|begin_of_text|>).
        """
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.tok.token_to_id(token)

    def default_template(self) -> str:
        """ChatML if the vocabulary has <|im_start|>, Llama-3 headers if it has <|start_header_id|>,
        else question-only."""
        if self.token_to_id("<|im_start|>") is not None:
            return "chatml"
        if self.token_to_id("<|start_header_id|>") is not None:
            return "llama3"
        return "question"
