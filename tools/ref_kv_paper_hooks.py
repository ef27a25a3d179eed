#!/usr/bin/env python3
"""Reference for `--kv "k=int4:token:asym@pre;v=int4:token:asym"` (issue #5, Must show 1).

Reproduces the research code's method with transformers: forward hooks on the K and V projection
outputs replace them by their per-token asymmetric int4 fake-quantization (SPEC.md section 3):
  s = max((max - min) / (2^B - 1), 1e-8), z = clamp(round(-min / s), 0, 2^B - 1),
  q = clamp(round(x / s + z), 0, 2^B - 1), x' = (q - z) * s     (torch.round: half to even)
over all H*D channels of one token of one sequence. K is quantized before RoPE (`@pre`).

Where the hook sits per architecture (so that it equals our engine's `@pre`, the pre-RoPE key that
goes to the cache):
  llama, llama3, mistral, qwen2, gemma2: self_attn.k_proj / self_attn.v_proj outputs (the paper's hook)
  phi3:  self_attn.qkv_proj output; the K and V column slices are quantized separately
  qwen3: self_attn.k_norm output (the per-head q/k RMSNorm sits between k_proj and RoPE, so the
         literal k_proj hook would differ from `@pre`) and self_attn.v_proj
  olmo2: self_attn.k_norm output (RMSNorm over all H*D, between k_proj and RoPE) and v_proj
Computed in float32 (the arithmetic the engine uses) on the CPU, on the fp32 tiny models.

Usage: python3 tools/ref_kv_paper_hooks.py --models OUT/models --out OUT/kv_paper
Writes <case>_int4_token_asym.npy: float32 [7+19+33, V], the logits of s0, s1, s2 of
models/manifest.json stacked along rows (row offsets 0, 7, 26), and kv_paper/manifest.json.

`--hook k_proj --cases qwen3,olmo2` (issue 9 item 8) hooks the literal self_attn.k_proj output on
every architecture, the research code's hook point, which `--compat paper` reproduces for `@pre`
keys (before the k norm of qwen3/olmo2); it writes <case>_int4_token_asym_kproj.npy and
manifest_kproj.json instead.
"""

import argparse
import datetime
import json
import os
import platform
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

BITS = 4


def fake_quant_token_asym(x, bits=BITS):
    """x: [..., C] float32, one quantization group per row (one token, all H*D channels)."""
    qmax = 2 ** bits - 1
    lo = x.amin(dim=-1, keepdim=True)
    hi = x.amax(dim=-1, keepdim=True)
    s = ((hi - lo) / qmax).clamp_min(1e-8)
    z = torch.clamp(torch.round(-lo / s), 0, qmax)
    q = torch.clamp(torch.round(x / s + z), 0, qmax)
    return (q - z) * s


def quant_hook(_mod, _inp, out):
    shape = out.shape
    # k_norm of qwen3 returns [B, T, Hkv, D]: flatten the heads so the group is the whole token
    flat = out.reshape(shape[0], shape[1], -1)
    return fake_quant_token_asym(flat).reshape(shape)


def phi3_hook_factory(q_dim, kv_dim):
    def hook(_mod, _inp, out):
        q, k, v = out.split([q_dim, kv_dim, kv_dim], dim=-1)
        return torch.cat([q, fake_quant_token_asym(k), fake_quant_token_asym(v)], dim=-1)
    return hook


def install_hooks(model, model_type, hook="cache"):
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    handles = []
    for layer in model.model.layers:
        att = layer.self_attn
        if model_type == "phi3":
            h = phi3_hook_factory(cfg.num_attention_heads * head_dim, cfg.num_key_value_heads * head_dim)
            handles.append(att.qkv_proj.register_forward_hook(h))
            continue
        k_mod = att.k_norm if hook == "cache" and model_type in ("qwen3", "olmo2") else att.k_proj
        handles.append(k_mod.register_forward_hook(quant_hook))
        handles.append(att.v_proj.register_forward_hook(quant_hook))
    return handles


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hook", choices=["cache", "k_proj"], default="cache",
                    help="cache: the pre-RoPE key that enters the cache (k_norm output on qwen3/olmo2); "
                         "k_proj: the literal k_proj output (--compat paper)")
    ap.add_argument("--cases", default="", help="comma-separated cases (default: all)")
    args = ap.parse_args()
    suffix = "_kproj" if args.hook == "k_proj" else ""
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.models, "manifest.json")) as f:
        mf = json.load(f)
    seqs = [mf["sequences"][k] for k in sorted(mf["sequences"])]
    out = {
        "generator": "python3 tools/ref_kv_paper_hooks.py --models OUT/models --out OUT/kv_paper"
                     + (f" --hook {args.hook} --cases {args.cases}" if suffix else ""),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__},
        "kv_spec": "k=int4:token:asym@pre;v=int4:token:asym",
        "rows": {f"s{i}": [sum(len(s) for s in seqs[:i]), len(seqs[i])] for i in range(len(seqs))},
        "cases": {},
    }
    for name, case in mf["cases"].items():
        if args.cases and name not in args.cases.split(","):
            continue
        d = os.path.join(args.models, case["fp32"]["dir"])
        try:
            model = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
        except TypeError:
            model = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", torch_dtype=torch.float32)
        model.eval()
        with torch.no_grad():
            plain = [model(input_ids=torch.tensor([s]), use_cache=False).logits[0] for s in seqs]
            handles = install_hooks(model, case["model_type"], args.hook)
            quant = [model(input_ids=torch.tensor([s]), use_cache=False).logits[0] for s in seqs]
            for h in handles:
                h.remove()
            # the same in float64: how far rounding-boundary flips move the quantized reference
            model.double()
            handles = install_hooks(model, case["model_type"], args.hook)
            quant64 = torch.cat([model(input_ids=torch.tensor([s]), use_cache=False).logits[0] for s in seqs])
            for h in handles:
                h.remove()
        q = torch.cat(quant).float()
        p = torch.cat(plain).float()
        np.save(os.path.join(args.out, f"{name}_int4_token_asym{suffix}.npy"), q.numpy())
        # the quantized logits must differ clearly from the plain ones, or the test proves nothing
        ref = np.load(os.path.join(d, "logits_s0.npy"))
        st = {
            "hook": {"phi3": "qkv_proj (K, V slices)", "qwen3": "k_norm, v_proj",
                     "olmo2": "k_norm, v_proj"}.get(case["model_type"], "k_proj, v_proj")
                    if args.hook == "cache" else "k_proj, v_proj",
            "rel_diff_vs_unquantized": float((q - p).abs().max() / p.abs().max()),
            "fp32_vs_fp64_quantized_rel_diff": float((q.double() - quant64).abs().max() / quant64.abs().max()),
            "fp32_vs_fp64_quantized_top1_agreement": float((q.argmax(-1) == quant64.argmax(-1)).double().mean()),
            "top1_agreement_vs_unquantized": float((q.argmax(-1) == p.argmax(-1)).float().mean()),
            "plain_fp32_vs_models_ref_s0": float(np.abs(p[:len(seqs[0])].numpy() - ref).max() / np.abs(ref).max()),
        }
        out["cases"][name] = st
        print(name, st, flush=True)
    with open(os.path.join(args.out, f"manifest{suffix}.json"), "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
