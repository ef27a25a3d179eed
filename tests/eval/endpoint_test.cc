// eval/endpoint.h against a stub OpenAI server on loopback: the request it sends, retries with
// backoff on 429 / 5xx / garbled answers, no retry on other 4xx, bounded concurrency, the model list.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/endpoint.h"

namespace kvaudit::eval {
namespace {

using nlohmann::json;

// A stub server: /v1/models lists "stub" (kv "int4:token:asym"); each completion is answered by
// `answer`, called with the request body and the attempt number.
class Stub {
 public:
  explicit Stub(std::function<void(const json&, int, httplib::Response&)> answer) : answer_(std::move(answer)) {
    http_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"stub","kv":"int4:token:asym"}]})", "application/json");
    });
    const auto complete = [this](const httplib::Request& req, httplib::Response& res) {
      const int n = ++calls_;
      {
        std::lock_guard lock(mu_);
        in_flight_max_ = std::max(in_flight_max_, ++in_flight_);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      answer_(json::parse(req.body), n, res);
      std::lock_guard lock(mu_);
      --in_flight_;
    };
    http_.Post("/v1/chat/completions", complete);
    http_.Post("/v1/completions", complete);
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    while (!http_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Stub() {
    http_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int calls() const { return calls_; }
  int in_flight_max() const {
    std::lock_guard lock(mu_);
    return in_flight_max_;
  }

 private:
  std::function<void(const json&, int, httplib::Response&)> answer_;
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> calls_{0};
  mutable std::mutex mu_;
  int in_flight_ = 0, in_flight_max_ = 0;
};

void chat_answer(httplib::Response& res, const std::string& text) {
  res.set_content(json{{"choices", {{{"message", {{"role", "assistant"}, {"content", text}}}}}}}.dump(), "application/json");
}

EndpointOptions options(const Stub& s) {
  EndpointOptions o;
  o.url = s.url();
  o.backoff_s = 0.01;
  return o;
}

TEST(Endpoint, SendsAGreedyChatRequestAndReadsTheModelList) {
  json seen;
  Stub s([&](const json& body, int, httplib::Response& res) {
    seen = body;
    chat_answer(res, "echo: " + body["messages"].back()["content"].get<std::string>());
  });
  EndpointOptions o = options(s);
  o.system = "be brief";
  o.max_tokens = 17;
  const Endpoint e(o);
  EXPECT_EQ(e.model(), "stub");
  EXPECT_EQ(e.kv(), "int4:token:asym");
  EXPECT_EQ(e.respond("hello"), "echo: hello");
  EXPECT_EQ(seen["model"], "stub");
  EXPECT_EQ(seen["temperature"], 0);
  EXPECT_EQ(seen["max_tokens"], 17);
  EXPECT_EQ(seen["messages"], json::parse(R"([{"role":"system","content":"be brief"},{"role":"user","content":"hello"}])"));
}

// --system "" is an empty system message; left out, none (the server's template decides).
TEST(Endpoint, AnEmptySystemMessageIsSent) {
  json seen;
  Stub s([&](const json& body, int, httplib::Response& res) {
    seen = body;
    chat_answer(res, "ok");
  });
  EndpointOptions o = options(s);
  EXPECT_EQ(Endpoint(o).respond("hello"), "ok");
  EXPECT_EQ(seen["messages"], json::parse(R"([{"role":"user","content":"hello"}])"));
  o.system = "";
  EXPECT_EQ(Endpoint(o).respond("hello"), "ok");
  EXPECT_EQ(seen["messages"], json::parse(R"([{"role":"system","content":""},{"role":"user","content":"hello"}])"));
}

TEST(Endpoint, RawSendsTheTextToCompletions) {
  Stub s([](const json& body, int, httplib::Response& res) {
    res.set_content(json{{"choices", {{{"text", "<" + body["prompt"].get<std::string>() + ">"}}}}}.dump(), "application/json");
  });
  EndpointOptions o = options(s);
  o.raw = true;
  EXPECT_EQ(Endpoint(o).respond("x"), "<x>");
}

TEST(Endpoint, RetriesBusyAndGarbledAnswers) {
  Stub s([](const json&, int n, httplib::Response& res) {
    if (n == 1) res.status = 429;
    else if (n == 2) res.status = 503;
    else if (n == 3) res.set_content("{}", "application/json");  // no choices
    else chat_answer(res, "finally");
  });
  EXPECT_EQ(Endpoint(options(s)).respond("q"), "finally");
  EXPECT_EQ(s.calls(), 4);
}

TEST(Endpoint, GivesUpAfterTheRetriesAndAtOnceOnAClientError) {
  Stub busy([](const json&, int, httplib::Response& res) { res.status = 500; });
  EndpointOptions o = options(busy);
  o.retries = 2;
  EXPECT_THROW(Endpoint(o).respond("q"), std::runtime_error);
  EXPECT_EQ(busy.calls(), 3);
  Stub bad([](const json&, int, httplib::Response& res) {
    res.status = 400;
    res.set_content(R"({"error":{"message":"no"}})", "application/json");
  });
  try {
    Endpoint(options(bad)).respond("q");
    FAIL() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 400: no"), std::string::npos) << e.what();
  }
  EXPECT_EQ(bad.calls(), 1);
}

TEST(Endpoint, BoundedConcurrencyInOrder) {
  Stub s([](const json& body, int, httplib::Response& res) { chat_answer(res, body["messages"].back()["content"]); });
  EndpointOptions o = options(s);
  o.concurrency = 3;
  const Endpoint e(o);
  std::vector<std::string> users;
  for (int i = 0; i < 12; ++i) users.push_back("m" + std::to_string(i));
  std::vector<const std::string*> ptrs;
  for (const auto& u : users) ptrs.push_back(&u);
  EXPECT_EQ(e.respond_all(ptrs), users);
  EXPECT_LE(s.in_flight_max(), 3);
  EXPECT_GE(s.in_flight_max(), 2);
}

TEST(Endpoint, BadUrlOrModelIsUsageError) {
  EndpointOptions ftp;
  ftp.url = "ftp://x";
  EXPECT_THROW(Endpoint{ftp}, UsageError);
  Stub s([](const json&, int, httplib::Response& res) { chat_answer(res, ""); });
  EndpointOptions o = options(s);
  o.model = "other";
  EXPECT_THROW(Endpoint{o}, UsageError);
}

}  // namespace
}  // namespace kvaudit::eval
