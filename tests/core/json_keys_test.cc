#include "core/json_keys.h"

#include <gtest/gtest.h>

namespace kvaudit {
namespace {

TEST(JsonKeys, NoneInDistinctKeys) {
  EXPECT_EQ(first_duplicate_key(R"({"a": 1, "b": {"a": 2}, "c": [{"a": 1}, {"a": 2}]})"), std::nullopt);
  EXPECT_EQ(first_duplicate_key("[1, 2, 2]"), std::nullopt);
  EXPECT_EQ(first_duplicate_key("3"), std::nullopt);
}

TEST(JsonKeys, NamesWhereTheKeyRepeats) {
  EXPECT_EQ(first_duplicate_key(R"({"default": "int4", "default": "fp16"})"), "default");
  EXPECT_EQ(first_duplicate_key(R"({"a": {"x": 1, "y": [1, 2], "x": 2}})"), "a.x");
  EXPECT_EQ(first_duplicate_key(R"({"layers": [{"k": 1}, 7, {"k": 1, "v": 2, "k": 3}]})"), "layers[2].k");
  EXPECT_EQ(first_duplicate_key(R"([[0], {"q": {}, "q": {}}])"), "[1].q");
}

TEST(JsonKeys, InvalidJsonIsLeftToTheParser) {
  EXPECT_EQ(first_duplicate_key(R"({"a": 1, )"), std::nullopt);
  EXPECT_EQ(first_duplicate_key(""), std::nullopt);
}

}  // namespace
}  // namespace kvaudit
