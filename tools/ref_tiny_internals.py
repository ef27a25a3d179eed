#!/usr/bin/env python3
"""Intermediate references of the tiny models: the hook points of issue #2 (K and V written to the
cache before and after RoPE, the residual stream at every layer boundary), for sequence s1.

Runs on the device machine after tools/make_tiny_models.py, on the saved fp32 models, in float64
(stored float32). Writes, into each OUT/models/<case>/ (fp32 dirs only):
  internals_s1_hidden.npy  float32 [L+1, T, hidden]  row l < L: input of decoder layer l (residual
                           stream; row 0 is the embedding, times sqrt(hidden) for gemma2); row L:
                           input of the final norm
  internals_s1_k_pre.npy   float32 [L, T, Hkv*D]  key entering RoPE (after the q/k norm of qwen3 and
                           olmo2), per token the heads in order, each D wide
  internals_s1_k_post.npy  float32 [L, T, Hkv*D]  the same key after RoPE (what the cache stores)
  internals_s1_v.npy       float32 [L, T, Hkv*D]  value (what the cache stores)

Usage: python3 tools/ref_tiny_internals.py --models OUT/models
"""

import argparse
import importlib
import json
import os
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    args = ap.parse_args()
    with open(os.path.join(args.models, "manifest.json")) as f:
        mf = json.load(f)
    seq = mf["sequences"]["s1"]
    for name, case in mf["cases"].items():
        d = os.path.join(args.models, case["fp32"]["dir"])
        model = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
        model = model.eval().double()
        cfg = model.config
        mt = case["model_type"]
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        kv_dim = cfg.num_key_value_heads * head_dim
        layers = model.model.layers
        hidden, k_pre, k_post, v = [], [], [], []

        mod = importlib.import_module(f"transformers.models.{mt}.modeling_{mt}")
        orig_rope = mod.apply_rotary_pos_emb

        def rope_wrapper(q, k, cos, sin, *a, **kw):  # k: [B, Hkv, T, D]
            qo, ko = orig_rope(q, k, cos, sin, *a, **kw)
            k_pre.append(k[0].transpose(0, 1).reshape(k.shape[2], -1).clone())
            k_post.append(ko[0].transpose(0, 1).reshape(k.shape[2], -1).clone())
            return qo, ko

        def pre_hook(_m, inp, kwargs=None):
            x = inp[0] if inp else kwargs["hidden_states"]
            hidden.append(x[0].clone())

        def v_hook(_m, _inp, out):
            v.append((out[..., -kv_dim:] if mt == "phi3" else out)[0].clone())

        handles = [l.register_forward_pre_hook(pre_hook, with_kwargs=True) for l in layers]
        handles.append(model.model.norm.register_forward_pre_hook(pre_hook, with_kwargs=True))
        for l in layers:
            mod_v = l.self_attn.qkv_proj if mt == "phi3" else l.self_attn.v_proj
            handles.append(mod_v.register_forward_hook(v_hook))
        mod.apply_rotary_pos_emb = rope_wrapper
        try:
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0]
        finally:
            mod.apply_rotary_pos_emb = orig_rope
            for h in handles:
                h.remove()
        L = len(layers)
        assert len(hidden) == L + 1 and len(k_pre) == L and len(v) == L, (len(hidden), len(k_pre), len(v))
        ref = np.load(os.path.join(d, "logits_s1.npy"))
        rel = float(np.abs(logits.float().numpy() - ref).max() / np.abs(ref).max())
        assert rel < 1e-6, rel  # the hooks changed nothing
        for tag, xs in (("hidden", hidden), ("k_pre", k_pre), ("k_post", k_post), ("v", v)):
            a = torch.stack(xs).float().numpy()
            np.save(os.path.join(d, f"internals_s1_{tag}.npy"), a)
            print(name, tag, a.shape, f"absmax {np.abs(a).max():.3f}", flush=True)
        # RoPE must have moved the keys except at position 0
        kp, kq = torch.stack(k_pre), torch.stack(k_post)
        assert torch.allclose(kp[:, 0], kq[:, 0]) and not torch.allclose(kp[:, 1:], kq[:, 1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
