#!/usr/bin/env python3
"""Self-consistency checks of the reference fixtures (no torch, no numpy: standard library only).

    python3 tools/check_fixtures.py [--root tests/fixtures]

Checks tests/fixtures/models, kv_paper, smollm2 and qwen_coder against their manifests and against
each other: shapes, finiteness, safetensors headers vs config (dtype, tied embeddings, shapes), 4.x/5.x config
equivalence, greedy ids == argmax of the stored logits, top-k consistency with the full rows, and
that the KV-quantized logits differ clearly from the plain ones. Prints one line per failure and
'N passed, M failed' last; exit status 1 on any failure.
"""

import argparse
import array
import ast
import json
import math
import os
import struct
import sys

_NPY_TYPES = {"<f4": "f", "<i4": "i"}


def load_npy(path):
    """Returns (shape, flat list) of a little-endian float32/int32 C-order .npy file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file")
    major = data[6]
    if major == 1:
        hlen = struct.unpack("<H", data[8:10])[0]
        off = 10
    else:
        hlen = struct.unpack("<I", data[8:12])[0]
        off = 12
    header = ast.literal_eval(data[off:off + hlen].decode("latin1"))
    if header["fortran_order"] or header["descr"] not in _NPY_TYPES:
        raise ValueError(f"{path}: unsupported header {header}")
    arr = array.array(_NPY_TYPES[header["descr"]])
    arr.frombytes(data[off + hlen:])
    shape = tuple(header["shape"])
    if math.prod(shape) != len(arr):
        raise ValueError(f"{path}: {len(arr)} values for shape {shape}")
    return shape, arr


def rows(shape, flat):
    n = shape[-1]
    return [flat[i * n:(i + 1) * n] for i in range(len(flat) // n)]


def argmax(row):
    return max(range(len(row)), key=lambda i: (row[i], -i))


def safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}")


def check_models(c, root):
    d = os.path.join(root, "models")
    with open(os.path.join(d, "manifest.json")) as f:
        mf = json.load(f)
    seqs = [mf["sequences"][k] for k in sorted(mf["sequences"])]
    prompt, n_new = mf["greedy"]["prompt"], mf["greedy"]["n_new"]
    vocab = mf["shape"]["vocab"]
    c.check(not mf["failed"], f"models: generator reported failures {mf['failed']}")
    plain = {}
    for name, case in mf["cases"].items():
        for kind, st_dtype in (("fp32", "F32"), ("bf16", "BF16")):
            cd = os.path.join(d, case[kind]["dir"])
            with open(os.path.join(cd, "config.json")) as f:
                cfg = json.load(f)
            c.check(cfg["model_type"] == case["model_type"], f"{cd}: model_type")
            c.check(cfg["vocab_size"] == vocab, f"{cd}: vocab_size")
            hdr = safetensors_header(os.path.join(cd, "model.safetensors"))
            tensors = {k: v for k, v in hdr.items() if k != "__metadata__"}
            c.check(all(v["dtype"] == st_dtype for v in tensors.values()), f"{cd}: tensor dtypes not {st_dtype}")
            emb = tensors.get("model.embed_tokens.weight")
            c.check(emb is not None and emb["shape"] == [vocab, cfg["hidden_size"]], f"{cd}: embed shape")
            c.check(("lm_head.weight" in tensors) != case["tied_embeddings"], f"{cd}: lm_head vs tied")
            all_rows = []
            for i, s in enumerate(seqs):
                shape, flat = load_npy(os.path.join(cd, f"logits_s{i}.npy"))
                c.check(shape == (len(s), vocab), f"{cd}/logits_s{i}: shape {shape}")
                c.check(all(math.isfinite(x) for x in flat), f"{cd}/logits_s{i}: non-finite")
                all_rows += rows(shape, flat)
            plain[(name, kind)] = all_rows
            _, ids = load_npy(os.path.join(cd, "greedy_new_ids.npy"))
            c.check(list(ids) == case[kind]["greedy_new_ids"] and len(ids) == n_new, f"{cd}: greedy ids vs manifest")
            shape, flat = load_npy(os.path.join(cd, "greedy_logits.npy"))
            c.check(shape == (len(prompt) + n_new - 1, vocab), f"{cd}/greedy_logits: shape {shape}")
            am = [argmax(r) for r in rows(shape, flat)[len(prompt) - 1:]]
            c.check(am == list(ids), f"{cd}: greedy ids != argmax of greedy_logits")
            c.check(case[kind]["fp32_vs_fp64_max_rel_err"] < 1e-5, f"{cd}: reference noise too large")
        cd = os.path.join(d, case["fp32"]["dir"])
        with open(os.path.join(cd, "config.json")) as f:
            cfg = json.load(f)
        n_layers, hid = cfg["num_hidden_layers"], cfg["hidden_size"]
        kv = cfg["num_key_value_heads"] * (cfg.get("head_dim") or hid // cfg["num_attention_heads"])
        t1 = len(seqs[1])
        want = {"hidden": (n_layers + 1, t1, hid), "k_pre": (n_layers, t1, kv), "k_post": (n_layers, t1, kv),
                "v": (n_layers, t1, kv)}
        inter = {}
        for tag, shp in want.items():
            shape, flat = load_npy(os.path.join(cd, f"internals_s1_{tag}.npy"))
            c.check(shape == shp and all(math.isfinite(x) for x in flat), f"{cd}/internals_s1_{tag}: {shape}")
            inter[tag] = flat
        # RoPE is the identity at position 0 and moves every later key
        per_t = kv
        pre, post = inter["k_pre"], inter["k_post"]
        c.check(all(pre[l * t1 * kv + i] == post[l * t1 * kv + i] or abs(pre[l * t1 * kv + i] - post[l * t1 * kv + i]) < 1e-6
                    for l in range(n_layers) for i in range(per_t)), f"{cd}: RoPE not identity at position 0")
        c.check(max(abs(a - b) for a, b in zip(pre, post)) > 0.1, f"{cd}: k_post == k_pre")
        # fp32 and bf16 weights are the same model up to bf16 rounding: close, not equal
        a, b = plain[(name, "fp32")], plain[(name, "bf16")]
        diff = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
        scale = max(abs(x) for r in a for x in r)
        c.check(0 < diff / scale < 0.1, f"{name}: fp32 vs bf16 logits rel diff {diff / scale:.3g}")
        v4p = os.path.join(d, case["fp32"]["dir"], "config.v4.json")
        with open(v4p) as f:
            v4 = json.load(f)
        with open(os.path.join(d, case["fp32"]["dir"], "config.json")) as f:
            v5 = json.load(f)
        rp = v5["rope_parameters"]
        c.check("rope_parameters" not in v4 and v4["rope_theta"] == rp["rope_theta"], f"{v4p}: rope_theta")
        if rp.get("rope_type", "default") != "default":
            c.check(v4.get("rope_scaling", {}).get("rope_type") == rp["rope_type"], f"{v4p}: rope_scaling")
    return mf, plain


def check_kv_paper(c, root, models_mf, plain):
    d = os.path.join(root, "kv_paper")
    with open(os.path.join(d, "manifest.json")) as f:
        mf = json.load(f)
    n_rows = sum(len(s) for s in models_mf["sequences"].values())
    vocab = models_mf["shape"]["vocab"]
    c.check(set(mf["cases"]) == set(models_mf["cases"]), "kv_paper: cases differ from models")
    for name, st in mf["cases"].items():
        shape, flat = load_npy(os.path.join(d, f"{name}_int4_token_asym.npy"))
        c.check(shape == (n_rows, vocab), f"kv_paper/{name}: shape {shape}")
        c.check(all(math.isfinite(x) for x in flat), f"kv_paper/{name}: non-finite")
        q = rows(shape, flat)
        p = plain[(name, "fp32")]
        diff = max(abs(x - y) for rq, rp in zip(q, p) for x, y in zip(rq, rp))
        scale = max(abs(x) for r in p for x in r)
        rel = diff / scale
        c.check(rel > 0.05, f"kv_paper/{name}: quantized logits barely differ from plain ({rel:.3g})")
        c.check(abs(rel - st["rel_diff_vs_unquantized"]) < 1e-3 * max(1.0, rel),
                f"kv_paper/{name}: rel diff {rel:.4g} vs manifest {st['rel_diff_vs_unquantized']:.4g}")
        c.check(st["fp32_vs_fp64_quantized_top1_agreement"] == 1.0, f"kv_paper/{name}: unstable top-1")


def check_gguf_ref(c, root, sub, sha):
    d = os.path.join(root, sub)
    with open(os.path.join(d, "manifest.json")) as f:
        mf = json.load(f)
    T, V = len(mf["prompt_ids"]), mf["vocab"]
    ids_shape, ids = load_npy(os.path.join(d, "topk_ids.npy"))
    val_shape, vals = load_npy(os.path.join(d, "topk_logits.npy"))
    c.check(ids_shape == val_shape and ids_shape[0] == T, f"{sub}: top-k shapes {ids_shape} {val_shape}")
    k = ids_shape[1]
    ok = all(vals[t * k + j] >= vals[t * k + j + 1] for t in range(T) for j in range(k - 1))
    c.check(ok, f"{sub}: top-k logits not descending")
    pos = mf["full_positions"]
    full_shape, full = load_npy(os.path.join(d, "full_logits.npy")) if pos else ((0, V), [])
    c.check(full_shape == (len(pos), V), f"{sub}: full_logits shape {full_shape}")
    for i, p in enumerate(pos):
        row = full[i * V:(i + 1) * V]
        top = sorted(range(V), key=lambda j: -row[j])[:k]
        c.check(list(ids[p * k:(p + 1) * k])[:8] == top[:8], f"{sub}: top-k ids at position {p} vs full row")
        c.check(all(row[ids[p * k + j]] == vals[p * k + j] for j in range(k)), f"{sub}: top-k values at {p}")
    _, new = load_npy(os.path.join(d, "greedy_new_ids.npy"))
    c.check(list(new) == mf["greedy_new_ids"], f"{sub}: greedy ids vs manifest")
    c.check(mf["topk_ids"] == [list(ids[t * k:(t + 1) * k]) for t in range(T)], f"{sub}: topk_ids vs manifest")
    c.check(ids[(T - 1) * k] == new[0], f"{sub}: first greedy token != argmax at the last prompt position")
    c.check(mf["gguf_sha256"] == sha, f"{sub}: gguf sha256")
    c.check(mf["hf_generate_fp32_agrees"] is True and mf["greedy_nocache_agrees"] is True,
            f"{sub}: greedy cross-checks")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--root", default=os.path.join(here, "..", "tests", "fixtures"))
    args = ap.parse_args()
    c = Checker()
    models_mf, plain = check_models(c, args.root)
    check_kv_paper(c, args.root, models_mf, plain)
    check_gguf_ref(c, args.root, "smollm2", "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
    check_gguf_ref(c, args.root, "qwen_coder", "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
