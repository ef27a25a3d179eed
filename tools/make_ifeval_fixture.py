#!/usr/bin/env python3
"""Builds tests/fixtures/ifeval/agreement.jsonl.gz: IFEval responses with the reference scorer's
verdicts (tools/ifeval_reference.py), for tests/ifeval/agreement_test.cc.

Responses: real generations (--generated FILE..., JSONL {"key", "response"}, e.g. from
`kvaudit generate --prompts input_data.jsonl` on the demo models); real demo-model responses to
other prompts (--recycled results/audit/*/samples.jsonl.gz: N distinct responses, each scored
against a seeded-random IFEval prompt's instructions; --recycled-n per model); and constructed edge cases,
seeded: for each prompt, two responses built around its instructions' thresholds (counts one below,
at and above the bound, abbreviations, contractions, hyphens, markdown, wrappers loose scoring
strips), and short texts in each language the prompts ask for.

  /tmp/ifref/bin/python tools/make_ifeval_fixture.py --lmeval /tmp/lmeval_src \
      --data ../shared/datasets/ifeval/input_data.jsonl --generated smol.jsonl qwen.jsonl \
      --out tests/fixtures/ifeval/agreement.jsonl.gz
"""
import argparse
import gzip
import json
import random
import sys
import tempfile
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ifeval_reference  # noqa: E402

WORDS = ("the river stone data light we they it is was and of to a in for on with as by at from "
         "don't it's well-known U.S. e.g. Mr. Dr. NASA AI café naïve résumé x-ray 3.5 I'm "
         "mother-in-law can't O'Neil co-op").split()
SENTENCE_BITS = ["Mr. Smith left.", "It works.", "Is it?", "Yes!", "See e.g. the list.", "Dr. Who came.",
                 "The U.S. agreed.", "1. First item.", "He said \"go.\"", "Wait... what?", "it ended. then more.",
                 "Price is $3.50 today.", "Visit example.com now.", "J. R. R. Tolkien wrote it.", "Ph.D. students came."]
LANG_TEXT = {
    "en": "The weather is nice today and we will walk to the park after lunch with our friends.",
    "de": "Das Wetter ist heute schön und wir gehen nach dem Mittagessen mit unseren Freunden in den Park.",
    "it": "Oggi il tempo è bello e dopo pranzo andremo al parco con i nostri amici.",
    "pt": "O tempo está bom hoje e vamos caminhar até o parque depois do almoço com os nossos amigos.",
    "fi": "Tänään on kaunis sää ja kävelemme lounaan jälkeen puistoon ystäviemme kanssa.",
    "sw": "Hali ya hewa ni nzuri leo na tutatembea hadi bustanini baada ya chakula cha mchana pamoja na marafiki zetu.",
    "vi": "Hôm nay thời tiết đẹp và chúng tôi sẽ đi bộ đến công viên sau bữa trưa cùng bạn bè.",
    "ru": "Сегодня хорошая погода, и после обеда мы пойдём в парк с нашими друзьями.",
    "bg": "Днес времето е хубаво и след обяд ще отидем в парка с нашите приятели.",
    "ar": "الطقس جميل اليوم وسنمشي إلى الحديقة بعد الغداء مع أصدقائنا.",
    "fa": "امروز هوا خوب است و بعد از ناهار با دوستانمان به پارک می‌رویم.",
    "ur": "آج موسم اچھا ہے اور ہم دوپہر کے کھانے کے بعد اپنے دوستوں کے ساتھ پارک جائیں گے۔",
    "hi": "आज मौसम अच्छा है और हम दोपहर के भोजन के बाद अपने दोस्तों के साथ पार्क जाएंगे।",
    "mr": "आज हवामान छान आहे आणि आम्ही दुपारच्या जेवणानंतर आमच्या मित्रांसोबत उद्यानात जाणार आहोत.",
    "ne": "आज मौसम राम्रो छ र हामी दिउँसोको खाना पछि हाम्रा साथीहरूसँग पार्कमा जान्छौं।",
    "bn": "আজ আবহাওয়া ভালো এবং আমরা দুপুরের খাবারের পর বন্ধুদের সাথে পার্কে যাব।",
    "gu": "આજે હવામાન સારું છે અને અમે બપોરના ભોજન પછી અમારા મિત્રો સાથે બગીચામાં જઈશું.",
    "pa": "ਅੱਜ ਮੌਸਮ ਵਧੀਆ ਹੈ ਅਤੇ ਅਸੀਂ ਦੁਪਹਿਰ ਦੇ ਖਾਣੇ ਤੋਂ ਬਾਅਦ ਆਪਣੇ ਦੋਸਤਾਂ ਨਾਲ ਪਾਰਕ ਜਾਵਾਂਗੇ।",
    "ta": "இன்று வானிலை நன்றாக உள்ளது, மதிய உணவுக்குப் பிறகு நண்பர்களுடன் பூங்காவிற்கு செல்வோம்.",
    "te": "ఈ రోజు వాతావరణం బాగుంది మరియు మధ్యాహ్న భోజనం తర్వాత మేము మా స్నేహితులతో పార్కుకు వెళ్తాము.",
    "kn": "ಇಂದು ಹವಾಮಾನ ಚೆನ್ನಾಗಿದೆ ಮತ್ತು ಊಟದ ನಂತರ ನಾವು ನಮ್ಮ ಸ್ನೇಹಿತರೊಂದಿಗೆ ಉದ್ಯಾನವನಕ್ಕೆ ಹೋಗುತ್ತೇವೆ.",
    "ko": "오늘은 날씨가 좋아서 점심을 먹은 후에 친구들과 함께 공원에 갈 거예요.",
    "th": "วันนี้อากาศดีและเราจะเดินไปสวนสาธารณะกับเพื่อนๆ หลังอาหารกลางวัน",
}


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def piece(rng, iid, kw, prompt):
    """A fragment aimed at one instruction, near its threshold."""
    d = rng.choice([-1, 0, 1])
    if iid == "length_constraints:number_words":
        return words(rng, max(1, kw["num_words"] + d))
    if iid == "length_constraints:number_sentences":
        return " ".join(rng.choice(SENTENCE_BITS) for _ in range(max(1, kw["num_sentences"] + d)))
    if iid == "change_case:capital_word_frequency":
        n = max(0, kw["capital_frequency"] + d)
        return " ".join(rng.choice(["NASA", "DON'T", "WELL-KNOWN", "U.S.", "I'M", "OK", "A"]) + " word" for _ in range(n))
    if iid == "keywords:frequency":
        return " ".join([kw["keyword"].upper() if rng.random() < .3 else kw["keyword"]] * max(0, kw["frequency"] + d))
    if iid == "keywords:letter_frequency":
        return (kw["letter"] * max(0, kw["let_frequency"] + d)) + " ok"
    if iid == "keywords:existence":
        return " ".join(k for k in kw["keywords"] if rng.random() < .8)
    if iid == "keywords:forbidden_words":
        return rng.choice(["", kw["forbidden_words"][0] + "s", kw["forbidden_words"][0].title()])
    if iid == "detectable_format:number_bullet_lists":
        return "\n".join(rng.choice(["* item", "- item", "  * item", "**bold**", "-- x"]) for _ in range(max(0, kw["num_bullets"] + d)))
    if iid == "detectable_format:number_highlighted_sections":
        return " ".join(rng.choice(["*hi*", "**bold**", "* *", "*a\nb*"]) for _ in range(max(0, kw["num_highlights"] + d)))
    if iid == "detectable_format:multiple_sections":
        return "\n".join(f"{kw['section_spliter']} {i + 1}\ntext" for i in range(max(0, kw["num_sections"] + d)))
    if iid == "length_constraints:number_paragraphs":
        return "\n***\n".join(words(rng, 5) for _ in range(max(1, kw["num_paragraphs"] + d)))
    if iid == "length_constraints:nth_paragraph_first_word":
        ps = [words(rng, 4) for _ in range(max(1, kw["num_paragraphs"] + d))]
        i = kw["nth_paragraph"] - 1
        if i < len(ps):
            ps[i] = rng.choice(["", "'", '"']) + kw["first_word"].title() + rng.choice([",", "", "."]) + " " + ps[i]
        return "\n\n".join(ps)
    if iid == "detectable_content:number_placeholders":
        return " ".join("[x]" for _ in range(max(0, kw["num_placeholders"] + d)))
    if iid == "detectable_content:postscript":
        return rng.choice(["P.S. bye", "p. s. bye", "P.P.S later", "PS bye", "P.P.S. x"])
    if iid == "startend:end_checker":
        return rng.choice([kw["end_phrase"], kw["end_phrase"].lower() + '"', kw["end_phrase"] + " Thanks."])
    if iid == "combination:repeat_prompt":
        return rng.choice([kw["prompt_to_repeat"], kw["prompt_to_repeat"].upper(), "Sure. " + kw["prompt_to_repeat"]])
    if iid == "combination:two_responses":
        return rng.choice(["A one.\n******\nB two.", "Same\n******\nSame", "A\n******\n\n******\nB", "A ***** B"])
    if iid == "detectable_format:json_format":
        return rng.choice(['```json\n{"a": 1}\n```', '{"a": [1, 2]', '"s"', "```\n[1, 2]\n```", "NaN"])
    if iid == "detectable_format:constrained_response":
        return rng.choice(["My answer is yes.", "My answer is Yes.", "my answer is no."])
    if iid == "detectable_format:title":
        return rng.choice(["<<Title>>", "<< >>", "<<a\nb>>", "<<<Nested>>>"])
    if iid == "language:response_language":
        return LANG_TEXT.get(kw["language"], "") if rng.random() < .8 else LANG_TEXT["en"]
    return ""


def wrap(rng, text, ids):
    """Transforms aimed at the whole-response instructions and at loose scoring."""
    if "change_case:english_capital" in ids and rng.random() < .7:
        text = text.upper()
    if "change_case:english_lowercase" in ids and rng.random() < .7:
        text = text.lower()
    if "punctuation:no_comma" in ids and rng.random() < .6:
        text = text.replace(",", "")
    if "startend:quotation" in ids and rng.random() < .7:
        text = '"' + text + '"'
    r = rng.random()
    if r < .25:
        text = "Sure, here is my answer:\n" + text
    elif r < .4:
        text = text + "\nI hope this helps!"
    elif r < .5:
        text = "**Answer**\n" + text + "\n*Note*"
    return text


def constructed(items, rng):
    out = []
    for d in items:
        for _ in range(2):
            parts = [piece(rng, i, k, d["prompt"]) for i, k in zip(d["instruction_id_list"], d["kwargs"])]
            rng.shuffle(parts)
            filler = LANG_TEXT["en"] if rng.random() < .5 else ""
            text = "\n\n".join(p for p in parts + [filler] if p)
            out.append({"key": d["key"], "source": "constructed", "response": wrap(rng, text, d["instruction_id_list"])})
    lang_items = [d for d in items if "language:response_language" in d["instruction_id_list"]]
    for code, text in LANG_TEXT.items():  # every language against every language prompt, and short texts
        for d in lang_items:
            for t in (text, text.split(" ")[0], text.upper(), text + " " + LANG_TEXT["en"]):
                if rng.random() < .12:
                    out.append({"key": d["key"], "source": f"language:{code}", "response": t})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lmeval", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--generated", nargs="*", default=[], help="JSONL {key, response[, source]}")
    ap.add_argument("--recycled", nargs="*", default=[], help="kvaudit samples.jsonl.gz of the demo models")
    ap.add_argument("--recycled-n", type=int, default=300, help="per model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    items = [json.loads(line) for line in open(a.data, encoding="utf-8")]
    rows = []
    for g in a.generated:
        for line in open(g, encoding="utf-8"):
            r = json.loads(line)
            rows.append({"key": r["key"], "source": r.get("source", os.path.basename(g)), "response": r["response"]})
    rng = random.Random(a.seed)
    pool = {}
    for path in a.recycled:
        model = path.split("/")[-2].split("_")[0]
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r["response"].strip():
                    pool.setdefault(r["response"], f"recycled:{model}")
    for source in sorted(set(pool.values())):
        texts = sorted(t for t, s in pool.items() if s == source)
        for t in rng.sample(texts, min(a.recycled_n, len(texts))):
            rows.append({"key": rng.choice(items)["key"], "source": source, "response": t})
    rows += constructed(items, rng)
    with tempfile.TemporaryDirectory() as tmp:
        rpath, vpath = f"{tmp}/r.jsonl", f"{tmp}/v.jsonl"
        with open(rpath, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({"key": r["key"], "response": r["response"]}) + "\n")
        sys.argv = ["ifeval_reference.py", "--lmeval", a.lmeval, "--data", a.data, "--responses", rpath, "--out", vpath]
        ifeval_reference.main()
        verdicts = [json.loads(line) for line in open(vpath, encoding="utf-8")]
    with gzip.open(a.out, "wt", encoding="utf-8", compresslevel=9) as f:
        for r, v in zip(rows, verdicts):
            f.write(json.dumps({**r, "strict": v["strict"], "loose": v["loose"], "langdetect": v["langdetect"]},
                               ensure_ascii=False) + "\n")
    print(f"{len(rows)} responses -> {a.out}")


if __name__ == "__main__":
    main()
