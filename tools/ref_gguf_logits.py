#!/usr/bin/env python3
"""Reference logits of a GGUF model from transformers (issue #2, Must show 2): SmolLM2-135M-Instruct
(Q4_1) and Qwen2.5-Coder-1.5B-Instruct (Q4_K_M).

transformers dequantizes every GGUF tensor to float32 (through the gguf package) and reverses
llama.cpp's Q/K row permutation; the forward runs on the CPU in float64 (stored float32) with a
float32 cross-check. Runs on the device machine with the `gguf` wheel carried.

Usage: python3 tools/ref_gguf_logits.py --gguf /tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf --out DIR
       [--prompt TEXT] [--n-new 32] [--full-rows 4]
Writes (see tests/fixtures/smollm2/README.md):
  DIR/manifest.json       prompt text, token ids, positions, greedy ids/text, versions, stats
  DIR/topk_ids.npy        int32   [T, 64]   per position, ids of the 64 largest logits (descending)
  DIR/topk_logits.npy     float32 [T, 64]   their logits
  DIR/full_logits.npy     float32 [R, V]    all logits at manifest["full_positions"] (R = --full-rows,
                                            first, evenly spaced, last; none when 0)
  DIR/greedy_new_ids.npy  int32   [N]       greedy continuation (EOS not honoured), N = --n-new
"""

import argparse
import copy
import datetime
import hashlib
import json
import os
import platform
import sys
import traceback

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

TOPK = 64


@torch.no_grad()
def logits_of(model, ids):
    return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--prompt", default="Write a short poem about the sea.")
    ap.add_argument("--n-new", type=int, default=32)
    ap.add_argument("--full-rows", type=int, default=4)
    args = ap.parse_args()
    N_NEW = args.n_new
    torch.set_num_threads(min(16, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    gdir, gname = os.path.split(args.gguf)
    h = hashlib.sha256()
    with open(args.gguf, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    import gguf
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__, "numpy": np.__version__,
                "gguf": getattr(gguf, "__version__", "0.19.0 (wheel)")}
    print(versions, flush=True)
    mf = {
        "generator": f"python3 tools/ref_gguf_logits.py --gguf {os.path.basename(args.gguf)} --out OUT "
                     f"--prompt {args.prompt!r} --n-new {args.n_new} --full-rows {args.full_rows}",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "device": "device machine, CPU (" + platform.machine() + ")",
        "versions": versions,
        "gguf_file": gname,
        "gguf_sha256": h.hexdigest(),
    }
    try:
        tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
        text = tok.apply_chat_template([{"role": "user", "content": args.prompt}], tokenize=False,
                                       add_generation_prompt=True)
        ids = tok.encode(text, add_special_tokens=False)
        mf["prompt_text"] = text
        mf["tokenizer"] = "AutoTokenizer.from_pretrained(dir, gguf_file=...) + apply_chat_template"
    except Exception:
        traceback.print_exc()
        tok = None
        ids = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411,
               407, 19712, 8182, 2, 198, 1, 4093, 198]
        mf["prompt_text"] = None
        mf["tokenizer"] = "FAILED; fixed ids used"
    mf["prompt_ids"] = ids
    print("prompt", repr(mf["prompt_text"]), ids, flush=True)

    try:
        m32 = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, dtype=torch.float32)
    except TypeError:
        m32 = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, torch_dtype=torch.float32)
    m32.eval()
    mf["hf_config"] = m32.config.to_dict()
    m64 = copy.deepcopy(m32).double()
    r64 = logits_of(m64, ids)
    r32 = logits_of(m32, ids).double()
    mf["fp32_vs_fp64_max_rel_err"] = float((r32 - r64).abs().max() / r64.abs().max())
    mf["fp32_vs_fp64_top1_agree"] = bool(torch.equal(r32.argmax(-1), r64.argmax(-1)))
    ref = r64.float()
    T, V = ref.shape
    vals, idx = torch.topk(ref, TOPK, dim=-1)
    np.save(os.path.join(args.out, "topk_ids.npy"), idx.to(torch.int32).numpy())
    mf["topk_ids"] = idx.tolist()  # mirrored for readers that take float32 .npy only
    np.save(os.path.join(args.out, "topk_logits.npy"), vals.numpy())
    R = args.full_rows
    pos = sorted(set(min(T - 1, (i * T) // (R - 1)) for i in range(R))) if R > 1 else ([T - 1] if R == 1 else [])
    mf["full_positions"] = pos
    if pos:
        np.save(os.path.join(args.out, "full_logits.npy"), ref[pos].numpy())
    top2 = torch.topk(ref, 2, dim=-1).values
    mf["min_top1_margin_over_positions"] = float((top2[:, 0] - top2[:, 1]).min())
    mf["vocab"] = V
    mf["n_positions"] = T

    seq = list(ids)
    margins = []
    with torch.no_grad():
        past = None
        x = torch.tensor([seq])
        for _ in range(N_NEW):  # fp64 greedy with the model's own cache
            o = m64(input_ids=x, past_key_values=past, use_cache=True)
            past = o.past_key_values
            last = o.logits[0, -1]
            t2 = torch.topk(last, 2).values
            margins.append(float(t2[0] - t2[1]))
            nxt = int(last.argmax())
            seq.append(nxt)
            x = torch.tensor([[nxt]])
    new = seq[len(ids):]
    np.save(os.path.join(args.out, "greedy_new_ids.npy"), np.asarray(new, dtype=np.int32))
    mf["greedy_new_ids"] = new
    mf["greedy_min_top1_margin"] = min(margins)
    # cross-check: no-cache recompute of the last step and HF generate in fp32
    full = logits_of(m64, seq[:-1])
    mf["greedy_nocache_agrees"] = [int(t) for t in full[len(ids) - 1:].argmax(-1)] == new
    try:
        g = m32.generate(torch.tensor([ids]), max_new_tokens=N_NEW, min_new_tokens=N_NEW, do_sample=False)
        mf["hf_generate_fp32_agrees"] = [int(t) for t in g[0, len(ids):]] == new
    except Exception as e:
        mf["hf_generate_fp32_agrees"] = f"generate failed: {e!r}"
    eos = m32.config.eos_token_id
    mf["eos_token_id"] = eos
    eos_set = set(eos if isinstance(eos, list) else [eos])
    mf["first_eos_index_in_new"] = next((i for i, t in enumerate(new) if t in eos_set), None)
    if tok is not None:
        mf["greedy_text"] = tok.decode(new)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(mf, f, indent=1)
    print(json.dumps({k: v for k, v in mf.items() if k != "hf_config"}, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
