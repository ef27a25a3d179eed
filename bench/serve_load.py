#!/usr/bin/env python3
"""Bounded load test of `kvaudit serve` on loopback (issue 13, must-show 3).

Starts `kvaudit serve --max-batch C` for the largest concurrency C, then for each concurrency c runs c
clients that each send --requests requests one after another (/v1/completions, greedy, a distinct
prompt of about --prompt-len tokens per request, max_tokens --gen) and reports requests/s and
generated tokens/s over the wall time, with lost (no 200 answer) and duplicated (an answer id or
request tag seen twice) counts, which must be 0. Then `kvaudit bench` at the same batch sizes, prompt
length and decode steps, so the two columns show what the HTTP layer and scheduling cost.

    python3 bench/serve_load.py --binary build/kvaudit --model ~/.cache/kvaudit/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import threading
import time


def post(host, port, body, timeout):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def run_level(host, port, clients, per_client, prompt_len, gen, timeout):
    answers, lock = [], threading.Lock()

    def client(c):
        for r in range(per_client):
            tag = f"request {c}-{r}"
            # About prompt_len tokens: the tag, then 3-digit numbers (4 tokens each with SmolLM2's
            # tokenizer, which splits digits); the answers' usage gives the exact count.
            prompt = tag + ": " + " ".join(str(100 + (c * 7919 + r * 104729 + i) % 900) for i in range(prompt_len // 4 - 2))
            try:
                status, body = post(host, port, {"prompt": prompt, "max_tokens": gen, "temperature": 0}, timeout)
            except OSError as e:
                status, body = -1, str(e)
            with lock:
                answers.append((tag, status, body))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = [(tag, json.loads(body)) for tag, status, body in answers if status == 200]
    ids = [j["id"] for _, j in ok]
    tags = [tag for tag, _ in ok]
    tokens = sum(j["usage"]["completion_tokens"] for _, j in ok)
    prompt_tokens = sum(j["usage"]["prompt_tokens"] for _, j in ok)
    return {"clients": clients, "requests": clients * per_client, "answered": len(ok),
            "lost": clients * per_client - len(ok), "duplicated": (len(ids) - len(set(ids))) + (len(tags) - len(set(tags))),
            "wall_s": round(wall, 2), "requests_per_s": round(len(ok) / wall, 2),
            "generated_tok_per_s": round(tokens / wall, 1), "generated_tokens": tokens,
            "mean_prompt_tokens": round(prompt_tokens / max(1, len(ok)), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="build/kvaudit")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/kvaudit/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--kv", default="", help="the server's --kv (default fp16)")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--requests", type=int, default=4, help="requests per client")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--no-engine-bench", action="store_true", help="skip `kvaudit bench`")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    kv = ["--kv", a.kv] if a.kv else []

    server = subprocess.Popen([a.binary, "serve", "--model", a.model, "--port", "0", "--threads", a.threads,
                               "--max-batch", str(max(levels)), "--max-queue", str(2 * max(levels)), "--quiet", *kv],
                              stdout=subprocess.PIPE, text=True)
    url = json.loads(server.stdout.readline())["listening"]
    host, port = url.split("//")[1].split(":")
    rows = []
    try:
        post(host, int(port), {"prompt": "warm up", "max_tokens": 2, "temperature": 0}, a.timeout)
        for c in levels:
            rows.append(run_level(host, int(port), c, a.requests, a.prompt_len, a.gen, a.timeout))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        rc = server.wait(120)
    engine = {}
    if not a.no_engine_bench:
        out = subprocess.run([a.binary, "bench", "--model", a.model, "--batch", a.concurrency, "--prompt-len",
                              str(a.prompt_len), "--gen", str(a.gen), "--repeat", "1", "--threads", a.threads, "--json",
                              *kv], check=True, capture_output=True, text=True).stdout
        engine = {r["batch"]: r for r in json.loads(out)["results"]}
    print(f"\nserver exit code {rc}; load average {os.getloadavg()[0]:.1f}")
    # The engine alone doing the same work: each round prefills `clients` prompts and decodes `gen`
    # steps at batch `clients`, at the rates `kvaudit bench` measured; its generated tok/s is then
    # clients * gen / (clients * prompt / prefill + clients * gen / decode).
    print("| clients | requests | lost | duplicated | requests/s | generated tok/s | `kvaudit bench` prefill / decode "
          "tok/s | engine-only generated tok/s (same work) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        e = engine.get(r["clients"])
        cell, equiv = "-", "-"
        if e:
            cell = f"{e['prefill_tok_s']:.1f} / {e['decode_tok_s']:.1f}"
            b = r["clients"]
            equiv = f"{b * a.gen / (b * a.prompt_len / e['prefill_tok_s'] + b * a.gen / e['decode_tok_s']):.1f}"
        print(f"| {r['clients']} | {r['requests']} | {r['lost']} | {r['duplicated']} | {r['requests_per_s']} | "
              f"{r['generated_tok_per_s']} | {cell} | {equiv} |")
    bad = rc != 0 or any(r["lost"] or r["duplicated"] for r in rows)
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
