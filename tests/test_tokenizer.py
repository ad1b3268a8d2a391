"""Tokenizer wrapper and prompt templates."""

import json

import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers

from minireason.tokenizer import QWEN_MATH_SYSTEM, Tokenizer, format_prompt


@pytest.fixture
def folder(tmp_path):
    vocab = {"<unk>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "<|endoftext|>": 3, "hi": 4, "there": 5}
    tok = HFTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>", "<|endoftext|>"])
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "config.json").write_text(json.dumps({"eos_token_id": 2}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 3], "pad_token_id": 3}))
    return tmp_path


def test_eos_ids_are_the_union_of_config_and_generation_config(folder):
    tok = Tokenizer.from_dir(folder)
    assert tok.eos_ids == [2, 3] and tok.pad_id == 3


def test_encode_decode_and_special_tokens(folder):
    tok = Tokenizer.from_dir(folder)
    ids = tok.encode("<|im_start|>hi there<|im_end|>")
    assert ids == [1, 4, 5, 2]
    assert tok.decode(ids) == "hi there"
    assert tok.default_template() == "chatml"


def test_malformed_generation_config_is_named(folder):
    (folder / "generation_config.json").write_text("{")
    with pytest.raises(ValueError, match=r"generation_config\.json: malformed JSON"):
        Tokenizer.from_dir(folder)


def test_templates_written_out():
    q = "What is 2+3?"
    assert format_prompt(q, "question") == q
    assert format_prompt(q, "qwen-math") == (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert QWEN_MATH_SYSTEM.endswith("within \\boxed{}.")
    assert format_prompt(q, "chatml") == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    assert format_prompt(q, "llama3", system="Be brief.") == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+3?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert format_prompt(q, "r1").startswith("A conversation between User and Assistant.")
    assert format_prompt(q, "r1").endswith("User: What is 2+3? Assistant: <think>")
    with pytest.raises(ValueError, match="unknown prompt template 'jinja'"):
        format_prompt(q, "jinja")


@pytest.mark.slow
def test_chatml_matches_the_models_own_chat_template(smollm2_dir):
    """Our hand-written ChatML equals what transformers renders from SmolLM2's jinja template."""
    import transformers

    hf_tok = transformers.AutoTokenizer.from_pretrained(smollm2_dir)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"}]
    rendered = hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert format_prompt("What is 2+3?", "chatml", system="Be brief.") == rendered
    ours = Tokenizer.from_dir(smollm2_dir)
    assert ours.encode(rendered) == hf_tok(rendered, add_special_tokens=False)["input_ids"]
    assert ours.eos_ids == [hf_tok.convert_tokens_to_ids("<|im_end|>")]
