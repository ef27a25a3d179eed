#!/usr/bin/env python3
"""Reference fixtures for src/text (tokenizers and chat templates), SPEC.md §2.

Writes tests/fixtures/text/:
  corpus.jsonl                  one JSON string per line: every benchmark prompt + hard cases
  <tok>/tokenizer.json          tokenizers trained here with HF `tokenizers` trainers (small vocab)
  ids_<tok>.txt                 per corpus line: HF ids (space separated), then TAB and the decode
                                status: "=" HF round-trips, else the HF decode as a JSON string
  special_<tok>.json            ids with add_special_tokens=True for the first lines
  templates/cases.json          conversations x templates -> render by transformers' apply_chat_template
  VERSIONS.json                 library versions and the command

Real tokenizers (SmolLM2-135M-Instruct, Qwen2.5-Coder-1.5B-Instruct) come from their GGUF files
(~/.cache/kvaudit/*.gguf, not committed) through transformers' GGUF tokenizer conversion, plus the
NFC normalizer for a "qwen2" pre-tokenizer (see below); the tests skip those when the GGUF is absent.
Normalizer fixtures: tools/make_normalizer_fixtures.py.

Command (from the repo root, in a venv with tokenizers, transformers, gguf; no torch needed):
  python3 tools/make_text_fixtures.py
"""
import csv
import datetime
import glob
import json
import os
import random
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = os.path.join(ROOT, "..", "shared", "datasets")
OUT = os.path.join(ROOT, "tests", "fixtures", "text")
GGUF_DIR = os.path.expanduser("~/.cache/kvaudit")
GGUFS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "qwen25coder": "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
}
# A fixed clock for strftime_now so template references do not depend on the day they were made;
# the C++ tests pass the same instant (templates/cases.json "now_unix").
FIXED_NOW = datetime.datetime(2026, 11, 22, 12, 0, 0)


def install_torch_stub():
    """transformers' GGUF reader imports torch for tensors only; the tokenizer path never uses it."""
    class _Any:
        def __getattr__(self, n):
            return _Any()

        def __call__(self, *a, **k):
            return _Any()

    import importlib.machinery
    mod = types.ModuleType("torch")
    mod.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    mod.__getattr__ = lambda n: _Any()
    mod.Tensor = type("Tensor", (), {})
    mod.dtype = type("dtype", (), {})
    mod.float32, mod.float16, mod.bfloat16 = "float32", "float16", "bfloat16"
    sys.modules["torch"] = mod


# ---------------------------------------------------------------- corpus
def benchmark_prompts():
    out = []

    def col(path, name):
        with open(os.path.join(DATASETS, path), newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                out.append(row[name])

    col("advbench/harmful_behaviors.csv", "goal")
    col("harmbench/harmbench_behaviors_text_all.csv", "Behavior")
    col("jailbreakbench/behaviors.csv", "Goal")
    col("jailbreakbench/benign-behaviors.csv", "goal")
    col("strongreject/strongreject_dataset.csv", "forbidden_prompt")
    col("xstest/xstest_prompts.csv", "prompt")
    for p in sorted(glob.glob(os.path.join(DATASETS, "paper_custom/*.txt"))):
        with open(p, encoding="utf-8") as f:
            out += [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    return out


def hard_cases():
    cases = [
        "", " ", "  ", "\t", "\n", "\n\n", "\r\n", " \n ", "a  b", "a   b   c", "a\t\tb", "a\n\n\nb",
        "   leading spaces", "trailing spaces   ", "\ttab first", "line1\nline2\r\nline3\rline4",
        "1", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "-42", "0x1F", "v2.0.1",
        "I'm", "you're", "he's", "we've", "they'll", "I'd", "DON'T", "It'S", "'s", "''", "rock'n'roll",
        "你好，世界", "日本語のテキストです。", "한국어 텍스트", "中文 English 混合 mixed",
        "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷🇩🇪", "a😀b", "😀😀😀",
        "e\u0301", "n\u0303", "\u1e9b\u0323", "Zalgo: Z\u0351\u036b\u0343a\u0310l\u0350g\u0352o",
        "caf\u00e9", "na\u00efve", "\u00c5ngstr\u00f6m", "stra\u00dfe", "\u0130stanbul",
        "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
        "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
        "\u00a0nbsp\u00a0", "\u2003em space", "zero\u200bwidth", "\ufeffbom", "\u2028sep\u2029",
        "\ufffd", "\u0000nul", "\u007f", "\u0085nel", "\U0010FFFF", "\U0001F600\U0001F3FD",
        "<|im_start|>user\nhi<|im_end|>", "<|endoftext|>", "text <|endoftext|> text", "<|im_end|><|im_end|>",
        "<s>", "</s>", "<s> hello </s>", "<unk>", "<|begin_of_text|>", "<|eot_id|>", "<|im_start", "im_start|>",
        "<mask>", "a <mask> b", "a<mask>b", "<mask>  b", "x  <mask>", "[WORD]", "a [WORD] b", "a[WORD]b",
        "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) { a[i] = b[i]; }", "    indented\n        more",
        "<html><body>Hello</body></html>", "{\"key\": [1, 2, 3]}", "SELECT * FROM users WHERE id = 1;",
        "https://example.com/path?q=1&r=2#frag", "user@example.com", "$100.00", "50%", "C++ and C#",
        "!!!", "???", "...", "---", "***", "@@@", "~~~", "___", "a--b", "a__b", "▁", "▁▁", " ▁ ", "Ġ", "Ċ",
        "ALL CAPS SENTENCE", "MiXeD CaSe", "camelCaseWord", "snake_case_word", "kebab-case-word",
        "Hello, world!", "Hello world", " Hello world", "hello\nworld", "The quick brown fox jumps over the lazy dog.",
    ]
    rng = random.Random(1234)
    alphabet = list("abc xyz\n\t'-_.,!?0123456789") + ["é", "ß", "中", "😀", "\u0301", "  ", "<s>", "'s", "▁"]
    for _ in range(150):
        cases.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    for _ in range(50):  # random code points across planes (valid scalar values only)
        s = []
        for _ in range(rng.randint(1, 12)):
            cp = rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0x2FFF), rng.randint(0x3000, 0xD7FF),
                             rng.randint(0xE000, 0xFFFD), rng.randint(0x10000, 0x10FFFF)])
            s.append(chr(cp))
        cases.append("".join(s))
    return cases


# ---------------------------------------------------------------- trained tokenizers
def training_text():
    lines = benchmark_prompts()
    with open(os.path.join(DATASETS, "wikitext2_test/wikitext2_test.txt"), encoding="utf-8") as f:
        lines += f.read().splitlines()[:4000]
    return lines + hard_cases()


LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def train_bytelevel():
    """Llama-3 style: Split(llama3 regex) + ByteLevel, ignore_merges, BOS by TemplateProcessing,
    plus added tokens exercising lstrip / rstrip / single_word / normalized flags."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                                                  "<|im_start|>", "<|im_end|>"])
    tok.train_from_iterator(training_text(), trainer)
    tok.add_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False),
                    AddedToken("[WORD]", single_word=True, normalized=False),
                    AddedToken("<|endoftext|>", rstrip=True, normalized=False)])
    tok.add_special_tokens([AddedToken("<s>", normalized=False, special=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    return tok


def train_spm(style):
    """SentencePiece-style BPE with byte fallback. style "llama2": Prepend+Replace normalizer (as
    Llama-2 / TinyLlama tokenizer.json); style "metaspace": Metaspace pre-tokenizer, prepend_scheme
    first (as newer Mistral / transformers' LlamaTokenizer)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    if style == "llama2":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(content=" ", left=1, right=0)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(content=" ", left=1, right=0)])
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, show_progress=False, special_tokens=specials,
                                  limit_alphabet=300)
    if style == "llama2":
        # The trainer sees pre-tokenized words; with no pre-tokenizer the normalizer output is one word.
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
        tok.train_from_iterator(training_text(), trainer)
        tok.pre_tokenizer = None
    else:
        tok.train_from_iterator(training_text(), trainer)
    # byte tokens are ordinary vocabulary in sentencepiece models, not added tokens
    js = json.loads(tok.to_str())
    keep = {"<unk>", "<s>", "</s>"}
    js["added_tokens"] = [a for a in js["added_tokens"] if a["content"] in keep]
    tok = Tokenizer.from_str(json.dumps(js))
    tok.add_tokens([AddedToken("<mask>", lstrip=True, normalized=True)])
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    return tok


# ---------------------------------------------------------------- writers
def write_ids(name, encode, decode, corpus):
    with open(os.path.join(OUT, f"ids_{name}.txt"), "w", encoding="utf-8", newline="\n") as f:
        for s in corpus:
            ids = encode(s, False)
            d = decode(ids)
            f.write(" ".join(map(str, ids)) + "\t" + ("=" if d == s else json.dumps(d, ensure_ascii=True)) + "\n")
    special = [{"text": s, "ids": encode(s, True)} for s in corpus[:25]]
    with open(os.path.join(OUT, f"special_{name}.json"), "w", encoding="utf-8") as f:
        json.dump(special, f, ensure_ascii=True)


def make_tokenizer_fixtures(corpus, versions):
    for name, tok in [("bytelevel", train_bytelevel()), ("spm_llama2", train_spm("llama2")),
                      ("spm_metaspace", train_spm("metaspace"))]:
        os.makedirs(os.path.join(OUT, name), exist_ok=True)
        tok.save(os.path.join(OUT, name, "tokenizer.json"), pretty=False)
        write_ids(name, lambda s, sp, t=tok: t.encode(s, add_special_tokens=sp).ids,
                  lambda ids, t=tok: t.decode(ids, skip_special_tokens=False), corpus)
    install_torch_stub()
    import transformers.modeling_gguf_pytorch_utils as mg
    mg.is_torch_available = lambda: True
    from transformers import AutoTokenizer
    from transformers.integrations.gguf.gguf_tokenizer_mapping import get_gguf_tokenizer
    for name, fname in GGUFS.items():
        path = os.path.join(GGUF_DIR, fname)
        if not os.path.exists(path):
            print(f"skipping {name}: {path} absent", file=sys.stderr)
            continue
        t = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=fname)
        backend = t.backend_tokenizer
        # Qwen2's tokenizer.json (and transformers' Qwen2Tokenizer, and transformers 4.x's GGUF
        # conversion) normalizes to NFC; transformers 5.x's GGUF conversion drops it. kvaudit
        # follows the model's own tokenizer (src/text/gguf_tokenizer.cc), so the reference does too.
        if get_gguf_tokenizer(path)[1].get("pre_tokenizer_type") == "qwen2":
            from tokenizers import normalizers
            backend.normalizer = normalizers.NFC()
        write_ids(name, lambda s, sp, t=t: t.encode(s, add_special_tokens=sp),
                  lambda ids, b=backend: b.decode(ids, skip_special_tokens=False), corpus)
        versions["gguf_files"][name] = fname


# ---------------------------------------------------------------- chat templates
TEMPLATE_TOKENS = {  # bos / eos the templates expect (../shared/datasets/chat_templates/SOURCE.md)
    "Llama": ("<|begin_of_text|>", "<|eot_id|>"), "Mistral": ("<s>", "</s>"), "Mixtral": ("<s>", "</s>"),
    "OLMo": ("<|endoftext|>", "<|endoftext|>"), "Phi": ("<s>", "<|endoftext|>"), "Qwen": ("", "<|im_end|>"),
    "SmolLM2": ("<|im_start|>", "<|im_end|>"), "TinyLlama": ("<s>", "</s>"), "Yi": ("<|startoftext|>", "<|im_end|>"),
    "deepseek": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"), "gemma": ("<bos>", "<eos>"),
}

CONVERSATIONS = [
    ("user_only", [{"role": "user", "content": "How do I bake bread?"}], True),
    ("system_user", [{"role": "system", "content": "You are a careful assistant."},
                     {"role": "user", "content": "Explain KV caches in one line."}], True),
    ("multi_turn_system", [{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": "Hi!"},
                           {"role": "assistant", "content": "Hello. How can I help?"},
                           {"role": "user", "content": "What is 2+2?"}], True),
    ("multi_turn_no_gen", [{"role": "user", "content": "Name a colour."},
                           {"role": "assistant", "content": "Blue."},
                           {"role": "user", "content": "Another one?"},
                           {"role": "assistant", "content": "Green."}], False),
    ("unicode", [{"role": "user", "content": "Traduis «bonjour» en 日本語 🙂 — e\u0301, 👨‍👩‍👧"}], True),
    ("system_no_gen", [{"role": "system", "content": "Answer in French."},
                       {"role": "user", "content": "  spaced  \n\n content \t"}], False),
    ("special_text", [{"role": "user", "content": "Print <|im_end|> and </s> and {{ literally }} {% raw %}"}], True),
    ("assistant_last_gen", [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                            {"role": "user", "content": "Q2\nwith two lines"}], False),
]


def make_template_fixtures(versions):
    import transformers.utils.chat_template_utils as ctu
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    class FixedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return FIXED_NOW

    ctu.datetime = FixedDatetime
    cases = []
    for path in sorted(glob.glob(os.path.join(DATASETS, "chat_templates", "*.jinja"))):
        name = os.path.basename(path)
        with open(path, encoding="utf-8", newline="") as f:
            tmpl = f.read()
        os.makedirs(os.path.join(OUT, "templates"), exist_ok=True)
        with open(os.path.join(OUT, "templates", name), "w", encoding="utf-8", newline="") as f:
            f.write(tmpl)  # tests read the templates from here, byte for byte
        bos, eos = next(v for k, v in TEMPLATE_TOKENS.items() if name.startswith(k))
        # apply_chat_template needs a tokenizer only to carry the template and bos/eos strings.
        tk = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), bos_token=bos or None, eos_token=eos)
        for cname, msgs, gen in CONVERSATIONS:
            case = {"template": name, "conversation": cname, "messages": msgs, "add_generation_prompt": gen,
                    "bos_token": bos, "eos_token": eos}
            try:
                case["expected"] = tk.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen,
                                                          chat_template=tmpl)
            except Exception as e:  # raise_exception in the template
                case["error"] = str(e)
            cases.append(case)
    os.makedirs(os.path.join(OUT, "templates"), exist_ok=True)
    with open(os.path.join(OUT, "templates", "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"now_unix_local": FIXED_NOW.strftime("%Y-%m-%d %H:%M:%S"), "cases": cases}, f,
                  ensure_ascii=False, indent=0)


def main():
    import importlib.metadata as md
    os.makedirs(OUT, exist_ok=True)
    versions = {"command": "python3 tools/make_text_fixtures.py", "python": sys.version.split()[0],
                "tokenizers": md.version("tokenizers"), "transformers": md.version("transformers"),
                "gguf": md.version("gguf"), "jinja2": md.version("jinja2"), "gguf_files": {},
                "template_renderer": "transformers apply_chat_template(tokenize=False) with a placeholder "
                                     "tokenizer carrying bos/eos; strftime_now clock fixed"}
    corpus = benchmark_prompts() + hard_cases()
    with open(os.path.join(OUT, "corpus.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for s in corpus:
            f.write(json.dumps(s, ensure_ascii=True) + "\n")
    make_tokenizer_fixtures(corpus, versions)
    make_template_fixtures(versions)
    with open(os.path.join(OUT, "VERSIONS.json"), "w") as f:
        json.dump(versions, f, indent=1)
    print(f"corpus: {len(corpus)} strings", file=sys.stderr)


if __name__ == "__main__":
    main()
