#!/usr/bin/env python3
"""transformers' greedy generation at one of tools/cuda_configs' shapes, for `kvaudit bench` beside it
(issue 10, must-show 3; runs on the device machine: torch + transformers, one GPU).

Random bf16 weights made on the GPU, seeded random prompts of --prompt-len tokens, `generate` with
do_sample=False and exactly --gen new tokens per sequence, static batches. With --int4-hooks, forward
hooks on every k_proj/v_proj fake-quantize their outputs per token, asymmetric int4 (what the research
code does to simulate a quantized KV cache). Prints one JSON line per batch size: the whole call's
wall time (prefill included) and generated tokens per second.

    python3 tools/bench_transformers.py --config tools/cuda_configs/llama-3.1-8b --batch 1,64,256 \
        --prompt-len 96 --gen 256 [--int4-hooks]
"""
import argparse
import json
import time

import torch
import transformers


def int4_token_asym(out):
    lo = out.amin(dim=-1, keepdim=True)
    hi = out.amax(dim=-1, keepdim=True)
    s = ((hi - lo) / 15).clamp(min=1e-8)
    z = torch.round(-lo / s).clamp(0, 15)
    return ((torch.round(out / s) + z).clamp(0, 15) - z) * s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", default="1,64")
    ap.add_argument("--prompt-len", type=int, default=96)
    ap.add_argument("--gen", type=int, default=256)
    ap.add_argument("--int4-hooks", action="store_true")
    a = ap.parse_args()
    cfg = transformers.AutoConfig.from_pretrained(a.config)
    torch.manual_seed(0)
    t0 = time.time()
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.eval()
    if a.int4_hooks:
        for name, mod in model.named_modules():
            if name.endswith("k_proj") or name.endswith("v_proj"):
                mod.register_forward_hook(lambda m, i, o: int4_token_asym(o.float()).to(o.dtype))
    print(json.dumps({"model": a.config, "transformers": transformers.__version__, "torch": torch.__version__,
                      "gpu": torch.cuda.get_device_name(), "init_s": round(time.time() - t0, 1),
                      "int4_hooks": a.int4_hooks}), flush=True)
    for b in [int(x) for x in a.batch.split(",")]:
        ids = torch.randint(0, cfg.vocab_size, (b, a.prompt_len), device="cuda")
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            model.generate(ids[:, :8], attention_mask=mask[:, :8], max_new_tokens=2, do_sample=False, pad_token_id=0)
            torch.cuda.synchronize()
            t = time.time()
            out = model.generate(ids, attention_mask=mask, max_new_tokens=a.gen, min_new_tokens=a.gen,
                                 do_sample=False, pad_token_id=0)
            torch.cuda.synchronize()
        dt = time.time() - t
        new = (out.shape[1] - a.prompt_len) * b
        print(json.dumps({"batch": b, "prompt_len": a.prompt_len, "gen": a.gen, "wall_s": round(dt, 2),
                          "generated_tok_s": round(new / dt, 1)}), flush=True)


if __name__ == "__main__":
    main()
