#!/usr/bin/env python3
"""Runs the reference IFEval checkers (google-research instruction_following_eval, as shipped in
lm-evaluation-harness's lm_eval/tasks/ifeval) on a responses file and writes one verdict line per
response: {"key", "strict": [...], "loose": [...], "langdetect": code or ""}.

Setup (offline-safe; docs/IFEVAL.md "Reference"):
  python3 -m venv /tmp/ifref && /tmp/ifref/bin/pip install langdetect nltk immutabledict absl-py
  /tmp/ifref/bin/pip download --no-deps lm_eval==0.4.13 -d /tmp/lmeval_whl
  unzip /tmp/lmeval_whl/lm_eval-0.4.13-py3-none-any.whl 'lm_eval/tasks/ifeval/*' -d /tmp/lmeval_src
  NLTK_DATA=DIR with tokenizers/punkt_tab/english/ (nltk.download('punkt_tab') where it works)
  /tmp/ifref/bin/python tools/ifeval_reference.py --lmeval /tmp/lmeval_src \
      --data ../shared/datasets/ifeval/input_data.jsonl --responses R.jsonl --out V.jsonl

Only the ifeval task folder is imported (lm_eval's package __init__ files pull in torch etc.).
langdetect is seeded (DetectorFactory.seed = 0): unseeded it may answer differently run to run;
Python's random too (random.seed(0)), for the random letter key 1122 gets.
"""
import argparse
import json
import sys
import types


def load_reference(lmeval_root):
    # Bare package modules so that lm_eval/__init__.py and lm_eval/tasks/__init__.py never run.
    for name, rel in (("lm_eval", "lm_eval"), ("lm_eval.tasks", "lm_eval/tasks"),
                      ("lm_eval.tasks.ifeval", "lm_eval/tasks/ifeval")):
        mod = types.ModuleType(name)
        mod.__path__ = [f"{lmeval_root}/{rel}"]
        sys.modules[name] = mod
    import nltk
    from lm_eval.tasks.ifeval import instructions_util, utils
    # lm-eval 0.4.13 loads the old pickled punkt model for count_sentences; nltk >= 3.9 reads the
    # same English parameters from punkt_tab (what nltk.word_tokenize uses too).
    tokenizer = nltk.tokenize.PunktTokenizer("english")
    instructions_util._get_sentence_tokenizer = lambda: tokenizer
    import langdetect
    langdetect.DetectorFactory.seed = 0
    # letter_frequency with a non-letter (key 1122 asks for '#') draws a random letter.
    import random
    random.seed(0)
    return utils, langdetect


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lmeval", required=True, help="root holding lm_eval/tasks/ifeval")
    ap.add_argument("--data", required=True, help="IFEval input_data.jsonl")
    ap.add_argument("--responses", required=True, help='JSONL {"key", "response"}')
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    utils, langdetect = load_reference(a.lmeval)
    docs = {}
    with open(a.data, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs[d["key"]] = d
    with open(a.responses, encoding="utf-8") as f, open(a.out, "w", encoding="utf-8") as out:
        for line in f:
            r = json.loads(line)
            d = docs[int(r["key"])]
            inp = utils.InputExample(key=d["key"], instruction_id_list=d["instruction_id_list"],
                                     prompt=d["prompt"], kwargs=d["kwargs"])
            s = utils.test_instruction_following_strict(inp, r["response"])
            lo = utils.test_instruction_following_loose(inp, r["response"])
            try:
                lang = langdetect.detect(r["response"])
            except langdetect.LangDetectException:
                lang = ""
            out.write(json.dumps({"key": d["key"], "strict": s.follow_instruction_list,
                                  "loose": lo.follow_instruction_list, "langdetect": lang}) + "\n")


if __name__ == "__main__":
    main()
