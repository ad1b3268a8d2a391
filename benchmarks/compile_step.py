"""torch.compile of the decode step, tried and measured: the sampler with the model's forward compiled against the
same sampler eager, on the same prompts and seed.

    python benchmarks/compile_step.py                                  # the shipped toy-base, CPU
    python benchmarks/compile_step.py --shape qwen2.5-0.5b --layers 2  # random weights at a real layer shape
    python benchmarks/compile_step.py --shape qwen2.5-0.5b --device cuda --rows 256

`generate` calls `model(...)` once per decode step (prefill runs `hidden_states`, never compiled), so compiling the
module compiles exactly the step: `torch.compile(model, dynamic=True)`, since the slots a step reads grow by one each
step (a static compile would recompile at every length). Eager and compiled runs alternate, so a machine's load
falls on both alike; the compile's own seconds are the first compiled call's, reported apart. Same seed, same
tokens expected: the script counts the samples whose tokens differ. On CUDA the compiled step replaces the
sampler's CUDA graphs (`SamplingParams.cuda_graph=False` for both runs: the graphs capture an eager step).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.sampler import SHAPES, IdTokenizer, sync  # noqa: E402
from minireason.checkpoint import load_pretrained, resolve_model_dir  # noqa: E402
from minireason.model import ModelConfig, build_model  # noqa: E402
from minireason.sampler import SamplingParams, generate  # noqa: E402
from minireason.tasks import toy_split  # noqa: E402
from minireason.tokenizer import Tokenizer  # noqa: E402


def workload(args) -> tuple[torch.nn.Module, object, list, int]:
    """(model, tokenizer, prompts, new tokens): toy questions for the shipped toy-base, random ids otherwise."""
    if args.shape == "toy-base":
        folder = resolve_model_dir("toy-base")
        model, tok = load_pretrained(folder, device=args.device), Tokenizer.from_dir(folder)
        return model, tok, [p.question for p in toy_split("test")[: args.rows // 8]], args.new_tokens or 240
    cfg = ModelConfig(**{**SHAPES[args.shape], "num_hidden_layers": args.layers}, max_position_embeddings=1024)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    model = build_model(cfg, seed=0, device=args.device, dtype=dtype)
    prompts = torch.randint(1, cfg.vocab_size, (args.rows // 8, 64), generator=torch.Generator().manual_seed(0))
    return model, IdTokenizer(eos=cfg.vocab_size), prompts.tolist(), args.new_tokens or 128


def timed(model, tok, prompts, params) -> tuple[float, list]:
    sync()
    t = time.perf_counter()
    out = generate(model, tok, prompts, params)
    sync()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="toy-base", choices=["toy-base", *SHAPES])
    ap.add_argument("--layers", type=int, default=2, help="layers of a random-weight shape")
    ap.add_argument("--rows", type=int, default=256, help="samples per call (8 per prompt)")
    ap.add_argument("--new-tokens", type=int, help="max new tokens (default: 240 toy, 128 random weights)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    model, tok, prompts, new_tokens = workload(args)
    params = SamplingParams(n=8, temperature=1.0, max_new_tokens=new_tokens, seed=1, cuda_graph=False)
    compiled = torch.compile(model, dynamic=True)
    first, _ = timed(compiled, tok, prompts, params)
    eager_s, compiled_s, differ = [], [], 0
    for _ in range(args.repeats):
        t_eager, out_eager = timed(model, tok, prompts, params)
        t_compiled, out_compiled = timed(compiled, tok, prompts, params)
        eager_s.append(t_eager)
        compiled_s.append(t_compiled)
        differ += sum(a.token_ids != b.token_ids for a, b in zip(out_eager, out_compiled))
    tokens = sum(len(s.token_ids) for s in out_eager)
    best_eager, best_compiled = min(eager_s), min(compiled_s)
    print(f"{args.shape} on {args.device} ({torch.get_num_threads()} threads), {len(out_eager)} samples, "
          f"{tokens} tokens a call; best of {args.repeats}:")
    print(f"  eager     {best_eager:.2f} s  ({tokens / best_eager:,.0f} tok/s)")
    print(f"  compiled  {best_compiled:.2f} s  ({tokens / best_compiled:,.0f} tok/s): "
          f"{best_eager / best_compiled:.2f}x eager; the first call, compile included, {first:.1f} s")
    print(f"  samples whose tokens differ from eager: {differ} of {args.repeats * len(out_eager)}")


if __name__ == "__main__":
    main()
