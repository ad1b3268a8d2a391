"""Time our sampler on random weights: fixed lengths (against transformers' `generate`) or a real length mix.

    python benchmarks/sampler.py                      # CUDA: Qwen2.5-0.5B and 1.5B shapes; CPU: the toy shape
    python benchmarks/sampler.py --lengths mix        # continuous vs static batching on a length mix
    python benchmarks/sampler.py --profile            # the top kernels (CUDA) or ops (CPU) of decode steps

`--lengths fixed`: every row generates exactly `new_tokens` (no EOS can be drawn), so tokens/s =
batch * new_tokens / seconds, prefill included. On CUDA it also prints the decode-step floor:
max(bytes moved / memory bandwidth, FLOPs / peak), bytes = bf16 weights + the KV cache read at the mean
context length, FLOPs = 2 * params * batch. transformers (a test dependency) is timed beside us. The last
column times the same call again through a `DecodeSession` that holds the first call's buffers and CUDA graphs
(what evaluate.py's blocks and `train_rl.py --keep-decode-graphs` rollouts do): it should capture nothing.

`--lengths mix`: each sample's output length is forced, as vLLM's throughput benchmark fixes each
request's output length. Lengths are log-normal with a median of 300 tokens and sigma 1.575, so that
5% reach the 4000-token cap: most MATH responses end within a few hundred tokens, and a base model
that rambles runs into the cap. On the CPU the same shape is scaled down 4x (median 75, cap 1000) so
that a run takes minutes, not hours. The weights are random except that token t makes token t-1 all but
certain (`countdown_model`), so a prompt ending in token L yields exactly L tokens, the last one token 0,
the EOS. The vocabulary must therefore exceed the cap (the toy shape gets 4096 tokens here). Reported:
useful (generated) tokens/s and the mean slot occupancy (useful decode work / rows x steps), for
continuous batching and for static batching (a new batch only when all rows are done), side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minireason.checkpoint import config_to_hf  # noqa: E402
from minireason.model import ModelConfig, build_model  # noqa: E402
from minireason.decode_state import DecodeSession  # noqa: E402
from minireason.sampler import SamplingParams, generate  # noqa: E402

SHAPES = {
    "toy": dict(model_type="llama", vocab_size=85, hidden_size=192, intermediate_size=512, num_hidden_layers=4,
                num_attention_heads=6, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True),
    "qwen2.5-0.5b": dict(model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, head_dim=64,
                         tie_word_embeddings=True, qkv_bias=True, rope_theta=1e6),
    "qwen2.5-1.5b": dict(model_type="qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                         num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, head_dim=128,
                         tie_word_embeddings=True, qkv_bias=True, rope_theta=1e6),
}
# (memory bandwidth bytes/s, dense bf16 FLOP/s) by device name fragment
PEAKS = {"H100": (3.35e12, 989e12), "H200": (4.8e12, 989e12), "A100": (2.0e12, 312e12), "4090": (1.0e12, 165e12)}
SIGMA = 1.575  # the length mix: P(length >= cap) = P(z >= ln(cap / median) / 1.575) = 5% for cap / median = 13.3


class IdTokenizer:
    """Ids in, ids out; `eos` is the one EOS id (outside the vocabulary: no row can end early)."""

    pad_id = 0

    def __init__(self, eos: int):
        self.eos_ids = [eos]

    def decode(self, ids, skip_special_tokens=True):
        return ""


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_generate(model, tok, prompts, params, stats=None, session=None) -> tuple[float, list]:
    generate(model, tok, [p[-8:] for p in prompts[:2]], replace(params, max_new_tokens=4))  # warm-up
    sync()
    t = time.perf_counter()
    out = generate(model, tok, prompts, params, stats=stats, session=session)
    sync()
    return time.perf_counter() - t, out


# ---------------------------------------------------------------------------------------------- fixed lengths


def decode_floor_ms(cfg: ModelConfig, params: int, batch: int, context: float, peaks) -> tuple[float, float]:
    bandwidth, flops = peaks
    kv_bytes = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 2 * context * batch
    return 1e3 * (2 * params + kv_bytes) / bandwidth, 1e3 * 2 * params * batch / flops


def time_transformers(cfg: ModelConfig, state, prompts, new_tokens, device, dtype) -> float:
    import transformers

    hf_cls = {"qwen2": transformers.Qwen2ForCausalLM, "llama": transformers.LlamaForCausalLM}[cfg.model_type]
    hf_cfg_cls = {"qwen2": transformers.Qwen2Config, "llama": transformers.LlamaConfig}[cfg.model_type]
    raw = {k: v for k, v in config_to_hf(cfg).items() if k != "architectures"}
    hf = hf_cls(hf_cfg_cls(**raw)).to(device=device, dtype=dtype).eval()
    hf.load_state_dict(state, strict=False)
    ids = torch.tensor(prompts, device=device)
    kwargs = dict(do_sample=True, temperature=0.9, top_k=50, top_p=1.0, max_new_tokens=new_tokens,
                  min_new_tokens=new_tokens, pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        hf.generate(ids[:2, :8], attention_mask=torch.ones_like(ids[:2, :8]),
                    **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})
        sync()
        t = time.perf_counter()
        out = hf.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        sync()
    assert out.shape[1] == ids.shape[1] + new_tokens
    return time.perf_counter() - t


def fixed_row(args, shape, cfg, model, batch, device_name) -> dict:
    prompts = torch.randint(1, cfg.vocab_size, (batch, args.prompt_len), generator=torch.Generator().manual_seed(0))
    prompts = prompts.tolist()
    params = SamplingParams(temperature=0.9, top_k=50, max_new_tokens=args.new_tokens, max_rows=1 << 20)
    stats = {}
    ours, out = timed_generate(model, IdTokenizer(cfg.vocab_size), prompts, params, stats)
    assert all(len(s.token_ids) == args.new_tokens for s in out)
    capture = stats["capture_seconds"]  # CUDA graphs captured in this call, inside the timed region
    ours -= capture  # decode time alone
    session, kept_stats = DecodeSession(), {}  # a second call through a session that holds the first call's graphs
    generate(model, IdTokenizer(cfg.vocab_size), prompts, params, session=session)
    kept, _ = timed_generate(model, IdTokenizer(cfg.vocab_size), prompts, params, kept_stats, session)
    del session
    theirs = None
    if not args.skip_transformers:
        device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
        theirs = time_transformers(cfg, model.state_dict(), prompts, args.new_tokens, device, dtype)
    tokens = batch * args.new_tokens
    row = {"device": device_name, "lengths": "fixed", "shape": shape, "batch": batch, "prompt": args.prompt_len,
           "new_tokens": args.new_tokens, "ours_tok_s": tokens / ours,
           "transformers_tok_s": tokens / theirs if theirs else None, "ours_ms_per_step": 1e3 * ours / args.new_tokens,
           "capture_s": capture, "graphs": stats["graphs"], "kept_graphs_tok_s": batch * args.new_tokens / kept,
           "kept_graphs_capture_s": kept_stats["capture_seconds"]}
    peaks = next((v for k, v in PEAKS.items() if k in device_name), None)
    if peaks:
        mem_ms, flop_ms = decode_floor_ms(cfg, model.num_params(), batch, args.prompt_len + args.new_tokens / 2, peaks)
        row["floor_ms"] = max(mem_ms, flop_ms)
    theirs_txt = f"{tokens / theirs:,.0f} | {theirs / ours:.1f}x" if theirs else "- | -"
    print(f"| {shape} | {batch} | {tokens / ours:,.0f} | {theirs_txt} | {row['ours_ms_per_step']:.2f} | "
          f"{row.get('floor_ms', float('nan')):.2f} | {capture:.2f} ({stats['graphs']}) | {tokens / kept:,.0f} "
          f"({kept_stats['capture_seconds']:.2f}) |", flush=True)
    return row


# ---------------------------------------------------------------------------------------------- the length mix


def countdown_model(cfg: ModelConfig, dtype, device) -> torch.nn.Module:
    """Random weights in which token t makes token t-1 all but certain (t >= 1; token 0 is the EOS).

    The embeddings are scaled up so that the residual stream is the input token's embedding plus small
    noise from the random blocks; lm_head's row t-1 is 5 x the unit vector of embedding t, a logit
    margin of about 5 sqrt(hidden) over any other token. The compute per token is a normal model's.
    """
    cfg = replace(cfg, tie_word_embeddings=False)
    model = build_model(cfg, dtype=torch.float32, seed=0)
    with torch.no_grad():
        emb = torch.randn(cfg.vocab_size, cfg.hidden_size, generator=torch.Generator().manual_seed(1))
        model.model.embed_tokens.weight.copy_(emb * 4)
        unit = emb / emb.norm(dim=-1, keepdim=True)
        model.lm_head.weight[:-1] = 5 * unit[1:]
    return model.to(device=device, dtype=dtype).eval()


def mix_lengths(samples: int, median: int, cap: int, seed: int = 0) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, generator=g, dtype=torch.float64)
    return [min(cap, max(1, round(median * math.exp(SIGMA * float(x))))) for x in z]


def mix_row(args, shape, cfg, batch, device, dtype, device_name) -> list[dict]:
    cap = args.cap
    cfg = replace(cfg, vocab_size=max(cfg.vocab_size, cap + 96))
    model = countdown_model(cfg, dtype, device)
    targets = mix_lengths(args.samples, args.median, cap)
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(cap + 1, cfg.vocab_size, (args.prompt_len - 1,), generator=g).tolist() + [n]
               for n in targets]
    rows = []
    for continuous in (True, False):
        params = SamplingParams(temperature=0.9, top_k=50, max_new_tokens=cap, max_rows=batch,
                                continuous=continuous)
        stats = {}  # the scheduler's own counts (a forward hook would not fire on a CUDA graph's replay)
        seconds, out = timed_generate(model, IdTokenizer(0), prompts, params, stats)
        useful = sum(len(s.token_ids) for s in out)
        exact = sum(len(s.token_ids) == n for s, n in zip(out, targets)) / len(out)
        row = {"device": device_name, "lengths": "mix", "shape": shape, "batch": batch, "samples": len(out),
               "schedule": "continuous" if continuous else "static", "useful_tok_s": useful / seconds,
               "occupancy": (useful - len(out)) / max(1, stats["row_steps"]), "seconds": seconds,
               "capture_s": stats["capture_seconds"], "graphs": stats["graphs"],
               "mean_length": useful / len(out), "lengths_as_forced": exact}
        print(f"| {shape} | {batch} | {row['schedule']} | {len(out)} | {row['mean_length']:.0f} | "
              f"{row['useful_tok_s']:,.0f} | {row['occupancy']:.2f} | {seconds:.1f} | {exact:.3f} | "
              f"{row['capture_s']:.2f} |", flush=True)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- profile


def profile(cfg, model, batch, args) -> None:
    """torch.profiler over a short fixed-length run; the top kernels (CUDA) or ops (CPU) by self time."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    prompts = torch.randint(1, cfg.vocab_size, (batch, args.prompt_len), generator=torch.Generator().manual_seed(0))
    params = SamplingParams(temperature=0.9, top_k=50, max_new_tokens=64, max_rows=1 << 20)
    tok = IdTokenizer(cfg.vocab_size)
    timed_generate(model, tok, prompts.tolist(), params)
    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch_profile(activities=activities) as prof:
        generate(model, tok, prompts.tolist(), params)
        sync()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=15, max_name_column_width=60))


def main(argv: list[str] | None = None) -> None:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=["qwen2.5-0.5b", "qwen2.5-1.5b"] if cuda
                    else ["toy"])
    ap.add_argument("--lengths", choices=["fixed", "mix"], default="fixed")
    ap.add_argument("--batches", nargs="+", type=int, default=[64, 256], help="rows decoding together")
    ap.add_argument("--samples", type=int, default=1024 if cuda else 256, help="samples of the length mix")
    ap.add_argument("--median", type=int, default=300 if cuda else 75, help="median length of the mix")
    ap.add_argument("--cap", type=int, default=4000 if cuda else 1000, help="max_new_tokens of the mix")
    ap.add_argument("--prompt-len", type=int, default=128 if cuda else 16)
    ap.add_argument("--new-tokens", type=int, default=512 if cuda else 128)
    ap.add_argument("--skip-transformers", action="store_true", help="time only our sampler")
    ap.add_argument("--profile", action="store_true", help="profile decode steps at the first shape and batch")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    name = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}, dtype {dtype}, torch {torch.__version__}; prompt {args.prompt_len}, T=0.9 top-k 50")
    if args.profile:
        cfg = ModelConfig(**SHAPES[args.shapes[0]], max_position_embeddings=8192)
        return profile(cfg, build_model(cfg, dtype=dtype, device=device, seed=0).eval(), args.batches[0], args)
    if args.lengths == "fixed":
        print(f"{args.new_tokens} new tokens (ours: decode time, graph capture apart)\n| shape | batch | ours tok/s | "
              "transformers tok/s | speed-up | ours ms/step | floor ms/step | capture s (graphs) | again, graphs "
              "kept: tok/s (capture s) |\n|---|---|---|---|---|---|---|---|---|")
    else:
        print(f"length mix: log-normal, median {args.median}, sigma {SIGMA}, cap {args.cap}\n| shape | rows | schedule "
              "| samples | mean length | useful tok/s | occupancy | seconds | lengths as forced "
              "| of which capture s |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for shape in args.shapes:
        cfg = ModelConfig(**SHAPES[shape], max_position_embeddings=8192)
        model = build_model(cfg, dtype=dtype, device=device, seed=0).eval() if args.lengths == "fixed" else None
        for batch in args.batches:  # the length mix builds its own rigged model (countdown_model)
            rows += ([fixed_row(args, shape, cfg, model, batch, name)] if model is not None
                     else mix_row(args, shape, cfg, batch, device, dtype, name))
        del model
        if cuda:
            torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
