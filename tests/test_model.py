"""Our transformer against transformers: logits parity, save/load round trips, real weights, clear errors."""

import json

import pytest
import torch

from conftest import FAMILIES, left_padded_batch, tiny_hf_model
from minireason.checkpoint import ModelLoadError, load_pretrained, read_config, resolve_model_dir, save_pretrained


def masked_max_diff(a, b, mask):
    return (a - b)[mask.bool()].abs().max().item()


def test_logits_match_transformers_on_left_padded_batch(hf_folder):
    family, folder, hf = hf_folder
    ours = load_pretrained(folder)
    ids, mask = left_padded_batch(hf.config.vocab_size, lengths=(9, 3, 6, 1))
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits
        out = ours(ids, attention_mask=mask)
    assert masked_max_diff(ref, out, mask) <= 1e-4
    # the padded rows agree with the same prompts run alone, unpadded
    for row in range(ids.shape[0]):
        real = ids[row][mask[row].bool()][None]
        with torch.no_grad():
            alone = ours(real)
        assert (alone[0] - out[row][mask[row].bool()]).abs().max().item() <= 1e-4


def test_family_features_are_read_from_config(hf_folder):
    family, folder, _ = hf_folder
    cfg = read_config(folder)
    assert cfg.model_type == family
    assert cfg.qkv_bias == (family == "qwen2")
    assert cfg.qk_norm == (family == "qwen3")
    assert cfg.tie_word_embeddings == (family != "llama")
    assert (cfg.rope_scaling or {}).get("rope_type") == ("llama3" if family == "llama" else None)
    if family == "qwen3":
        assert cfg.head_dim == 24  # from config, not hidden_size // heads (= 16)


def test_llama3_rope_frequencies_match_transformers(tmp_path):
    """The llama3 rule is applied (some frequencies are rescaled) and equals transformers' own inv_freq."""
    from minireason.model import rope_inv_freq

    hf = tiny_hf_model("llama")
    hf.save_pretrained(tmp_path)
    cfg = read_config(tmp_path)
    ours = rope_inv_freq(cfg)
    assert torch.allclose(ours, hf.model.rotary_emb.inv_freq.float(), rtol=1e-6, atol=0)
    cfg.rope_scaling = None
    plain = rope_inv_freq(cfg)
    assert (ours != plain).sum() >= 2 and (ours == plain).sum() >= 2  # long wavelengths scaled, short kept


@pytest.mark.parametrize("family", FAMILIES)
def test_our_save_loads_in_transformers(family, tmp_path):
    import transformers

    hf = tiny_hf_model(family)
    hf.save_pretrained(tmp_path / "hf")
    ours = load_pretrained(tmp_path / "hf")
    save_pretrained(ours, tmp_path / "ours")
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ours", dtype=torch.float32).eval()
    assert type(back) is type(hf)
    ids, mask = left_padded_batch(hf.config.vocab_size)
    with torch.no_grad():
        a = back(input_ids=ids, attention_mask=mask).logits
        b = ours(ids, attention_mask=mask)
        c = hf(input_ids=ids, attention_mask=mask).logits
    assert masked_max_diff(a, b, mask) == 0.0 or masked_max_diff(a, b, mask) <= 1e-6
    assert masked_max_diff(a, c, mask) <= 1e-6
    # and our own reload is bit-identical
    again = load_pretrained(tmp_path / "ours")
    for (k1, v1), (k2, v2) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_sharded_checkpoint_loads(tmp_path):
    hf = tiny_hf_model("qwen2")
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    ours = load_pretrained(tmp_path / "sharded")
    ids, mask = left_padded_batch(97)
    with torch.no_grad():
        assert (
            masked_max_diff(hf(input_ids=ids, attention_mask=mask).logits, ours(ids, attention_mask=mask), mask) <= 1e-4
        )


def test_new_style_rope_parameters_are_read(tmp_path):
    raw = {"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
           "num_hidden_layers": 1, "num_attention_heads": 2,
           "rope_parameters": {"rope_type": "llama3", "rope_theta": 1234.0, "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    cfg = read_config(tmp_path)
    assert cfg.rope_theta == 1234.0 and cfg.rope_scaling["factor"] == 8.0
    old = dict(raw, rope_theta=1234.0, rope_scaling=raw.pop("rope_parameters"))
    del old["rope_scaling"]["rope_theta"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert read_config(tmp_path) == cfg


# ---------------------------------------------------------------------------------------------- errors


@pytest.fixture
def good_folder(tmp_path):
    hf = tiny_hf_model("qwen2")
    hf.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def edit_config(folder, **changes):
    raw = json.loads((folder / "config.json").read_text())
    raw.update(changes)
    (folder / "config.json").write_text(json.dumps(raw))


def test_error_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model folder"):
        load_pretrained(tmp_path / "nope")


def test_error_missing_config(good_folder):
    (good_folder / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"config\.json.*no config\.json"):
        load_pretrained(good_folder)


def test_error_malformed_config(good_folder):
    (good_folder / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json: malformed JSON"):
        load_pretrained(good_folder)


def test_error_missing_config_key(good_folder):
    raw = json.loads((good_folder / "config.json").read_text())
    del raw["hidden_size"]
    (good_folder / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ModelLoadError, match="missing required key 'hidden_size'"):
        load_pretrained(good_folder)


def test_error_unsupported_model_type(good_folder):
    edit_config(good_folder, model_type="mistral")
    with pytest.raises(ModelLoadError, match="unsupported model_type 'mistral'"):
        load_pretrained(good_folder)


def test_error_unsupported_rope_scaling(good_folder):
    edit_config(good_folder, rope_scaling={"rope_type": "yarn", "factor": 4.0})
    with pytest.raises(ModelLoadError, match="unsupported rope_scaling type 'yarn'"):
        load_pretrained(good_folder)


def test_error_missing_weights_file(good_folder):
    (good_folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no model.safetensors"):
        load_pretrained(good_folder)


def test_error_missing_tensor(good_folder):
    from safetensors.torch import load_file, save_file

    f = good_folder / "model.safetensors"
    sd = load_file(f)
    del sd["model.layers.1.mlp.up_proj.weight"]
    save_file(sd, f)
    with pytest.raises(ModelLoadError, match=r"missing tensors \['model.layers.1.mlp.up_proj.weight'\]"):
        load_pretrained(good_folder)


def test_error_unexpected_tensor(good_folder):
    from safetensors.torch import load_file, save_file

    f = good_folder / "model.safetensors"
    sd = load_file(f)
    sd["model.layers.7.extra.weight"] = torch.zeros(2)
    save_file(sd, f)
    with pytest.raises(ModelLoadError, match=r"model.safetensors: unexpected tensor 'model.layers.7.extra.weight'"):
        load_pretrained(good_folder)


def test_error_misshaped_tensor_names_both_shapes(good_folder):
    edit_config(good_folder, intermediate_size=100)
    with pytest.raises(
        ModelLoadError,
        match=r"model.safetensors: tensor 'model.layers.0.mlp.down_proj.weight' has shape \(64, 96\), "
        r"config.json implies \(64, 100\)",
    ):
        load_pretrained(good_folder)


def test_error_missing_tokenizer(good_folder):
    from minireason.tokenizer import Tokenizer

    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json: no tokenizer\.json"):
        Tokenizer.from_dir(good_folder)


def test_hub_name_is_never_fetched_and_says_what_to_run():
    with pytest.raises(ModelLoadError, match=r"no such model folder \(a hub name\? .*huggingface-cli download "
                                             r"Qwen/Qwen2.5-0.5B-Instruct"):
        resolve_model_dir("Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(ModelLoadError, match=r"nowhere/at/all: no such model folder$"):
        resolve_model_dir("nowhere/at/all")


# ---------------------------------------------------------------------------------------------- real weights


@pytest.mark.slow
def test_smollm2_real_weights_match_transformers_and_answer(smollm2_dir):
    import transformers

    from minireason.sampler import SamplingParams, generate
    from minireason.tokenizer import Tokenizer, format_prompt

    ours = load_pretrained(smollm2_dir)
    hf = transformers.AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    tok = Tokenizer.from_dir(smollm2_dir)
    assert tok.default_template() == "chatml"
    prompts = [format_prompt(q, "chatml") for q in ("What is 2+3?", "Name a colour.", "Hi")]
    enc = [tok.encode(p) for p in prompts]
    T = max(map(len, enc))
    ids = torch.tensor([[tok.pad_id] * (T - len(e)) + e for e in enc])
    mask = torch.tensor([[0] * (T - len(e)) + [1] * len(e) for e in enc])
    with torch.no_grad():
        diff = masked_max_diff(hf(input_ids=ids, attention_mask=mask).logits, ours(ids, attention_mask=mask), mask)
    assert diff <= 1e-3
    # SmolLM2's own chat template adds this system prompt when none is given.
    system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    prompt = format_prompt("What is 2+3?", "chatml", system)
    out = generate(ours, tok, [prompt], SamplingParams(temperature=0, max_new_tokens=40))[0]
    assert "5" in out.text, out.text
    assert out.finish_reason == "eos"
