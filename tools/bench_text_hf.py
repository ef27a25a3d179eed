#!/usr/bin/env python3
"""HF reference for bench/text_tokenize.cc: MB/s of `tokenizers` encoding the WikiText-2 test text in
one call (single thread, as the C++ bench), for the GGUF tokenizers through transformers' conversion.
  python3 tools/bench_text_hf.py ../shared/datasets/wikitext2_test/wikitext2_test.txt
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_text_fixtures import GGUF_DIR, GGUFS, install_torch_stub  # noqa: E402

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    mb = len(text.encode("utf-8")) / 1e6
    install_torch_stub()
    import transformers.modeling_gguf_pytorch_utils as mg
    mg.is_torch_available = lambda: True
    from transformers import AutoTokenizer
    for name, fname in GGUFS.items():
        backend = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=fname).backend_tokenizer
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            n = len(backend.encode(text, add_special_tokens=False).ids)
            times.append(time.perf_counter() - t0)
        lines = text.splitlines(keepends=True)
        line_times = []
        for _ in range(5):
            t0 = time.perf_counter()
            nl = sum(len(e.ids) for e in backend.encode_batch(lines, add_special_tokens=False))
            line_times.append(time.perf_counter() - t0)
        print(f"{fname}: {mb:.2f} MB | whole text: {n} tokens, cold {mb / times[0]:.1f} MB/s, warm best of 5 "
              f"{mb / min(times):.1f} MB/s | {len(lines)} lines (encode_batch, 1 thread): {nl} tokens, "
              f"best of 5 {mb / min(line_times):.1f} MB/s")


if __name__ == "__main__":
    main()
