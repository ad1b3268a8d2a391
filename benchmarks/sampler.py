"""Time our sampler against transformers' `generate`: same random weights, batch, lengths, sampling on.

    python benchmarks/sampler.py                 # CUDA: Qwen2.5-0.5B and 1.5B shapes; CPU: the toy shape
    python benchmarks/sampler.py --shapes toy --batches 64 256 --prompt-len 16 --new-tokens 128

Every row generates exactly `new_tokens` per sequence (no EOS can be sampled), so tokens/s =
batch * new_tokens / seconds, prefill included. For CUDA rows it also prints the decode-step floor:
max(bytes moved / memory bandwidth, FLOPs / peak), with bytes = bf16 weights + the KV cache read at
the mean context length, FLOPs = 2 * params * batch. Needs transformers (a test dependency).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minireason.model import ModelConfig, build_model  # noqa: E402
from minireason.sampler import SamplingParams, generate  # noqa: E402

SHAPES = {
    "toy": dict(
        model_type="llama",
        vocab_size=85,
        hidden_size=192,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=32,
        tie_word_embeddings=True,
    ),
    "qwen2.5-0.5b": dict(
        model_type="qwen2",
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        head_dim=64,
        tie_word_embeddings=True,
        qkv_bias=True,
        rope_theta=1e6,
    ),
    "qwen2.5-1.5b": dict(
        model_type="qwen2",
        vocab_size=151936,
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        head_dim=128,
        tie_word_embeddings=True,
        qkv_bias=True,
        rope_theta=1e6,
    ),
}
# (memory bandwidth bytes/s, dense bf16 FLOP/s) by device name fragment
PEAKS = {"H100": (3.35e12, 989e12), "H200": (4.8e12, 989e12), "A100": (2.0e12, 312e12), "4090": (1.0e12, 165e12)}


class NoEosTokenizer:
    """Ids in, ids out; the EOS id is outside the vocabulary so every row runs to max_new_tokens."""

    pad_id = 0

    def __init__(self, vocab_size: int):
        self.eos_ids = [vocab_size]

    def decode(self, ids, skip_special_tokens=True):
        return ""


def decode_floor_ms(cfg: ModelConfig, params: int, batch: int, context: float, peaks) -> tuple[float, float]:
    bandwidth, flops = peaks
    kv_bytes = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 2 * context * batch
    return 1e3 * (2 * params + kv_bytes) / bandwidth, 1e3 * 2 * params * batch / flops


def time_ours(model, prompts, new_tokens, vocab, cuda_graph=True) -> float:
    params = SamplingParams(n=1, temperature=0.9, top_k=50, max_new_tokens=new_tokens, seed=0,
                            max_batch_tokens=1 << 30, cuda_graph=cuda_graph)
    tok = NoEosTokenizer(vocab)
    generate(
        model, tok, [p[:8] for p in prompts[:2]], SamplingParams(**{**params.__dict__, "max_new_tokens": 4})
    )  # warm-up
    sync()
    t = time.perf_counter()
    out = generate(model, tok, prompts, params)
    sync()
    assert all(len(s.token_ids) == new_tokens for s in out)
    return time.perf_counter() - t


def time_transformers(cfg: ModelConfig, state, prompts, new_tokens, device, dtype) -> float:
    import transformers

    hf_cls = {"qwen2": transformers.Qwen2ForCausalLM, "llama": transformers.LlamaForCausalLM}[cfg.model_type]
    hf_cfg_cls = {"qwen2": transformers.Qwen2Config, "llama": transformers.LlamaConfig}[cfg.model_type]
    raw = cfg.to_hf_dict()
    hf = (
        hf_cls(hf_cfg_cls(**{k: v for k, v in raw.items() if k != "architectures"}))
        .to(device=device, dtype=dtype)
        .eval()
    )
    hf.load_state_dict(state, strict=False)
    ids = torch.tensor(prompts, device=device)
    kwargs = dict(do_sample=True, temperature=0.9, top_k=50, top_p=1.0, max_new_tokens=new_tokens,
                  min_new_tokens=new_tokens, pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        hf.generate(
            ids[:2, :8],
            attention_mask=torch.ones_like(ids[:2, :8]),
            **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4},
        )
        sync()
        t = time.perf_counter()
        out = hf.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        sync()
    assert out.shape[1] == ids.shape[1] + new_tokens
    return time.perf_counter() - t


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--shapes", nargs="+", choices=list(SHAPES), default=["qwen2.5-0.5b", "qwen2.5-1.5b"] if cuda else ["toy"]
    )
    ap.add_argument("--batches", nargs="+", type=int, default=[64, 256])
    ap.add_argument("--prompt-len", type=int, default=128 if cuda else 16)
    ap.add_argument("--new-tokens", type=int, default=512 if cuda else 128)
    ap.add_argument("--skip-transformers", action="store_true", help="time only our sampler")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = ap.parse_args()
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    name = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    peaks = next((v for k, v in PEAKS.items() if k in name), None) if cuda else None
    print(
        f"device: {name}, dtype {dtype}, torch {torch.__version__}; "
        f"prompt {args.prompt_len} + {args.new_tokens} new tokens, "
        "T=0.9 top-k 50"
    )
    print(
        "| shape | batch | ours tok/s | transformers tok/s | speed-up | ours ms/step | floor ms/step (bytes, FLOPs) |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = []
    for shape in args.shapes:
        cfg = ModelConfig(**SHAPES[shape], max_position_embeddings=4096)
        model = build_model(cfg, dtype=dtype, device=device, seed=0).eval()
        state = {k: v for k, v in model.state_dict().items()}
        g = torch.Generator().manual_seed(0)
        for batch in args.batches:
            prompts = torch.randint(1, cfg.vocab_size, (batch, args.prompt_len), generator=g).tolist()
            ours = time_ours(model, prompts, args.new_tokens, cfg.vocab_size)
            theirs = (
                None
                if args.skip_transformers
                else time_transformers(cfg, state, prompts, args.new_tokens, device, dtype)
            )
            tokens = batch * args.new_tokens
            row = {
                "device": name,
                "shape": shape,
                "batch": batch,
                "prompt": args.prompt_len,
                "new_tokens": args.new_tokens,
                "ours_tok_s": tokens / ours,
                "transformers_tok_s": tokens / theirs if theirs else None,
                "ours_ms_per_step": 1e3 * ours / args.new_tokens,
            }
            floor = ""
            if peaks:
                mem_ms, flop_ms = decode_floor_ms(
                    cfg, model.num_params(), batch, args.prompt_len + args.new_tokens / 2, peaks
                )
                row["floor_ms"] = max(mem_ms, flop_ms)
                floor = f"{max(mem_ms, flop_ms):.2f} ({mem_ms:.2f}, {flop_ms:.2f})"
            rows.append(row)
            speedup = f"{theirs / ours:.1f}x" if theirs else "-"
            print(
                f"| {shape} | {batch} | {tokens / ours:,.0f} | "
                f"{f'{tokens / theirs:,.0f}' if theirs else '-'} | {speedup} | "
                f"{row['ours_ms_per_step']:.2f} | {floor or '-'} |",
                flush=True,
            )
        del model, state
        if cuda:
            torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
