#!/usr/bin/env python3
"""Reference fixtures for the tokenizer normalizers (src/text/normalizer.cc, SPEC.md §2).

Writes tests/fixtures/text/normalizer/:
  extra.jsonl                       one JSON string per line: normalization cases (decomposed and
                                    precomposed letters, compatibility characters, Hangul jamo,
                                    mixed scripts, emoji, whitespace, special tokens in text)
  qwen2_<form>/tokenizer.skeleton.json
                                    the tokenizer.json HF `tokenizers` saved, without model.vocab and
                                    model.merges (a Qwen2 vocabulary is ~7 MB): the test fills them
                                    from the GGUF through kvaudit's own GGUF reader; gguf.json names
                                    the file and the vocabulary / merge counts
  <small>/tokenizer.json            the small trained byte-level tokenizer (../bytelevel) with a
                                    normalizer Sequence exercising NFD, NFKD, Lowercase, Strip,
                                    Replace (String and Regex) and Prepend
  ids_<name>.txt                    per corpus line: HF ids without special tokens, TAB, the decode
                                    status ("=" or HF's decode as a JSON string), as ../ids_*.txt,
                                    then TAB and the ids add_special_tokens=True puts around them
                                    ("<prefix>|<suffix>"; "!<all ids>" if they are not a wrapping)
  VERSIONS.json                     library versions and the command

Corpora: qwen2_* use ../corpus.jsonl followed by extra.jsonl (>= 2,000 strings); the small
tokenizers use extra.jsonl.

The Qwen2 tokenizers are transformers' own Qwen2Tokenizer (NFC normalizer, Qwen2 split regex,
byte-level) built from the vocabulary and merges of
~/.cache/kvaudit/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf, with the GGUF's control tokens added as
special tokens the way transformers' GGUF conversion adds them: what the model's tokenizer.json on
the Hub is. qwen2_nfkc swaps NFC for NFKC and adds a post-processor "<|im_start|> $A <|im_end|>" so
that add_special_tokens=True has something to add.

Command (from the repo root, in a venv with tokenizers, transformers, gguf; no torch needed):
  python3 tools/make_normalizer_fixtures.py
"""
import copy
import importlib.metadata as md
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_text_fixtures import install_torch_stub  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = os.path.join(ROOT, "tests", "fixtures", "text")
OUT = os.path.join(TEXT, "normalizer")
GGUF_DIR = os.path.expanduser("~/.cache/kvaudit")
QWEN_GGUF = "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf"


# ---------------------------------------------------------------- corpus
def extra_cases():
    cases = [
        # decomposed vs precomposed, canonical reordering, composition exclusions
        "e\u0301", "\u00e9", "cafe\u0301", "caf\u00e9", "Cafe\u0301 cre\u0300me bru\u0302le\u0301e",
        "A\u030a", "\u00c5", "\u212b", "\u2126", "\u212a", "o\u0308", "\u00f6", "u\u0308ber", "\u00fcber",
        "a\u0323\u0301", "a\u0301\u0323", "\u1ea1\u0301", "\u1e9b\u0323", "q\u0307\u0323", "q\u0323\u0307",
        "n\u0303", "\u00f1", "Espan\u0303a", "Espa\u00f1a", "Vi\u1ec7t Nam", "Vie\u0323\u0302t Nam",
        "\u0958", "\u0915\u093c", "\u095f", "\u2adc", "\u0344", "\u0f73", "\u1f80", "\u03b1\u0313\u0345",
        "\u0041\u030a\u0301", "\u00c7\u0301", "C\u0327\u0301", "\u1e08", "s\u0323\u0307", "\u1e69",
        "\u0627\u0653", "\u0622", "\u3099", "\u304b\u3099", "\u304c", "\u30cf\u309a", "\u30d1",
        # compatibility characters
        "\ufb01", "\ufb01le", "e\ufb03cient", "\ufb00", "\ufb02ow", "\ufb06", "\u2460", "\u2461\u2462",
        "\u2473", "\u24b6", "\u24d0", "\uff21", "\uff21\uff22\uff23", "\uff41\uff42\uff43", "\uff10\uff11\uff12",
        "\uff01\uff1f", "\u3000", "a\u3000b", "\u338f", "\u3392", "\u33a1", "\u2162", "\u216b", "\u217b",
        "\u00bd", "\u2153", "\u00b2", "x\u00b3", "H\u2082O", "\u2122", "\u2120", "\u00aa\u00ba", "\u2026",
        "\u01c4", "\u01c5", "\u01c6", "\u0132", "\u013f", "\u0149", "\u017f", "\u1e9e", "\u00df",
        "\ufdfa", "\ufdfb", "\ufe8d", "\ufef5", "\u3231", "\u3300", "\u32ff", "\u337b", "\u1d400",
        "\U0001d400\U0001d41a", "\U0001d7ce", "\U0001f100", "\U0001f130", "\U0001f190",
        "\uff76\uff9e", "\uff8a\uff9f", "\uff71\uff72\uff73", "\u00a0", "a\u00a0b", "\u2002\u2003\u2009",
        "\u00a8", "\u00b4", "\u00b8", "\u02d8", "\u2032\u2033", "\u2474", "\u2488", "\u249c",
        "\u0e33", "\u0eb3", "\u0f77", "\u1100\u1161", "\u3131\u314f",
        # Hangul: conjoining jamo compose under NFC, syllables decompose under NFD
        "\u1100\u1161\u11a8", "\uac01", "\u1112\u1161\u11ab\u1100\u116e\u11af", "\ud55c\uad6d",
        "\u1100\u1161\u1100\u1161", "\u110b\u1161\u11ab\u1102\u1167\u11bc", "\uc548\ub155",
        "\u1100", "\u1161", "\u11a8", "\u1100\u11a8", "\u3131", "\u314f", "\u3164", "\uffa1",
        "\ud7a3", "\uac00\u11a8", "\ud55c\uad6d\uc5b4 \u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165",
        # case (for Lowercase): Greek sigma, Turkish dotted I, German sharp s, Cherokee, title case
        "\u039f\u0394\u039f\u03a3", "\u03a3", "\u0391\u03a3 \u03a3\u0391", "\u0130stanbul", "I\u0307",
        "STRASSE \u1e9e", "\u13a0\u13a1", "\u01c5ungla", "\u0410\u0411\u0412 \u0430\u0431\u0432",
        "\u0544\u0535\u0546", "\U00010400\U00010401", "\u2160\u2161", "\u24b7\u24b8", "\uff21\uff42",
        # mixed scripts and emoji
        "Hello \u4e16\u754c \u043f\u0440\u0438\u0432\u0435\u0442 \u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd",
        "\u65e5\u672c\u8a9e\u3068English\u3068\ud55c\uad6d\uc5b4", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a", "\u1798\u17b7\u178f\u17d2\u178f",
        "\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u2764\ufe0f",
        "\u2764\ufe0e", "\U0001f1eb\U0001f1f7", "\U0001f3f3\ufe0f\u200d\U0001f308", "1\ufe0f\u20e3",
        "\u00a9\ufe0f", "\U0001f9d1\U0001f3fe\u200d\U0001f4bb", "caf\u00e9 \u2615 e\u0301\U0001f600",
        # whitespace and strip
        " leading", "trailing ", "  both  ", "\t\ttabs\t", "\n\nnewlines\n", "\u3000ideographic\u3000",
        "\u00a0nbsp\u00a0", "\u2028ls\u2029", "\u0085nel\u0085", "\u200bzwsp\u200b", "\ufeffbom",
        "\u1680ogham\u180e", "a   b    c", "a \t b", "x\u2003\u2003y", "   ", "\u3000", "\u00a0\u00a0",
        "", " ", "\n", "A", "abc", "ABC def",
        # special tokens and markup around normalizable text
        "<|im_start|>user\ncafe\u0301<|im_end|>", "<|endoftext|>\ufb01<|endoftext|>",
        "<|im_start|>\uff21\uff22<|im_end|>\n", "text <|endoftext|> \u2460\u2461", "<|im_start|>",
        "<|im_end|>", "<|endoftext|>", "\uff1c|im_start|\uff1e", "<|im_start|>system\n\u2162 \u338f<|im_end|>",
        "<|fim_prefix|>def f\uff08x\uff09:<|fim_suffix|><|fim_middle|>",
        "``quoted''", "\"quotes\"", "\u201csmart\u201d \u2018quotes\u2019", "\u2014dash\u2013",
        "def f(x):\n    return x\u00b2  # \u2460\n", "SELECT \uff0a FROM t;", "\u00b5s \u03bcs \u2126 \u03a9",
    ]
    rng = random.Random(20261203)
    pool = ["e", "a", "o", "u", "n", "c", "A", "E", "I", "S", " ", "  ", "\t", "\n", "'s", ".", ",", "1", "2",
            "\u0301", "\u0300", "\u0302", "\u0303", "\u0308", "\u0323", "\u0327", "\u030a", "\u0345", "\u093c",
            "\u00e9", "\u00f1", "\u00c5", "\u212b", "\u2126", "\u212a", "\u00df", "\u1e9e", "\u0130", "\u03a3",
            "\ufb01", "\ufb00", "\u2460", "\u2473", "\uff21", "\uff41", "\uff10", "\u338f", "\u216b", "\u00bd",
            "\u00b2", "\u2122", "\u01c5", "\u3000", "\u00a0", "\u2003", "\u200b", "\u2028", "\u0085",
            "\u1100", "\u1161", "\u11a8", "\uac00", "\ud55c", "\u3131", "\u304b", "\u3099", "\uff76", "\uff9e",
            "\u4e2d", "\u0416", "\u0645", "\u05e9", "\u0928", "\U0001f600", "\U0001f3fd", "\u200d", "\ufe0f",
            "\U0001d400", "\ufdfa", "<|im_start|>", "<|endoftext|>"]
    for _ in range(300):
        cases.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 24))))
    # Random code points from the blocks where decompositions and case mappings live.
    blocks = [(0x00A0, 0x024F), (0x0300, 0x036F), (0x0370, 0x03FF), (0x0400, 0x04FF), (0x1100, 0x11FF),
              (0x1E00, 0x1FFF), (0x2000, 0x2BFF), (0x3000, 0x33FF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF),
              (0xFB00, 0xFDFF), (0xFE00, 0xFFEF), (0x1D400, 0x1D7FF), (0x1F100, 0x1F2FF)]
    for _ in range(200):
        s = []
        for _ in range(rng.randint(1, 10)):
            lo, hi = rng.choice(blocks)
            s.append(chr(rng.randint(lo, hi)))
        cases.append("".join(s))
    return cases


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f]


# ---------------------------------------------------------------- tokenizers
def qwen2_tokenizers():
    install_torch_stub()
    from tokenizers import normalizers, processors
    from transformers.integrations.gguf.gguf_tokenizer_mapping import (add_gguf_special_tokens,
                                                                        get_gguf_tokenizer)
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    path = os.path.join(GGUF_DIR, QWEN_GGUF)
    arch, td, _ = get_gguf_tokenizer(path)
    assert td.get("pre_tokenizer_type") == "qwen2", td.get("pre_tokenizer_type")
    spelling = bytes_to_unicode()
    alphabet = set(spelling.values())
    vocab = {t if set(t) <= alphabet else "".join(spelling[b] for b in t.encode("utf-8")): i
             for i, t in enumerate(td["tokens"])}
    merges = [tuple(m.split(" ")) for m in td["merges"]]
    tok = add_gguf_special_tokens(Qwen2Tokenizer(vocab=vocab, merges=merges), td)
    nfc = tok.backend_tokenizer
    assert json.loads(nfc.to_str())["normalizer"] == {"type": "NFC"}
    from tokenizers import Tokenizer
    nfkc = Tokenizer.from_str(nfc.to_str())
    nfkc.normalizer = normalizers.NFKC()
    nfkc.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A <|im_end|>",
        special_tokens=[("<|im_start|>", nfkc.token_to_id("<|im_start|>")),
                        ("<|im_end|>", nfkc.token_to_id("<|im_end|>"))])
    return {"qwen2_nfc": nfc, "qwen2_nfkc": nfkc}


def small_tokenizers():
    from tokenizers import Regex, Tokenizer, normalizers
    base = os.path.join(TEXT, "bytelevel", "tokenizer.json")
    specs = {
        "small_nfd_lower": normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(),
                                                 normalizers.Strip(left=True, right=True)]),
        "small_nfkd_replace": normalizers.Sequence([
            normalizers.Strip(left=True, right=False), normalizers.NFKD(),
            normalizers.Replace(Regex(r"\s{2,}"), " "), normalizers.Replace("``", "\""),
            normalizers.Prepend("\u2581")]),
        "small_nfc_seq": normalizers.Sequence([normalizers.Strip(left=False, right=True), normalizers.NFC(),
                                               normalizers.Replace(Regex("[\u0300-\u036f]+"), "~"),
                                               normalizers.Lowercase()]),
        "small_nfkc_lower": normalizers.Sequence([normalizers.Lowercase(), normalizers.NFKC()]),
    }
    out = {}
    for name, norm in specs.items():
        t = Tokenizer.from_file(base)
        t.normalizer = norm
        out[name] = t
    return out


# ---------------------------------------------------------------- writers
def write_ids(path, tok, corpus):
    """Per line: ids without special tokens, TAB, "=" or HF's decode as JSON; then TAB and what
    add_special_tokens=True adds: "<prefix ids>|<suffix ids>" when its ids are prefix + ids + suffix
    (as every post-processor here gives), else "!" and the whole list."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for s in corpus:
            ids = tok.encode(s, add_special_tokens=False).ids
            sp = tok.encode(s, add_special_tokens=True).ids
            d = tok.decode(ids, skip_special_tokens=False)
            special = "!" + " ".join(map(str, sp))
            for p in range(len(sp) - len(ids) + 1):
                if sp[p:p + len(ids)] == ids:
                    special = " ".join(map(str, sp[:p])) + "|" + " ".join(map(str, sp[p + len(ids):]))
                    break
            f.write(" ".join(map(str, ids)) + "\t" + ("=" if d == s else json.dumps(d, ensure_ascii=False)) + "\t"
                    + special + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    extra = extra_cases()
    with open(os.path.join(OUT, "extra.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for s in extra:
            f.write(json.dumps(s, ensure_ascii=True) + "\n")
    full = read_jsonl(os.path.join(TEXT, "corpus.jsonl")) + extra
    counts = {}
    for name, tok in qwen2_tokenizers().items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        js = json.loads(tok.to_str())
        gguf = {"file": QWEN_GGUF, "n_vocab": len(js["model"]["vocab"]), "n_merges": len(js["model"]["merges"])}
        del js["model"]["vocab"], js["model"]["merges"]
        with open(os.path.join(d, "tokenizer.skeleton.json"), "w", encoding="utf-8") as f:
            json.dump(js, f, ensure_ascii=False, indent=1)
        with open(os.path.join(d, "gguf.json"), "w") as f:
            json.dump(gguf, f, indent=1)
        write_ids(os.path.join(OUT, f"ids_{name}.txt"), tok, full)
        counts[name] = len(full)
    for name, tok in small_tokenizers().items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
        write_ids(os.path.join(OUT, f"ids_{name}.txt"), tok, extra)
        counts[name] = len(extra)
    versions = {"command": "python3 tools/make_normalizer_fixtures.py", "python": sys.version.split()[0],
                "tokenizers": md.version("tokenizers"), "transformers": md.version("transformers"),
                "gguf": md.version("gguf"), "gguf_file": QWEN_GGUF, "corpus_lines": counts}
    with open(os.path.join(OUT, "VERSIONS.json"), "w") as f:
        json.dump(versions, f, indent=1)
    print(json.dumps(counts), file=sys.stderr)


if __name__ == "__main__":
    main()
