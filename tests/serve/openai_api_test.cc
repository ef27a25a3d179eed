// The OpenAI wire format of serve/openai_api.h: what a request body means and which ones are
// refused with which status.
#include <gtest/gtest.h>

#include "serve/openai_api.h"

namespace kvaudit::serve {
namespace {

int status_of(const std::string& body, Endpoint e = Endpoint::kChat) {
  try {
    parse_completion_request(body, e);
  } catch (const ApiError& err) {
    return err.status;
  }
  return 200;
}

TEST(OpenAiApi, ReadsAChatRequest) {
  const CompletionParams p = parse_completion_request(
      R"({"model": "m", "messages": [{"role": "system", "content": "s"},
          {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
          "max_tokens": 7, "temperature": 0, "top_p": 0.5, "seed": 3, "stop": ["x", "y"], "stream": true,
          "stream_options": {"include_usage": true}})",
      Endpoint::kChat);
  EXPECT_EQ(p.model, "m");
  ASSERT_EQ(p.messages.size(), 2u);
  EXPECT_EQ(p.messages[1].role, "user");
  EXPECT_EQ(p.messages[1].content, "ab");
  EXPECT_EQ(*p.max_tokens, 7);
  EXPECT_EQ(p.sampling.temperature, 0.0);
  EXPECT_EQ(p.sampling.top_p, 0.5);
  EXPECT_EQ(*p.seed, 3u);
  EXPECT_EQ(p.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
}

TEST(OpenAiApi, DefaultsAreOpenAis) {
  const CompletionParams p = parse_completion_request(R"({"prompt": "hi"})", Endpoint::kCompletion);
  EXPECT_EQ(p.prompt, "hi");
  EXPECT_FALSE(p.max_tokens.has_value());
  EXPECT_EQ(p.sampling.temperature, 1.0);
  EXPECT_EQ(p.sampling.top_p, 1.0);
  EXPECT_FALSE(p.stream);
}

TEST(OpenAiApi, RefusesBadRequestsWith400) {
  EXPECT_EQ(status_of("{not json"), 400);
  EXPECT_EQ(status_of("[1]"), 400);
  EXPECT_EQ(status_of(R"({"messages": []})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"content": "x"}]})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}], "n": 2})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}], "tools": [{}]})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"), 400);
  EXPECT_EQ(status_of(R"({"prompt": ["a", "b"]})", Endpoint::kCompletion), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}], "stream": false, "n": 1})"), 200);
  // Roles the chat templates know (tool turns need the tools refused above); content left out only
  // by an assistant turn, as OpenAI.
  EXPECT_EQ(status_of(R"({"messages": [{"role": "wizard", "content": "x"}]})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "tool", "content": "x"}]})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "user"}]})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "system", "content": null}, {"role": "user", "content": "x"}]})"), 400);
  EXPECT_EQ(status_of(R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant"}]})"), 200);
  const CompletionParams dev =
      parse_completion_request(R"({"messages": [{"role": "developer", "content": "d"}, {"role": "user", "content": "x"}]})",
                               Endpoint::kChat);
  EXPECT_EQ(dev.messages[0].role, "system");  // OpenAI's newer name for it
}

TEST(OpenAiApi, MaxTokensAsAWholeFloat) {  // Python clients' 10.0, and vLLM's validation, take it
  const auto max_tokens = [](const std::string& v) {
    return parse_completion_request(R"({"prompt": "x", "max_tokens": )" + v + "}", Endpoint::kCompletion).max_tokens;
  };
  EXPECT_EQ(max_tokens("10.0"), 10);
  EXPECT_EQ(max_tokens("1e1"), 10);
  for (const char* bad : {"10.5", "0.0", "-1", "\"10\"", "1e7", "true"})
    EXPECT_EQ(status_of(R"({"prompt": "x", "max_tokens": )" + std::string(bad) + "}", Endpoint::kCompletion), 400) << bad;
}

TEST(OpenAiApi, FieldsItDoesNotImplementAreRefusedUnlessNoOps) {
  const auto chat = [](const std::string& extra) {
    return R"({"messages": [{"role": "user", "content": "x"}], )" + extra + "}";
  };
  // No-op values (what clients send by default) and client metadata pass.
  for (const char* ok : {R"("presence_penalty": 0)", R"("frequency_penalty": 0.0)", R"("repetition_penalty": 1)",
                         R"("top_k": -1)", R"("logit_bias": {})", R"("stop_token_ids": [])", R"("ignore_eos": false)",
                         R"("tool_choice": "none")", R"("user": "u")", R"("logprobs": false)", R"("top_logprobs": null)",
                         R"("safety_identifier": "s")", R"("prompt_cache_key": "k")", R"("tools": null)",
                         R"("stream_options": {"include_usage": true})", R"("skip_special_tokens": true)",
                         R"("add_generation_prompt": true)", R"("chat_template_kwargs": {})", R"("modalities": ["text"])",
                         R"("include_stop_str_in_output": false)", R"("reasoning_effort": null)", R"("audio": null)"})
    EXPECT_EQ(status_of(chat(ok)), 200) << ok;
  // Any value that would change the output is refused, naming the field in error.param.
  for (const char* bad : {R"("presence_penalty": 0.5)", R"("presence_penalty": "x")", R"("logit_bias": {"1": 5})",
                          R"("top_k": 1)", R"("min_tokens": 3)", R"("ignore_eos": true)", R"("top_logprobs": 2)",
                          R"("tool_choice": "auto")", R"("guided_json": {})", R"("stream_options": {"include_usage": "yes"})",
                          R"("stream_options": 5)", R"("guided_json": null)", R"("prompt": "p")",
                          R"("skip_special_tokens": false)", R"("add_generation_prompt": false)",
                          R"("chat_template_kwargs": {"enable_thinking": true})", R"("modalities": ["text", "audio"])",
                          R"("reasoning_effort": "low")", R"("include_stop_str_in_output": true)"})
    EXPECT_EQ(status_of(chat(bad)), 400) << bad;
  EXPECT_EQ(status_of(R"({"prompt": "x", "messages": [{"role": "user", "content": "x"}]})", Endpoint::kCompletion), 400);
  try {
    parse_completion_request(chat(R"("frequency_penalty": 1.5)"), Endpoint::kChat);
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, "frequency_penalty");
    EXPECT_EQ(error_json(e.what(), e.type, e.code, e.param)["error"]["param"], "frequency_penalty");
  }
}

TEST(OpenAiApi, ResponseShapes) {
  const auto c = completion_json(Endpoint::kChat, "id1", 5, "m", "hello", "stop", {3, 2});
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["total_tokens"], 5);
  const auto t = completion_json(Endpoint::kCompletion, "id2", 5, "m", "x", "length", {1, 1});
  EXPECT_EQ(t["object"], "text_completion");
  EXPECT_EQ(t["choices"][0]["text"], "x");
  const auto first = chunk_json(Endpoint::kChat, "id1", 5, "m", "he", true, std::nullopt);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "he");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const auto last = chunk_json(Endpoint::kChat, "id1", 5, "m", "", false, std::string("stop"));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(last["choices"][0]["delta"].contains("content"));
  const auto e = error_json("bad", "invalid_request_error", "");
  EXPECT_EQ(e["error"]["message"], "bad");
  EXPECT_TRUE(e["error"]["code"].is_null());
}

}  // namespace
}  // namespace kvaudit::serve
