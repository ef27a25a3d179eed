// Every parser of user input, fed a malformed file through the binary (issue 12): exit 2 and one
// line naming the file (and line, for line-based formats) and what is wrong; never a crash or a
// silent fallback. The same table is in docs/ROBUSTNESS.md. Tiny fixture models, no real model.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../common/run_cli.h"

namespace {

namespace fs = std::filesystem;
using kvaudit::testing::run_cli;
using kvaudit::testing::slurp;

class MalformedInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kvaudit_malformed_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& bytes) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
  // A copy of the tiny llama fixture model with one file replaced.
  std::string model_with(const std::string& name, const std::string& file, const std::string& bytes) {
    const fs::path m = dir_ / name;
    fs::create_directories(m);
    for (const char* f : {"config.json", "model.safetensors"})
      fs::copy_file(fs::path(KVAUDIT_FIXTURES) / "models" / "llama" / f, m / f);
    if (!file.empty()) write(name + "/" + file, bytes);
    return m.string();
  }
  // Runs args; expects exit 2 and stderr "kvaudit: error: <message>\n".
  void expect_usage_error(const std::vector<std::string>& args, const std::string& message) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(r.err, "kvaudit: error: " + message + "\n");
  }
  fs::path dir_;
};

std::string fixture(const std::string& rel) { return (fs::path(KVAUDIT_FIXTURES) / rel).string(); }

TEST_F(MalformedInput, Gguf) {
  const std::string real = slurp(fixture("io/dequant_reference.gguf"));
  const std::string p = write("cut.gguf", real.substr(0, 200));
  expect_usage_error({"logits", "--model", p, "--tokens", "1", "--out", (dir_ / "x.npy").string()}, p + ": corrupt GGUF: a metadata key has length 11 at offset 190, past the end of the file (200 bytes)");
  const std::string q = write("magic.gguf", "GGUX" + real.substr(4, 400));
  expect_usage_error({"logits", "--model", q, "--tokens", "1", "--out", (dir_ / "x.npy").string()}, q + ": not a GGUF file (bad magic)");
}

TEST_F(MalformedInput, SafetensorsHeaderAndIndex) {
  const std::string m = model_with("cut", "model.safetensors", std::string("\x10\0\0\0\0\0\0\0{\"a\": 1}", 16));
  expect_usage_error({"logits", "--model", m, "--tokens", "1", "--out", (dir_ / "x.npy").string()}, m + "/model.safetensors: safetensors header length 16 exceeds the file (16 bytes)");
  const std::string idx = model_with("index", "", "");
  fs::remove(fs::path(idx) / "model.safetensors");
  write("index/model.safetensors.index.json", R"({"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}})");
  expect_usage_error({"logits", "--model", idx, "--tokens", "1", "--out", (dir_ / "x.npy").string()}, idx + "/model.safetensors.index.json: shard " + idx +
                         "/model-00001-of-00002.safetensors (for tensor model.embed_tokens.weight) is missing");
}

TEST_F(MalformedInput, ConfigJson) {
  const std::string m = model_with("cfg", "config.json", R"({"model_type": "llama", "hidden_size": 64})");
  expect_usage_error({"logits", "--model", m, "--tokens", "1", "--out", (dir_ / "x.npy").string()}, m + "/config.json: missing key 'num_hidden_layers'");
  const std::string n = model_with("cfg2", "config.json", "{\"model_type\": ");
  expect_usage_error({"logits", "--model", n, "--tokens", "1", "--out", (dir_ / "x.npy").string()}, n + "/config.json: not valid JSON");
}

TEST_F(MalformedInput, BiasesTheForwardPassHasNoPlaceFor) {
  // transformers' attention_bias also biases o_proj, mlp_bias gate/up/down: refused, never dropped.
  std::string cfg = slurp(fixture("models/llama/config.json"));
  const auto with = [&](const std::string& key) {
    std::string c = cfg;
    const size_t at = c.find("\"" + key + "\": false");
    c.replace(at, key.size() + 9, "\"" + key + "\": true");
    return c;
  };
  const std::string m = model_with("mlpb", "config.json", with("mlp_bias"));
  expect_usage_error({"logits", "--model", m, "--tokens", "1", "--out", (dir_ / "x.npy").string()},
                     m + "/config.json: mlp_bias: true is not supported: kvaudit's forward pass has no bias on gate/up/down");
  const std::string a = model_with("attnb", "config.json", with("attention_bias"));
  const auto r = run_cli({"logits", "--model", a, "--tokens", "1", "--out", (dir_ / "x.npy").string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("attention_bias: true (llama puts a bias on q, k, v and o_proj) is not supported"), std::string::npos)
      << r.err;
}

TEST_F(MalformedInput, ADirectoryWhereAFileBelongs) {
  const std::string d = dir_.string();
  expect_usage_error({"logits", "--model", fixture("models/llama"), "--tokens", "1", "--out", (dir_ / "x.npy").string(),
                      "--kv-policy", d},
                     "--kv-policy: KV policy file '" + d + "' is a directory");
  expect_usage_error({"tokenize", "--model", fixture("text/bytelevel"), "--file", d},
                     "--file '" + d + "' is a directory, not a file");
}

TEST_F(MalformedInput, TokenizerJson) {
  const std::string m = model_with("tok", "tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  expect_usage_error({"tokenize", "--model", m, "--text", "hi"}, m + "/tokenizer.json: unsupported tokenizer model type 'Unigram' (only BPE)");
}

TEST_F(MalformedInput, MessagesJson) {
  const std::string p = write("messages.json", R"({"role": "user", "content": "hi"})");
  expect_usage_error({"template", "--model", fixture("models/llama"), "--messages", p},
                     "--messages '" + p + "': expected a JSON list of messages or an object with \"messages\"");
  // Content of another type names the file and the message, not the chat template's line.
  const std::string q = write("content.json", R"([{"role": "system", "content": "s"}, {"role": "user", "content": 5}])");
  expect_usage_error({"template", "--model", fixture("models/llama"), "--messages", q},
                     "--messages '" + q + "': message 1's \"content\" must be a string, null or a list of parts");
  const std::string r = write("role.json", R"([{"content": "hi"}])");
  expect_usage_error({"template", "--model", fixture("models/llama"), "--messages", r},
                     "--messages '" + r + "': message 0 needs a string \"role\"");
}

TEST_F(MalformedInput, KvSpecAndPolicyFile) {
  expect_usage_error({"logits", "--model", fixture("models/llama"), "--tokens", "1", "--out", (dir_ / "x.npy").string(),
                      "--kv", "int4:tokn:asym"},
                     "bad KV spec: unknown option 'tokn'\n  int4:tokn:asym\n       ^^^^");
  const std::string p = write("policy.json", R"({"layers": [{"k": "int4:token:asym", "v": "fp16"}]})");
  expect_usage_error({"logits", "--model", fixture("models/llama"), "--tokens", "1", "--out", (dir_ / "x.npy").string(),
                      "--kv-policy", p},
                     "--kv-policy: " + p + ": KV policy lists 1 layers, but the model has 2");
}

TEST_F(MalformedInput, Npy) {
  const std::string p = write("x.npy", std::string("\x93NUMPY\x01\x00\x20\x00{'descr': '<f8', 'shape': (2,), }\n", 42));
  expect_usage_error({"kv", "--scheme", "kivi2", "--role", "k", "--in", p, "--out", (dir_ / "y.npy").string()}, p + ": .npy dtype '<f8' is not supported (only little-endian float32 '<f4')");
}

TEST_F(MalformedInput, CalibrationFileWithARepeatedKey) {
  const char header[] = "\x93NUMPY\x01\x00\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }\n";
  const std::string x = write("x.npy", std::string(header, sizeof header - 1) + std::string(16, '\0'));
  const std::string c = write("calib.json", R"({"layers": [], "layers": []})");
  expect_usage_error({"kv", "--scheme", "nuq4", "--role", "k", "--in", x, "--out", (dir_ / "y.npy").string(), "--calib", c},
                     "--calib file '" + c + "' states the key 'layers' twice");
}

TEST_F(MalformedInput, Datasets) {
  const auto eval = [&](const std::string& bench) {
    return std::vector<std::string>{"eval", "--model", fixture("models/llama"), "--bench", bench, "--out",
                                    (dir_ / "out").string(), "--quiet"};
  };
  const std::string csv = write("p.csv", "prompt,category\n\"unterminated,x\n");
  expect_usage_error(eval(csv), csv + ":2: quoted field is never closed");
  const std::string jsonl = write("p.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": 3}\n");
  expect_usage_error(eval(jsonl), jsonl + ":2: expected a JSON string or an object with a string field 'prompt' (--column)");
  const std::string twice = write("twice.csv", "prompt,prompt\na,b\n");
  expect_usage_error(eval(twice), twice + ":1: the header names column 'prompt' twice (columns 1 and 2)");
}

TEST_F(MalformedInput, KvModifiersGivenTwice) {
  const auto r = run_cli({"logits", "--model", fixture("models/llama"), "--tokens", "1", "--out",
                          (dir_ / "x.npy").string(), "--kv", "int4@pre@post"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("modifier '@post' given twice (@pre and @post exclude each other)"), std::string::npos) << r.err;
}

}  // namespace
