// `--kv-policy FILE` (issue 12): exactly one entry per layer of the model, unknown keys rejected,
// and every error names the file.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "kv/policy.h"

namespace kvaudit::kv {
namespace {

class PolicyFileLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("kvaudit_policy_file_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  // The UsageError message of load(path, n_layers), or "" when it loads.
  static std::string error(const std::string& path, int n_layers) {
    try {
      KvPolicy::load(path, n_layers);
    } catch (const UsageError& e) {
      return e.what();
    }
    return "";
  }
  std::filesystem::path dir_;
};

constexpr const char* kTwoLayers = R"({"layers": [{"k": "int4:token:asym", "v": "fp16"}, {"k": "fp16", "v": "int8:token:sym"}]})";

TEST_F(PolicyFileLoad, OneEntryPerLayerExactly) {
  const std::string p = write("two.json", kTwoLayers);
  EXPECT_EQ(error(p, 2), "");
  EXPECT_EQ(error(p, 3), p + ": KV policy lists 2 layers, but the model has 3");  // not 16-bit silently
  EXPECT_EQ(error(p, 1), p + ": KV policy lists 2 layers, but the model has 1");
  const KvPolicy ok = KvPolicy::load(p, 2);
  EXPECT_EQ(to_string(ok.scheme(0, Role::K)), "int4:token:asym");
  EXPECT_EQ(to_string(ok.scheme(1, Role::V)), "int8:token:sym");
}

TEST_F(PolicyFileLoad, EveryErrorNamesTheFile) {
  const std::string unknown = write("unknown.json", R"({"spec": "int4:token:asym", "bits": 4})");
  EXPECT_EQ(error(unknown, 2), unknown + ": KV policy: unknown key \"bits\" in the policy");
  const std::string unknown_role = write("role.json", R"({"layers": [{"k": "fp16", "v": "fp16", "q": "fp16"}]})");
  EXPECT_EQ(error(unknown_role, 1), unknown_role + ": KV policy: unknown key \"q\" in layers[0]");
  const std::string missing_v = write("missing.json", R"({"layers": [{"k": "fp16"}]})");
  EXPECT_EQ(error(missing_v, 1), missing_v + ": KV policy: layers[0] has no \"v\"");
  const std::string not_json = write("broken.json", "{\"spec\": ");
  EXPECT_EQ(error(not_json, 1).rfind("KV policy file '" + not_json + "' is not valid JSON: ", 0), 0u);
  const std::string bad_spec = write("spec.json", R"({"spec": "int4:tokn:asym"})");
  EXPECT_EQ(error(bad_spec, 2).rfind(bad_spec + ": ", 0), 0u) << error(bad_spec, 2);
  const std::string out_of_range = write("range.json", R"({"spec": "layers[5]=int4:token:asym"})");
  EXPECT_EQ(error(out_of_range, 2).rfind(out_of_range + ": KV spec part", 0), 0u) << error(out_of_range, 2);
  const std::string wrong_type = write("type.json", R"({"layers": [{"k": 4, "v": "fp16"}]})");
  EXPECT_EQ(error(wrong_type, 1).rfind(wrong_type + ": KV policy: ", 0), 0u) << error(wrong_type, 1);
  // nlohmann keeps the last of a repeated key: the first value would be dropped without a word.
  const std::string twice = write("twice.json", R"({"layers": [{"k": "int4:token:asym", "v": "fp16", "k": "fp16"}]})");
  EXPECT_EQ(error(twice, 1), "KV policy file '" + twice + "' states the key 'layers[0].k' twice");
  EXPECT_EQ(error((dir_ / "absent.json").string(), 1), "cannot open KV policy file '" + (dir_ / "absent.json").string() + "'");
}

}  // namespace
}  // namespace kvaudit::kv
