#!/usr/bin/env python3
"""`kvaudit serve` end to end on loopback (issue 13, must-show 1 and 2), on SmolLM2-135M.

Driven by the official `openai` Python client (installed from PyPI into the build tree by
tests/serve/install_openai.sh; its cases skip when it is missing) and by raw HTTP (http.client):
chat and completions, streamed and not, every error status, SIGTERM during a request, and greedy
output equal to `kvaudit generate` of the same prompt under the same KV scheme. `EndpointEval`:
`eval --endpoint` against two servers equals the in-process `eval`. Exit 77 (ctest: skipped) when
the model has not been fetched (scripts/fetch-models.sh smollm2).

    KVAUDIT_BINARY=build/kvaudit KVAUDIT_PYTHONPATH=build/python python3 tests/serve/serve_e2e_test.py [Class]
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.environ.get("KVAUDIT_PYTHONPATH", ""))
try:
    import openai
except ImportError:
    openai = None

BIN = os.environ.get("KVAUDIT_BINARY", "build/kvaudit")
MODEL = os.path.join(os.environ.get("KVAUDIT_CACHE", os.path.expanduser("~/.cache/kvaudit")),
                     "SmolLM2-135M-Instruct.Q4_1.gguf")
KEY = "test-key-13"
SCHEME = "int4:token:asym"
THREADS = "2"
MAX_NEW = 24
PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.",
           "How do I make a cake?", "Name three prime numbers.", "Tell me a joke.",
           "What is 12 times 12?", "Describe a cat in one sentence.", "Why is the sky blue?"]
# A raw prompt the model continues for a long time (no end-of-text soon): keeps a request running.
LONG_PROMPT = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
# Generous: on a 2-core machine shared with builds SmolLM2 decodes ~1 token/s at batch 1.
HTTP_TIMEOUT = 600


class Server:
    """A `kvaudit serve` process on a free loopback port."""

    def __init__(self, *extra):
        self.proc = subprocess.Popen([BIN, "serve", "--model", MODEL, "--port", "0", "--threads", THREADS, *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("serve did not start: " + self.proc.stderr.read())
        info = json.loads(line)
        self.url, self.model = info["listening"], info["model"]
        self.host, self.port = urllib.parse.urlparse(self.url).hostname, urllib.parse.urlparse(self.url).port
        # Drain stderr (the request log) so the server never blocks on a full pipe.
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def request(self, method, path, body=None, key=KEY, raw_body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = "Bearer " + key
        data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        out = resp.status, resp.read().decode()
        self.last_headers = {k.lower(): v for k, v in resp.getheaders()}
        conn.close()
        return out

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def generate(prompts, raw=False, kv=None):
    """`kvaudit generate --prompts` of the prompts: [(response, completion tokens, finish)]; the
    completion tokens count a stop id that ended the response, as OpenAI's and vLLM's usage do."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for p in prompts:
            f.write(json.dumps(p) + "\n")
    args = [BIN, "generate", "--model", MODEL, "--prompts", f.name, "--max-new-tokens", str(MAX_NEW),
            "--threads", THREADS]
    args += ["--raw"] if raw else []
    args += ["--kv", kv] if kv else []
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    os.unlink(f.name)
    return [(j["response"], j["n_tokens"] + (j["finish"] == "stop"), j["finish"]) for j in map(json.loads, out.splitlines())]


def sse_events(resp):
    """The data payloads of a server-sent-event response, as they arrive."""
    for raw in resp:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data: "):
            yield line[len("data: "):]


def stream_request(server, path, body):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=HTTP_TIMEOUT)
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY})
    return conn, conn.getresponse()


class Serve(unittest.TestCase):
    """One server under SCHEME (so equality with `generate` holds on a quantized plan), with an API
    key, a small body limit and a prompt limit."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--kv", SCHEME, "--api-key", KEY, "--max-batch", "4", "--max-body-bytes", "65536",
                            "--max-prompt-tokens", "256", "--max-new-tokens", str(MAX_NEW))
        cls.chat_ref = generate(PROMPTS, kv=SCHEME)
        cls.raw_ref = generate(PROMPTS[:2], raw=True, kv=SCHEME)
        if openai:
            cls.client = openai.OpenAI(base_url=cls.server.url + "/v1", api_key=KEY, max_retries=0)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def chat_body(self, prompt, **kw):
        return {"model": self.server.model, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": MAX_NEW, "temperature": 0, **kw}

    # ---------------------------------------------------------------- openai client
    @unittest.skipUnless(openai, "the openai client could not be installed from PyPI")
    def test_openai_chat_equals_generate(self):
        r = self.client.chat.completions.create(model=self.server.model, max_tokens=MAX_NEW, temperature=0,
                                                messages=[{"role": "user", "content": PROMPTS[0]}])
        self.assertEqual(r.choices[0].message.content, self.chat_ref[0][0])
        self.assertEqual(r.usage.completion_tokens, self.chat_ref[0][1])
        self.assertGreater(r.usage.prompt_tokens, 5)
        self.assertEqual(r.choices[0].finish_reason, self.chat_ref[0][2])

    @unittest.skipUnless(openai, "the openai client could not be installed from PyPI")
    def test_openai_chat_stream_equals_generate(self):
        chunks = list(self.client.chat.completions.create(
            model=self.server.model, max_tokens=MAX_NEW, temperature=0, stream=True,
            stream_options={"include_usage": True}, messages=[{"role": "user", "content": PROMPTS[1]}]))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, self.chat_ref[1][0])
        self.assertIsNotNone([c for c in chunks if c.choices][-1].choices[0].finish_reason)
        self.assertEqual(chunks[-1].usage.completion_tokens, self.chat_ref[1][1])

    @unittest.skipUnless(openai, "the openai client could not be installed from PyPI")
    def test_openai_completion_equals_generate_raw(self):
        r = self.client.completions.create(model=self.server.model, prompt=PROMPTS[0], max_tokens=MAX_NEW,
                                           temperature=0)
        self.assertEqual(r.choices[0].text, self.raw_ref[0][0])
        text = "".join(c.choices[0].text for c in self.client.completions.create(
            model=self.server.model, prompt=PROMPTS[1], max_tokens=MAX_NEW, temperature=0, stream=True))
        self.assertEqual(text, self.raw_ref[1][0])

    @unittest.skipUnless(openai, "the openai client could not be installed from PyPI")
    def test_openai_models_and_errors(self):
        self.assertEqual([m.id for m in self.client.models.list().data], [self.server.model])
        with self.assertRaises(openai.AuthenticationError):
            openai.OpenAI(base_url=self.server.url + "/v1", api_key="wrong", max_retries=0).models.list()
        with self.assertRaises(openai.NotFoundError):
            self.client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        with self.assertRaises(openai.BadRequestError):
            self.client.chat.completions.create(model=self.server.model, messages=[], max_tokens=4)
        self.assertEqual(self.client.models.retrieve(self.server.model).id, self.server.model)
        with self.assertRaises(openai.BadRequestError) as e:  # a prompt over --max-prompt-tokens: 400, as vLLM
            self.client.completions.create(model=self.server.model, prompt="hello " * 300, max_tokens=1)
        self.assertEqual(e.exception.code, "context_length_exceeded")

    # ---------------------------------------------------------------- raw HTTP
    def test_concurrent_requests_each_equal_generate(self):
        """Eight requests at once share batches (max-batch 4: some join mid-run); each answer is the
        one `generate` gives for its prompt alone, and each comes back once."""
        results = [None] * len(PROMPTS)

        def one(i):
            results[i] = self.server.request("POST", "/v1/chat/completions", self.chat_body(PROMPTS[i]))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(PROMPTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = set()
        for i, (status, body) in enumerate(results):
            self.assertEqual(status, 200, body)
            j = json.loads(body)
            self.assertEqual(j["choices"][0]["message"]["content"], self.chat_ref[i][0], PROMPTS[i])
            self.assertEqual(j["usage"]["completion_tokens"], self.chat_ref[i][1])
            ids.add(j["id"])
        self.assertEqual(len(ids), len(PROMPTS))

    def test_raw_stream_is_sse(self):
        conn, resp = stream_request(self.server, "/v1/chat/completions", self.chat_body(PROMPTS[2], stream=True))
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/event-stream"))
        events = list(sse_events(resp))
        conn.close()
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        self.assertEqual("".join(c["choices"][0]["delta"].get("content", "") for c in chunks), self.chat_ref[2][0])
        self.assertEqual({c["object"] for c in chunks}, {"chat.completion.chunk"})

    def test_stop_string_and_seeded_sampling(self):
        ref = self.chat_ref[0][0]
        stop = ref[len(ref) // 2:len(ref) // 2 + 3]
        status, body = self.server.request("POST", "/v1/chat/completions", self.chat_body(PROMPTS[0], stop=[stop]))
        j = json.loads(body)
        self.assertEqual(j["choices"][0]["message"]["content"], ref[:ref.find(stop)])
        self.assertEqual(j["choices"][0]["finish_reason"], "stop")
        sampled = [json.loads(self.server.request("POST", "/v1/chat/completions", self.chat_body(
            PROMPTS[3], temperature=1.2, top_p=0.95, seed=s))[1])["choices"][0]["message"]["content"] for s in (7, 7, 8)]
        self.assertEqual(sampled[0], sampled[1])
        self.assertNotEqual(sampled[0], sampled[2])

    def test_health_models_metrics(self):
        status, body = self.server.request("GET", "/health", key=None)
        self.assertEqual((status, json.loads(body)["status"]), (200, "ok"))
        status, body = self.server.request("GET", "/v1/models")
        model = json.loads(body)["data"][0]
        self.assertEqual((model["kv"], model["kv_storage"], model["kv_compat"], model["kv_policy_file"]),
                         (SCHEME, "simulated", "none", None))
        status, body = self.server.request("GET", "/v1/models/" + self.server.model)  # models.retrieve
        self.assertEqual((status, json.loads(body)), (200, model))
        self.assert_error(404, self.server.request("GET", "/v1/models/other"), "model_not_found")
        self.server.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2, "temperature": 0})
        status, body = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn('kvaudit_info{model="%s",kv="%s",kv_storage="simulated",kv_compat="none"} 1' % (self.server.model, SCHEME),
                      body)
        counted = [l for l in body.splitlines() if l.startswith('kvaudit_http_requests_total{path="/v1/completions",status="200"}')]
        self.assertGreaterEqual(int(counted[0].split()[-1]), 1)
        gen = [l for l in body.splitlines() if l.startswith("kvaudit_generation_tokens_total ")]
        self.assertGreaterEqual(int(gen[0].split()[-1]), 2)

    def assert_error(self, expected_status, status_body, code=None):
        status, body = status_body
        self.assertEqual(status, expected_status, body)
        err = json.loads(body)["error"]
        self.assertTrue(err["message"])
        if code:
            self.assertEqual(err["code"], code)

    def test_error_statuses(self):
        s = self.server
        self.assert_error(400, s.request("POST", "/v1/chat/completions", raw_body="{not json"))
        self.assert_error(400, s.request("POST", "/v1/chat/completions", self.chat_body("x", temperature=5)))
        self.assert_error(401, s.request("POST", "/v1/chat/completions", self.chat_body("x"), key=None))
        self.assert_error(401, s.request("GET", "/v1/models", key="wrong"))
        self.assert_error(404, s.request("POST", "/v1/chat/completions", dict(self.chat_body("x"), model="nope")),
                          "model_not_found")
        self.assert_error(404, s.request("GET", "/v1/nothing"))
        for method, path in [("GET", "/v1/chat/completions"), ("PUT", "/v1/completions"), ("PATCH", "/v1/chat/completions"),
                             ("POST", "/v1/models"), ("DELETE", "/health")]:
            status, body = s.request(method, path)
            self.assertEqual(status, 405, (method, path, body))
            self.assertEqual(json.loads(body)["error"]["code"], "method_not_allowed")
        self.assert_error(413, s.request("POST", "/v1/completions", {"prompt": "x" * 70000, "max_tokens": 1}))
        self.assert_error(400, s.request("POST", "/v1/completions", {"prompt": "hello " * 300, "max_tokens": 1}),
                          "context_length_exceeded")


class Limits(unittest.TestCase):
    """A full queue (429) and SIGTERM during requests: 503 for new ones, the running one completes,
    exit 0."""

    def test_queue_full_then_sigterm_drains(self):
        server = Server("--max-batch", "1", "--max-queue", "1", "--api-key", KEY)
        long_body = {"prompt": LONG_PROMPT, "max_tokens": 100, "temperature": 0, "stream": True}
        conn1, resp1 = stream_request(server, "/v1/completions", long_body)
        events1 = sse_events(resp1)
        first = json.loads(next(events1))  # running now
        self.assertEqual(first["object"], "text_completion")
        queued = {}

        def second():
            try:
                queued["result"] = server.request("POST", "/v1/completions", dict(long_body, stream=False, max_tokens=4))
            except OSError as e:
                queued["result"] = (-1, repr(e))

        t = threading.Thread(target=second)
        t.start()
        deadline = time.time() + 30
        while time.time() < deadline:  # wait until the second request sits in the queue
            m = server.request("GET", "/metrics")[1]
            if "kvaudit_requests_waiting 1" in m:
                break
            time.sleep(0.05)
        status, body = server.request("POST", "/v1/completions", dict(long_body, stream=False))
        self.assertEqual(status, 429, body)
        self.assertEqual(json.loads(body)["error"]["code"], "queue_full")
        self.assertEqual(server.last_headers.get("retry-after"), "1")

        server.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline:  # the server refuses new work while it drains
            status, body = server.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 1})
            if status == 503:
                break
            time.sleep(0.05)
        self.assertEqual(status, 503, body)
        self.assertEqual(server.request("GET", "/health", key=None)[0], 503)
        rest = list(events1)  # the running request completes
        conn1.close()
        self.assertEqual(rest[-1], "[DONE]")
        self.assertIn(json.loads(rest[-2])["choices"][0]["finish_reason"], ("length", "stop"))
        t.join()
        self.assertEqual(queued["result"][0], 200, queued["result"][1])  # so does the queued one
        self.assertEqual(server.proc.wait(60), 0)


class Disconnect(unittest.TestCase):
    """A client that goes away is cancelled: streamed, and not streamed with gzip asked for (the openai
    client's default), whose half-second spaces must reach the wire uncompressed to show the close."""

    def cancelled(self, server):
        m = server.request("GET", "/metrics")[1]
        return int([l for l in m.splitlines() if l.startswith("kvaudit_requests_cancelled_total ")][0].split()[-1])

    def wait_cancelled(self, server, n):
        deadline = time.time() + 60
        while time.time() < deadline and self.cancelled(server) < n:
            time.sleep(0.1)
        self.assertEqual(self.cancelled(server), n)

    def test_clients_that_leave_are_cancelled(self):
        server = Server("--max-batch", "1", "--api-key", KEY)
        body = {"prompt": LONG_PROMPT, "max_tokens": 500, "temperature": 0}
        conn = http.client.HTTPConnection(server.host, server.port, timeout=HTTP_TIMEOUT)
        conn.request("POST", "/v1/completions", body=json.dumps(body),
                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY,
                              "Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertIsNone(resp.getheader("Content-Encoding"))
        self.assertEqual(resp.read1(1), b" ")  # a heartbeat, plain
        conn.close()
        self.wait_cancelled(server, 1)

        conn, resp = stream_request(server, "/v1/completions", dict(body, stream=True))
        self.assertEqual(json.loads(next(sse_events(resp)))["object"], "text_completion")
        conn.close()
        resp.close()
        self.wait_cancelled(server, 2)
        # The batch's one slot is free again.
        status, out = server.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2, "temperature": 0})
        self.assertEqual(status, 200, out)
        self.assertEqual(server.stop(), 0)


class EndpointEval(unittest.TestCase):
    """`eval --endpoint` against a 16-bit and a SCHEME server == in-process `eval` (greedy, full
    responses): the same samples.jsonl bytes and the same results."""

    def test_endpoint_eval_equals_in_process(self):
        base, quant = Server(), Server("--kv", SCHEME)
        with tempfile.TemporaryDirectory() as tmp:
            common = ["--bench", "advbench", "--limit", "3", "--seed", "2", "--max-new-tokens", str(MAX_NEW),
                      "--quiet", "--json"]
            ep = subprocess.run([BIN, "eval", *common, "--endpoint", quant.url, "--baseline-endpoint", base.url,
                                 "--endpoint-concurrency", "3", "--out", tmp + "/ep"], capture_output=True, text=True)
            self.assertEqual(ep.returncode, 0, ep.stderr)
            # The deployment's own cache is what it is: no noise-floor control there, none here.
            local = subprocess.run([BIN, "eval", *common, "--model", MODEL, "--kv", SCHEME, "--full-responses",
                                    "--no-noise-floor", "--threads", THREADS, "--out", tmp + "/local"],
                                   capture_output=True, text=True)
            self.assertEqual(local.returncode, 0, local.stderr)
            def read(path):
                with open(path, encoding="utf-8") as f:
                    return f.read()
            # The same lines but for `gen`, the settings each was generated with (served model vs
            # model file and device).
            def lines(path):
                out = [json.loads(l) for l in read(path).splitlines()]
                return out, [l.pop("gen") for l in out]
            (ep_lines, ep_gen), (local_lines, local_gen) = lines(tmp + "/ep/samples.jsonl"), lines(tmp + "/local/samples.jsonl")
            self.assertEqual(ep_lines, local_lines)
            self.assertEqual(ep_gen[0], {"endpoint_model": ep_gen[0]["endpoint_model"], "template": "chat",
                                         "system": "", "max_new_tokens": MAX_NEW})
            self.assertEqual(local_gen[0]["device"], "cpu")
            self.assertEqual(local_gen[0]["max_new_tokens"], MAX_NEW)
            self.assertEqual(len(read(tmp + "/ep/samples.jsonl").splitlines()), 6)
            ep_results = json.loads(read(tmp + "/ep/results.json"))
            self.assertEqual(ep_results["results"], json.loads(read(tmp + "/local/results.json"))["results"])
            self.assertEqual(list(ep_results["results"]), ["fp16", SCHEME])
            # Resumable: a rerun finds every sample done and asks the servers nothing.
            again = subprocess.run([BIN, "eval", *common, "--endpoint", quant.url, "--baseline-endpoint", base.url,
                                    "--out", tmp + "/ep"], capture_output=True, text=True)
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertEqual(json.loads(again.stdout)["timing"]["samples_resumed"], 6)
        self.assertEqual(base.stop(), 0)
        self.assertEqual(quant.stop(), 0)


if __name__ == "__main__":
    if not os.path.exists(MODEL):
        print(f"SKIP: {MODEL} not fetched (scripts/fetch-models.sh smollm2)")
        sys.exit(77)
    unittest.main(verbosity=2)
