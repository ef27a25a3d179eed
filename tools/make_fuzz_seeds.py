#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets (fuzz/corpus/<target>/seed_*) from real files,
cut down to a few KB each: the cached GGUF models (metadata arrays cut to 24 entries, every tensor cut
to one block of its real bytes), the tiny safetensors models and configs of tests/fixtures, the
tokenizer fixtures with a 300-token vocabulary, real policy files, the staged datasets' first records
and a real samples.jsonl. Standard library only. Run from the repository root:
    python3 tools/make_fuzz_seeds.py
Models are read from ${KVAUDIT_CACHE:-~/.cache/kvaudit} (scripts/fetch-models.sh); seeds whose source
is missing are skipped with a note."""
import glob
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("KVAUDIT_CACHE", os.path.expanduser("~/.cache/kvaudit"))
DATA = os.path.join(ROOT, "..", "shared", "datasets")
FIX = os.path.join(ROOT, "tests", "fixtures")


def seed(target, name, data):
    d = os.path.join(ROOT, "fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed_" + name), "wb") as f:
        f.write(data)


# --- GGUF -------------------------------------------------------------------------------------
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
# ggml type -> (block elements, block bytes)
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 10: (256, 84),
         11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 30: (1, 2)}


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.b[self.o:self.o + n]
        self.o += n
        return s

    def value(self, t, keep):
        if t in SCALAR:
            return self.take(SCALAR[t])
        if t == 8:
            return self.string()
        et, n = self.take("<I"), self.take("<Q")
        vals = [self.value(et, keep) for _ in range(n)]
        return (et, vals[:keep])


def pack_value(t, v):
    if t in SCALAR:
        return struct.pack(SCALAR[t], v)
    if t == 8:
        return struct.pack("<Q", len(v)) + v
    et, vals = v
    return struct.pack("<IQ", et, len(vals)) + b"".join(pack_value(et, x) for x in vals)


def gguf_seed(path, max_tensors, keep=24):
    b = open(path, "rb").read(64 << 20)  # metadata and tensor infos are in the first MBs
    r = Reader(b)
    assert r.take("<I") == 0x46554747, path
    version, n_tensors, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kvs = []
    for _ in range(n_kv):
        key = r.string()
        t = r.take("<I")
        kvs.append((key, t, r.value(t, keep)))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        infos.append((name, ne, r.take("<I"), r.take("<Q")))
    align = 32
    data_start = (r.o + align - 1) // align * align
    out = struct.pack("<IIQQ", 0x46554747, version, min(n_tensors, max_tensors), len(kvs))
    for key, t, v in kvs:
        out += pack_value(8, key) + struct.pack("<I", t) + pack_value(t, v)
    blobs, off = [], 0
    for name, ne, t, o in infos[:max_tensors]:
        be, bb = BLOCK[t]
        ne2 = [be] + [1] * (len(ne) - 1) if ne else []  # one block of the tensor's first row
        blob = b[data_start + o:data_start + o + bb] if data_start + o + bb <= len(b) else bytes(bb)
        out += pack_value(8, name) + struct.pack("<I", len(ne2)) + b"".join(struct.pack("<Q", x) for x in ne2)
        out += struct.pack("<IQ", t, off)
        blobs.append(blob + bytes(-len(blob) % align))
        off += len(blobs[-1])
    out += bytes(-len(out) % align)
    return out + b"".join(blobs)


def gguf_seeds():
    for name, n in [("SmolLM2-135M-Instruct.Q4_1.gguf", 12), ("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf", 8)]:
        p = os.path.join(CACHE, name)
        if not os.path.exists(p):
            print("skip (not fetched):", p, file=sys.stderr)
            continue
        s = gguf_seed(p, n)
        seed("io_gguf", name.split("-")[0].lower() + ".gguf", s)
        seed("io_gguf", name.split("-")[0].lower() + "_truncated.gguf", s[:len(s) * 2 // 3])


# --- safetensors --------------------------------------------------------------------------------
def safetensors_seed(path, n_tensors):
    b = open(path, "rb").read()
    (hl,) = struct.unpack_from("<Q", b, 0)
    header = json.loads(b[8:8 + hl])
    data = b[8 + hl:]
    out_h, blobs, off = {}, b"", 0
    if "__metadata__" in header:
        out_h["__metadata__"] = header.pop("__metadata__")
    for name in sorted(header, key=lambda k: (header[k]["data_offsets"][1] - header[k]["data_offsets"][0], k))[:n_tensors]:
        e = header[name]
        lo, hi = e["data_offsets"]
        blob = data[lo:hi]
        out_h[name] = dict(e, data_offsets=[off, off + len(blob)])
        blobs += blob
        off += len(blob)
    h = json.dumps(out_h, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blobs


def safetensors_seeds():
    for m in ["qwen2", "llama-bf16", "gemma2-bf16"]:
        p = os.path.join(FIX, "models", m, "model.safetensors")
        if os.path.exists(p):
            seed("io_safetensors", m + ".safetensors", safetensors_seed(p, 3))
    # The index format transformers writes; the shards are the ones io_safetensors_index_fuzz.cc makes.
    seed("io_safetensors_index", "index.json", json.dumps({
        "metadata": {"total_size": 60},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                       "c": "model-00002-of-00002.safetensors"}}, indent=2))
    seed("io_safetensors_index", "one_shard.json", json.dumps({"weight_map": {"c": "model-00002-of-00002.safetensors"}}))


# --- npy, config.json -----------------------------------------------------------------------------
def npy_seeds():
    p = os.path.join(FIX, "models", "llama", "logits_s0.npy")
    b = open(p, "rb").read()
    seed("io_npy", "logits_v1.npy", b)
    (hl,) = struct.unpack_from("<H", b, 8)
    header = b[10:10 + hl]
    h2 = header + b" " * (-(12 + len(header)) % 64)
    seed("io_npy", "logits_v2.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", len(h2)) + h2 + b[10 + hl:10 + hl + 64])


def config_seeds():
    for p in sorted(glob.glob(os.path.join(FIX, "models", "*", "config*.json"))):
        if "-bf16" in p:
            continue
        seed("model_config", os.path.basename(os.path.dirname(p)) + "_" + os.path.basename(p), open(p, "rb").read())
    seed("model_config", "generation_config.json", open(os.path.join(FIX, "models", "llama", "generation_config.json"), "rb").read())


# --- tokenizer.json, messages, policies --------------------------------------------------------
def shrink_tokenizer(t, n_vocab=300):
    m = t["model"]
    vocab = {k: v for k, v in m["vocab"].items() if v < n_vocab}
    merges = []
    for mg in m.get("merges", []):
        a, b = mg.split(" ", 1) if isinstance(mg, str) else mg
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(mg)
    m["vocab"], m["merges"] = vocab, merges
    t["added_tokens"] = [dict(a, id=n_vocab + i) for i, a in enumerate(t.get("added_tokens", []))]
    new_id = {a["content"]: a["id"] for a in t["added_tokens"]}
    pp = t.get("post_processor") or {}
    for name, sp in (pp.get("special_tokens") or {}).items():  # the template's ids follow the tokens
        sp["ids"] = [new_id.get(tok, i) for tok, i in zip(sp["tokens"], sp["ids"])]
    return t


def tokenizer_seeds():
    config = json.dumps({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": False,
                         "chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"})
    for name in ["bytelevel", "spm_llama2", "spm_metaspace", "normalizer/small_nfkd_replace"]:
        t = shrink_tokenizer(json.load(open(os.path.join(FIX, "text", name, "tokenizer.json"))))
        s = json.dumps(t, ensure_ascii=False, separators=(",", ":"))
        seed("text_tokenizer_json", name.replace("/", "_") + ".json", s)
        seed("text_tokenizer_json", name.replace("/", "_") + "_with_config.json", s + "\0" + config)
    small = json.load(open(os.path.join(FIX, "text", "bytelevel", "tokenizer.json")))
    for q in ["qwen2_nfc", "qwen2_nfkc"]:  # Qwen2's normalizer, pre-tokenizer and added tokens
        t = json.load(open(os.path.join(FIX, "text", "normalizer", q, "tokenizer.skeleton.json")))
        t["model"]["vocab"], t["model"]["merges"] = small["model"]["vocab"], small["model"]["merges"]
        seed("text_tokenizer_json", q + ".json", json.dumps(shrink_tokenizer(t), ensure_ascii=False, separators=(",", ":")))


def messages_seeds():
    seed("text_messages", "list.json", json.dumps([{"role": "system", "content": "You are helpful."},
                                                   {"role": "user", "content": "Hi 日本"}]))
    seed("text_messages", "object_tools.json", json.dumps({
        "messages": [{"role": "user", "content": "Weather in Paris?"},
                     {"role": "assistant", "content": "", "tool_calls": [
                         {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
                     {"role": "tool", "content": "18C"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}))
    seed("text_messages", "content_parts.json", json.dumps([{"role": "user", "content": [{"type": "text", "text": "a"}]}]))


def policy_seeds():
    for p in sorted(glob.glob(os.path.join(ROOT, "results", "audit", "*", "policy.json")))[:2]:
        j = json.load(open(p))
        j["layers"] = j.get("layers", [])[:2]  # the fuzzer validates against 1, 2 and 4 layers
        seed("kv_policy", os.path.basename(os.path.dirname(p)) + ".json", json.dumps(j, indent=1))
    seed("kv_policy", "spec.json", json.dumps({"spec": "int4:token:asym;layers[1].v=kivi2", "storage": "packed"}))
    seed("kv_policy", "subset.json", json.dumps({"layers": [
        {"k": {"scheme": "int3:tensor:sym", "channels": [0, 5, 9], "scale": "channel"}, "v": "fp16"},
        {"k": "q4_0", "v": "fp8e4m3"}], "compat": "paper"}))


# --- datasets, samples.jsonl -------------------------------------------------------------------
def head_lines(path, n):
    with open(path, "rb") as f:
        return b"".join(f.readline() for _ in range(n))


def dataset_seeds():
    # The first byte picks the reader in eval_dataset_fuzz.cc (0 csv, 1 jsonl, 2 txt, 3 advbench,
    # 4 harmbench, 5 xstest, 6 custom, 7 the CSV parser alone); 0x08 sets --column prompt.
    files = [(0x00, "user.csv", "xstest/xstest_prompts.csv", 6), (0x01, "user.jsonl", "ifeval/input_data.jsonl", 3),
             (0x02, "user.txt", "paper_custom/refusal.txt", 6), (0x03, "advbench.csv", "advbench/harmful_behaviors.csv", 6),
             (0x04, "harmbench.csv", "harmbench/harmbench_behaviors_text_test.csv", 30),
             (0x05, "xstest.csv", "xstest/xstest_prompts.csv", 8), (0x06, "custom.txt", "paper_custom/jailbreak.txt", 4),
             (0x07, "strongreject.csv", "strongreject/strongreject_dataset.csv", 8)]
    for sel, name, rel, n in files:
        p = os.path.join(DATA, rel)
        if os.path.exists(p):
            seed("eval_dataset", name, bytes([sel]) + head_lines(p, n)[:4096])
    seed("eval_dataset", "column.jsonl", b"\x09" + b'{"prompt": "a"}\n"b"\n\n{"prompt": "a"}\n')


def samples_seeds():
    p = os.path.join(ROOT, "results", "smollm2-135m", "samples.jsonl")
    if os.path.exists(p):
        b = head_lines(p, 3)
        seed("eval_samples", "complete.jsonl", b)
        seed("eval_samples", "torn_tail.jsonl", b + head_lines(p, 4)[len(b):][:40])


if __name__ == "__main__":
    gguf_seeds()
    safetensors_seeds()
    npy_seeds()
    config_seeds()
    tokenizer_seeds()
    messages_seeds()
    policy_seeds()
    dataset_seeds()
    samples_seeds()
