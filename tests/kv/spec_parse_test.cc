// The scheme-spec grammar (SPEC.md §3): accepted specs and their canonical form, rejected specs with
// the caret under the offending token, policy overrides and the JSON policy round trip.
#include <gtest/gtest.h>

#include "core/error.h"
#include "kv/policy.h"

namespace kvaudit::kv {
namespace {

struct Accept {
  const char* spec;
  const char* canonical;
};

TEST(SpecParse, AcceptsAndCanonicalises) {
  const Accept cases[] = {
      {"fp16", "fp16"},
      {"bf16", "bf16"},
      {"int4", "int4:token:asym"},
      {"int4:token:asym", "int4:token:asym"},
      {"int8:sym:head", "int8:head:sym"},
      {"int2:group", "int2:group:asym:g32"},
      {"int2:group:g64", "int2:group:asym:g64"},
      {"int3:tensor:sym@pre+protect=5%", "int3:tensor:sym@pre+protect=5%"},
      {"int2:channel:g32:r32", "int2:channel:asym:g32:r32"},
      {"int2:channel:g16", "int2:channel:asym:g16:r16"},
      {"int4:token:r16", "int4:token:asym:r16"},
      {"kivi2", "kivi2:g32:r32"},
      {"kivi4:g64:r128", "kivi4:g64:r128"},
      {"fp8e4m3", "fp8e4m3"},
      {"fp8e5m2:scale=1.0", "fp8e5m2"},
      {"fp8e4m3:scale=0.25", "fp8e4m3:scale=0.25"},
      {"fp8e4m3:scale=calib", "fp8e4m3:scale=calib"},
      {"fp8e5m2:scale=dynamic", "fp8e5m2:scale=dynamic"},
      {"q8_0", "q8_0"},
      {"q4_0+had", "q4_0+had"},
      {"q5_1@post", "q5_1"},
      {"iq4_nl", "iq4_nl"},
      {"nuq3", "nuq3"},
      {"nuq4:sparse=0.01", "nuq4:sparse=0.01"},
      {"int4:token+protect=8ch", "int4:token:asym+protect=8ch"},
      {"k=int2:channel:g32:r32;v=int2:group:g32", "k=int2:channel:asym:g32:r32;v=int2:group:asym:g32"},
      {"int4:token:asym;layers[0,1]=fp16", "int4:token:asym;layers[0,1]=fp16"},
      {"layers[0-1,2]=bf16;layers[2-4]=int4", "layers[0-1,2]=bf16;layers[2-4]=int4:token:asym"},
      {"int4:token:asym;layers[0,1]=fp16;layers[0-1,2]=bf16", "int4:token:asym;layers[0-1,2]=bf16"},
      // Parts that change no site leave the name: overridden by later ones, or repeating earlier ones.
      {"layers[0-1,2]=fp16;int4", "int4:token:asym"},
      {"bf16;layers[0]=bf16", "bf16"},
      {"int4;layers[3-5]=int4:token:asym;k=q8_0", "int4:token:asym;k=q8_0"},
      {"layers[0]=fp16", "fp16"},
      {"fp16;layers[0-2]=fp16", "fp16"},
      {"int4;bf16", "bf16"},
      {"layers[0-3]=int4;layers[1-2]=int4;layers[3]=fp16", "layers[0-3]=int4:token:asym;layers[3]=fp16"},
      {"k=int4;v=int4", "k=int4:token:asym;v=int4:token:asym"},  // not merged: both still set a role
      {"layers[0-3,7].k=q4_0", "layers[0-3,7].k=q4_0"},
      {"layers[2].v=int8", "layers[2].v=int8:token:asym"},
  };
  for (const auto& c : cases) {
    const KvPolicy p = KvPolicy::parse(c.spec);
    EXPECT_EQ(p.name(), c.canonical) << c.spec;
    EXPECT_EQ(KvPolicy::parse(p.name()).name(), p.name()) << c.spec;  // canonical is a fixed point
  }
}

struct Reject {
  const char* spec;
  size_t caret;     // column of the first '^' under the spec
  size_t carets;    // how many
  const char* what;  // a substring of the message
};

TEST(SpecParse, RejectsWithAPointedMessage) {
  const Reject cases[] = {
      {"", 0, 1, "empty spec"},
      {"int9", 3, 1, "bit width 9 out of range"},
      {"int0:token", 3, 1, "bit width 0"},
      {"int", 0, 3, "unknown scheme"},
      {"foo", 0, 3, "unknown scheme 'foo'"},
      {"int4:tokn", 5, 4, "unknown option 'tokn'"},
      {"int4:token:token", 11, 5, "given twice"},
      {"int4:g32", 5, 1, "':gN' applies"},
      {"int4:group:g0", 12, 1, "out of range"},
      {"int4:group:gx", 12, 1, "expected a count"},
      {"int2:channel:g32:r48", 17, 1, "multiple of the block size"},
      {"kivi2:r16", 6, 1, "multiple of the block size"},
      {"kivi2:sym", 6, 3, "applies to int only"},
      {"q4_0:g32", 5, 3, "applies to int and kivi only"},
      {"fp8e4m3:scale=0", 14, 1, "expected a positive number"},
      {"fp8e4m3:scale=abc", 14, 3, "expected a positive number"},
      {"int4:scale=2", 5, 7, "applies to fp8e4m3/fp8e5m2 only"},
      {"nuq4:sparse=0.7", 12, 3, "fraction in [0, 0.5)"},
      {"int4@mid", 4, 4, "unknown modifier '@mid'"},
      {"int4+protect=0%", 13, 2, "percentage"},
      {"int4+protect=5", 13, 1, "N% or Nch"},
      {"fp16+had", 4, 4, "16-bit scheme"},
      {"int4+had+protect=1ch", 4, 16, "cannot be combined"},
      {"int1:sym", 0, 4, "no symmetric form"},
      {"int4:", 4, 1, "empty option"},
      {"int4;;int8", 5, 1, "empty part"},
      {"int4;", 4, 1, "trailing ';'"},
      {"x=int4", 0, 1, "expected 'k', 'v' or 'layers"},
      {"layers[]=int4", 6, 2, "empty layer list"},
      {"layers[3-1]=int4", 7, 3, "empty layer range"},
      {"layers[a]=int4", 7, 1, "layer index or range"},
      {"layers[1,]=int4", 8, 1, "trailing ','"},
      {"layers[1.k=int4", 6, 4, "missing ']'"},
      {"layers[1].q=int4", 9, 2, "expected '.k', '.v'"},
      {"k=", 2, 1, "missing scheme"},
      {"k=int4;v=int4:token:asym:g8", 25, 1, "':gN' applies"},
  };
  for (const auto& c : cases) {
    try {
      KvPolicy::parse(c.spec);
      ADD_FAILURE() << "accepted: " << c.spec;
    } catch (const UsageError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.what), std::string::npos) << c.spec << " -> " << msg;
      const std::string caret_line = "\n  " + std::string(c.caret, ' ') + std::string(c.carets, '^');
      EXPECT_TRUE(msg.size() >= caret_line.size() && msg.substr(msg.size() - caret_line.size()) == caret_line)
          << c.spec << " -> " << msg;
      EXPECT_NE(msg.find("\n  " + std::string(c.spec) + "\n"), std::string::npos) << msg;
    }
  }
}

TEST(Policy, LaterPartsOverrideEarlierOnes) {
  const KvPolicy p = KvPolicy::parse("int4:token:asym@pre;layers[0,1]=fp16;layers[1].v=q8_0;v=int8");
  EXPECT_EQ(to_string(p.scheme(0, Role::K)), "fp16");
  EXPECT_EQ(to_string(p.scheme(0, Role::V)), "int8:token:asym");
  EXPECT_EQ(to_string(p.scheme(1, Role::V)), "int8:token:asym");
  EXPECT_EQ(to_string(p.scheme(5, Role::K)), "int4:token:asym@pre");
  EXPECT_FALSE(p.keys_pre_rope(0));
  EXPECT_TRUE(p.keys_pre_rope(5));
  EXPECT_FALSE(KvPolicy().keys_pre_rope(0));
  EXPECT_EQ(KvPolicy().name(), "fp16");
  EXPECT_TRUE(KvPolicy::parse("fp16").is_baseline());
  EXPECT_FALSE(p.needs_calibration());
  EXPECT_TRUE(KvPolicy::parse("int4;layers[3]=nuq4").needs_calibration());
  EXPECT_TRUE(KvPolicy::parse("fp8e4m3:scale=calib").needs_calibration());
}

TEST(Policy, LayerListsAreValidatedAgainstTheModel) {
  EXPECT_NO_THROW(KvPolicy::parse("layers[0-29]=int4", 30));
  EXPECT_THROW(KvPolicy::parse("layers[0-30]=int4", 30), UsageError);
  const KvPolicy p = KvPolicy::parse("layers[40]=int4");
  EXPECT_THROW(p.validate(32), UsageError);
}

TEST(Policy, JsonRoundTripPerLayerAndRole) {
  KvPolicy p = KvPolicy::parse("kivi2;layers[1]=fp16;layers[2].k=fp8e5m2@pre");
  p.set_storage(Storage::kPacked);
  const nlohmann::json j = p.to_json(4);
  EXPECT_EQ(j["layers"].size(), 4u);
  EXPECT_EQ(j["layers"][2]["k"], "fp8e5m2@pre");
  EXPECT_EQ(j["layers"][2]["v"], "kivi2:g32:r32");
  const KvPolicy q = KvPolicy::from_json(nlohmann::json::parse(j.dump()));
  for (int l = 0; l < 4; ++l)
    for (Role r : {Role::K, Role::V}) EXPECT_EQ(q.scheme(l, r), p.scheme(l, r)) << l;
  EXPECT_EQ(q.storage(), Storage::kPacked);
  EXPECT_TRUE(q.keys_pre_rope(2));
  EXPECT_EQ(KvPolicy::from_json({{"spec", "q4_0"}}).name(), "q4_0");
  EXPECT_THROW(KvPolicy::from_json({{"layers", {{{"k", "int4"}}}}}), UsageError);  // no "v"
  EXPECT_THROW(KvPolicy::from_json({{"layers", {{{"k", "int4"}, {"v", "int99"}}}}}), UsageError);
  EXPECT_THROW(KvPolicy::from_json({{"spec", "q4_0"}, {"storage", "zip"}}), UsageError);
}

TEST(Calibration, JsonRoundTrip) {
  Calibration c;
  const float rows[] = {1, -2, 3, 0.5f};
  c.observe(3, Role::K, true, rows, 2, 2);
  const Calibration d = Calibration::from_json(nlohmann::json::parse(c.to_json().dump()));
  const ChannelStats* s = d.find(3, Role::K, true);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->max_abs, (std::vector<float>{3, 2}));
  EXPECT_EQ(s->samples, (std::vector<float>{1, -2, 3, 0.5f}));
  EXPECT_EQ(d.find(3, Role::K, false), nullptr);
  EXPECT_THROW(Calibration::from_json({{"sites", 1}}), UsageError);
}

}  // namespace
}  // namespace kvaudit::kv
