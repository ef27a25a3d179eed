#!/usr/bin/env python3
"""Tiny random models of every supported architecture + transformers reference outputs.

Runs on the device machine (torch 2.11, transformers 5.17); everything is computed on its CPU so
that no TF32 or GPU kernel choice enters the references. Deterministic: fixed seeds per case.

Output (see tests/fixtures/models/README.md for the format):
  OUT/models/manifest.json
  OUT/models/<case>/        fp32 weights, config.json, config.v4.json, reference .npy files
  OUT/models/<case>-bf16/   the same weights rounded to bf16 and stored bf16, references computed
                            from those bf16 weights upcast (fp64 compute, stored float32)

Usage: python3 tools/make_tiny_models.py --out /tmp/fx [--cases llama,gemma2]
"""

import argparse
import copy
import datetime
import json
import math
import os
import platform
import sys
import traceback

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

# Small enough that all 16 model dirs stay near 2 MB, large enough for GQA (2 query heads per KV
# head), several RoPE frequency bands and a sliding window shorter than the test sequences.
VOCAB = 96
HIDDEN = 48
HEADS = 4
KV_HEADS = 2
FFN = 64
LAYERS = 2
SEQ_LENS = (7, 19, 33)  # s0, s1, s2; 19 and 33 exceed gemma2's sliding window (8)
GREEDY_PROMPT_LEN = 5
GREEDY_NEW = 12
TOKEN_SEED = 1234
SEED_TRIES = 30
MIN_DISTINCT = 6
MIN_MARGIN = 0.05

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=HIDDEN,
    intermediate_size=FFN,
    num_hidden_layers=LAYERS,
    num_attention_heads=HEADS,
    num_key_value_heads=KV_HEADS,
    max_position_embeddings=256,
    bos_token_id=None,
    eos_token_id=None,  # no EOS: greedy continuations never stop early
    pad_token_id=None,
)

# case -> (model_type, extra config kwargs, tied embeddings, what it exercises)
CASES = {
    "llama": ("llama", dict(rms_norm_eps=1e-5,
                            rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
              True, "SmolLM2-like llama, tied embeddings, default RoPE"),
    "llama3": ("llama", dict(rms_norm_eps=1e-5,
                             rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                              "original_max_position_embeddings": 256},
                             max_position_embeddings=2048),
               False, "llama3 rope scaling (head_dim 12: wavelengths 6.3, 29 kept, 135 smoothed, "
                      ">= 628 divided by 8), untied lm_head"),
    "mistral": ("mistral", dict(rms_norm_eps=1e-5, sliding_window=None,
                                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
                False, "mistral, no sliding window, theta 1e6, untied"),
    "qwen2": ("qwen2", dict(rms_norm_eps=1e-6, use_sliding_window=False,
                            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
              True, "qwen2 with q/k/v biases, tied"),
    "qwen3": ("qwen3", dict(rms_norm_eps=1e-6, head_dim=16, attention_bias=False, use_sliding_window=False,
                            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
              True, "qwen3 per-head q/k RMSNorm, head_dim 16 != hidden/heads (12), tied"),
    "phi3": ("phi3", dict(rms_norm_eps=1e-5, sliding_window=None,
                          rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
             False, "phi3 fused qkv_proj and gate_up_proj, untied"),
    "gemma2": ("gemma2", dict(rms_norm_eps=1e-6, head_dim=16, query_pre_attn_scalar=24, sliding_window=8,
                              attn_logit_softcapping=2.0, final_logit_softcapping=3.0,
                              hidden_activation="gelu_pytorch_tanh",
                              rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
               True, "gemma2: (1+w) RMSNorm, pre+post norms, gelu-tanh, sqrt(hidden) embedding scale, "
                     "attention softcap 2, final softcap 3, query_pre_attn_scalar 24 != head_dim 16 != hidden/heads, "
                     "sliding window 8 on layer 0, full attention on layer 1"),
    "olmo2": ("olmo2", dict(rms_norm_eps=1e-6,
                            rope_parameters={"rope_type": "default", "rope_theta": 500000.0}),
              False, "olmo2: post-norms, q/k RMSNorm over all heads (H*D), untied"),
}


def log(*a):
    print(*a, flush=True)


def make_config(model_type, extra, tied):
    kw = dict(COMMON)
    kw.update(extra)
    kw["tie_word_embeddings"] = tied
    try:
        return AutoConfig.for_model(model_type, **kw)
    except Exception as e:  # transformers-4.x style fallback (rope_theta / rope_scaling at top level)
        log(f"  config with rope_parameters failed ({e!r}); retrying legacy keys")
        rp = dict(kw.pop("rope_parameters"))
        kw["rope_theta"] = rp.pop("rope_theta")
        if rp.get("rope_type", "default") != "default":
            kw["rope_scaling"] = rp
        return AutoConfig.for_model(model_type, **kw)


def build_model(cfg):
    try:
        return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    except TypeError:
        return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", torch_dtype=torch.float32)


def reinit(model, model_type, seed):
    """Non-trivial random weights: activations O(1), non-unit norms, non-zero biases.

    The residual stream must not be dominated by the token's own embedding, or tied models just
    repeat their last input token: embeddings are smaller than the sublayer outputs (o_proj and
    down_proj get 2/sqrt(fan_in)); gemma2 multiplies embeddings by sqrt(hidden), hence its 0.15.
    """
    g = torch.Generator().manual_seed(seed)
    emb_std = 0.15 if model_type == "gemma2" else 0.5
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied lm_head appears once (as embed_tokens)
            if p.dim() == 2 and "embed_tokens" in name:
                val = torch.randn(p.shape, generator=g) * emb_std
            elif p.dim() == 2 and ("lm_head" in name or "o_proj" in name or "down_proj" in name):
                val = torch.randn(p.shape, generator=g) * (2.0 / math.sqrt(p.shape[1]))
            elif p.dim() == 2:
                val = torch.randn(p.shape, generator=g) * (1.0 / math.sqrt(p.shape[1]))
            elif "norm" in name:
                # gemma2 stores w of (1 + w): effective scale 1 + 0.3 randn in both cases
                base = 0.0 if model_type == "gemma2" else 1.0
                val = base + 0.3 * torch.randn(p.shape, generator=g)
            elif "bias" in name:
                val = 0.2 * torch.randn(p.shape, generator=g)
            else:
                raise RuntimeError(f"unhandled parameter {name} {tuple(p.shape)}")
            p.copy_(val.to(p.dtype))


def load(path, dtype=torch.float32):
    try:
        m = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=dtype)
    except TypeError:
        m = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", torch_dtype=dtype)
    return m.eval()


@torch.no_grad()
def logits_of(model, ids):
    x = torch.tensor([ids], dtype=torch.long)
    return model(input_ids=x, use_cache=False).logits[0]  # [T, V]


@torch.no_grad()
def greedy(model, prompt, n_new):
    """Full recompute per step (no cache): the plain definition of greedy decoding."""
    ids = list(prompt)
    margins = []
    for _ in range(n_new):
        last = logits_of(model, ids)[-1]
        top2 = torch.topk(last, 2).values
        margins.append(float(top2[0] - top2[1]))
        ids.append(int(torch.argmax(last)))
    return ids[len(prompt):], margins


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


def references(model_dir, seqs, prompt, out_dir):
    """Writes logits_s*.npy, greedy_*.npy for the model stored in model_dir; returns stats."""
    m32 = load(model_dir, torch.float32)
    m64 = copy.deepcopy(m32).double()
    stats = {}
    worst = 0.0
    for i, s in enumerate(seqs):
        r64 = logits_of(m64, s)
        r32 = logits_of(m32, s).double()
        worst = max(worst, rel_err(r32, r64))
        np.save(os.path.join(out_dir, f"logits_s{i}.npy"), r64.float().numpy())
    new64, margins = greedy(m64, prompt, GREEDY_NEW)
    new32, _ = greedy(m32, prompt, GREEDY_NEW)
    full = prompt + new64
    gl = logits_of(m64, full[:-1]).float().numpy()  # [prompt+11, V]
    np.save(os.path.join(out_dir, "greedy_new_ids.npy"), np.asarray(new64, dtype=np.int32))
    np.save(os.path.join(out_dir, "greedy_logits.npy"), gl)
    hf_gen = None
    try:
        out = m32.generate(torch.tensor([prompt]), max_new_tokens=GREEDY_NEW, min_new_tokens=GREEDY_NEW,
                           do_sample=False, eos_token_id=None, pad_token_id=0)
        hf_gen = [int(t) for t in out[0, len(prompt):]]
    except Exception as e:
        log(f"  generate() failed: {e!r}")
    if m32.config.model_type == "gemma2":
        # which keys does the last query of s2 see in the sliding layer 0 (documents the window rule)
        with torch.no_grad():
            att = m32(input_ids=torch.tensor([seqs[2]]), use_cache=False, output_attentions=True).attentions
        seen = (att[0][0, :, -1, :].abs().sum(0) > 0).nonzero().flatten().tolist()
        stats["sliding_layer0_last_query_sees_keys"] = seen
        stats["full_layer1_last_query_sees_n_keys"] = int((att[1][0, :, -1, :].abs().sum(0) > 0).sum())
        log(f"  sliding layer 0, query {len(seqs[2]) - 1} sees keys {seen}")
    stats.update(
        greedy_distinct_tokens=len(set(new64)),
        fp32_vs_fp64_max_rel_err=worst,
        greedy_new_ids=new64,
        greedy_fp32_agrees=(new32 == new64),
        hf_generate_fp32_agrees=(hf_gen == new64) if hf_gen is not None else None,
        greedy_min_top1_margin=min(margins),
        logit_absmax=[float(np.abs(np.load(os.path.join(out_dir, f"logits_s{i}.npy"))).max())
                      for i in range(len(seqs))],
    )
    return stats


def v4_config(cfg):
    """The same config in transformers-4.x key style: rope_theta/rope_scaling top level, torch_dtype."""
    c = dict(cfg)
    rp = c.pop("rope_parameters", None)
    if rp:
        rp = dict(rp)
        c["rope_theta"] = rp.pop("rope_theta")
        if "partial_rotary_factor" in rp:
            c["partial_rotary_factor"] = rp.pop("partial_rotary_factor")
        if rp.get("rope_type", "default") != "default":
            c["rope_scaling"] = rp
        else:
            c["rope_scaling"] = None
    c.pop("layer_types", None)
    if "dtype" in c:
        c["torch_dtype"] = c.pop("dtype")
    c["transformers_version"] = "4.46.0"
    return c


def run_case(name, seqs, prompt, out_root):
    model_type, extra, tied, what = CASES[name]
    cfg = make_config(model_type, extra, tied)
    # Random models often fall into repeating one token; take the first seed (fixed order) whose
    # fp32 greedy continuation has >= MIN_DISTINCT distinct tokens and a top-1 margin >= MIN_MARGIN
    # at every step, so that the greedy fixture tests something; else the best one seen.
    best = None
    for attempt in range(SEED_TRIES):
        seed = 1000 + 100 * attempt + sorted(CASES).index(name)
        torch.manual_seed(seed)
        model = build_model(cfg).eval()
        reinit(model, model_type, seed)
        new, margins = greedy(model, prompt, GREEDY_NEW)
        score = (len(set(new)) >= MIN_DISTINCT and min(margins) >= MIN_MARGIN, len(set(new)), min(margins))
        if best is None or score > best[0]:
            best = (score, seed, model)
        if score[0]:
            break
    (_, n_distinct, margin), seed, model = best
    log(f"  seed {seed} after {attempt + 1} tries: {n_distinct} distinct greedy tokens, margin {margin:.3f}")
    d32 = os.path.join(out_root, name)
    d16 = os.path.join(out_root, name + "-bf16")
    model.save_pretrained(d32)
    # round trip check: what is on disk is what we computed with
    back = load(d32)
    sd_a, sd_b = model.state_dict(), back.state_dict()
    for k in sd_a:
        if not torch.equal(sd_a[k], sd_b[k]):
            raise RuntimeError(f"{name}: save/load mismatch in {k}")
    back.to(torch.bfloat16).save_pretrained(d16)
    with open(os.path.join(d32, "config.json")) as f:
        cfg_json = json.load(f)
    with open(os.path.join(d32, "config.v4.json"), "w") as f:
        json.dump(v4_config(cfg_json), f, indent=2, sort_keys=True)
    log(f"  config: {json.dumps(cfg_json, sort_keys=True)}")
    log("  params: " + ", ".join(f"{k}{tuple(v.shape)}" for k, v in model.state_dict().items()))
    st32 = references(d32, seqs, prompt, d32)
    st16 = references(d16, seqs, prompt, d16)
    return {
        "model_type": model_type,
        "exercises": what,
        "tied_embeddings": tied,
        "seed": seed,
        "seed_selection": f"first of 1000 + 100 k + case index (k < {SEED_TRIES}) with >= {MIN_DISTINCT} distinct "
                          f"greedy tokens and top-1 margin >= {MIN_MARGIN}",
        "fp32": {"dir": name, **st32},
        "bf16": {"dir": name + "-bf16", **st16},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    torch.use_deterministic_algorithms(True)
    out_root = os.path.join(args.out, "models")
    os.makedirs(out_root, exist_ok=True)

    rng = np.random.default_rng(TOKEN_SEED)
    seqs = [[int(t) for t in rng.integers(0, VOCAB, n)] for n in SEQ_LENS]
    prompt = [int(t) for t in rng.integers(0, VOCAB, GREEDY_PROMPT_LEN)]

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__, "numpy": np.__version__}
    try:
        import safetensors
        versions["safetensors"] = safetensors.__version__
    except Exception:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    manifest = {
        "generator": "python3 tools/make_tiny_models.py --out OUT (then copy OUT/models to tests/fixtures/models)",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "device": f"device machine ({gpu}); references computed on its CPU, {platform.machine()}",
        "versions": versions,
        "shape": {"vocab": VOCAB, "hidden": HIDDEN, "heads": HEADS, "kv_heads": KV_HEADS, "ffn": FFN,
                  "layers": LAYERS},
        "sequences": {f"s{i}": s for i, s in enumerate(seqs)},
        "greedy": {"prompt": prompt, "n_new": GREEDY_NEW},
        "rel_err": "max over all [T, V] elements of |engine - ref| / max over all elements of |ref|, per file",
        "cases": {},
        "failed": {},
    }
    log(f"versions {versions} gpu {gpu}")
    for name in args.cases.split(","):
        log(f"== {name}")
        try:
            manifest["cases"][name] = run_case(name, seqs, prompt, out_root)
            c = manifest["cases"][name]
            for k in ("fp32", "bf16"):
                s = c[k]
                log(f"  {k}: fp32-vs-fp64 {s['fp32_vs_fp64_max_rel_err']:.2e} greedy {s['greedy_new_ids']} ({s['greedy_distinct_tokens']} distinct) "
                    f"fp32 agrees {s['greedy_fp32_agrees']} hf.generate agrees {s['hf_generate_fp32_agrees']} "
                    f"min margin {s['greedy_min_top1_margin']:.3f} |logit|max {s['logit_absmax']}")
        except Exception:
            tb = traceback.format_exc()
            log(tb)
            manifest["failed"][name] = tb.splitlines()[-1]
    with open(os.path.join(out_root, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    log(f"done: {len(manifest['cases'])} ok, failed: {list(manifest['failed'])}")
    return 0 if not manifest["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
