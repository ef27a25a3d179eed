// Continuous batching for `kvaudit serve` (SPEC.md §7): one thread owns the backend and runs every
// admitted request in one ragged batch; a request joins at the next forward call (its prompt
// prefilled alongside the others' decode steps) and leaves when it stops, reaches max_tokens or
// its client goes away. Every sequence carries the server's KV policy. The CPU backend is
// batch-invariant (engine/engine.h), so a greedy request's tokens are those `kvaudit generate`
// gives for the same prompt, whatever else shares the batch.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "kv/policy.h"
#include "serve/sampler.h"
#include "text/tokenizer.h"

namespace kvaudit::serve {

struct CompletionRequest {
  std::vector<int> prompt;  // token ids, non-empty
  int max_tokens = 256;     // >= 1
  SamplingParams sampling;
  uint64_t seed = 0;        // the request's generator seed (the handler draws one when not given)
  std::vector<std::string> stop;
};

enum class Finish { kRunning, kStop, kLength, kCancelled, kError };

// "stop" | "length" (OpenAI's finish_reason); the others never reach a client.
const char* finish_name(Finish f);

// One request as its HTTP handler and the scheduler share it. The scheduler publishes the text
// that is final so far; the handler waits for more.
class Job {
 public:
  explicit Job(CompletionRequest r) : request_(std::move(r)) {}
  const CompletionRequest& request() const { return request_; }

  struct Snapshot {
    std::string text;            // the completion's final text so far (all of it once done)
    int completion_tokens = 0;   // generated ids so far, the stop id excluded
    Finish finish = Finish::kRunning;
    std::string error;           // kError: what failed
  };
  // Waits until the text is longer than `have` bytes or the job ends (or `timeout` passes).
  Snapshot wait(size_t have, std::chrono::milliseconds timeout);
  // The client went away: the scheduler drops the sequence at its next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Scheduler side.
  void publish(std::string text, int completion_tokens, Finish finish, std::string error = {});

 private:
  const CompletionRequest request_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  Snapshot state_;
};

struct SchedulerOptions {
  int max_batch = 16;         // sequences per forward call
  int max_queue = 64;         // requests waiting for a batch slot; beyond, submit() refuses
  std::vector<int> stop_ids;  // model EOS + tokenizer end-of-turn ids, as `generate`
};

// Counters for /metrics, read while the scheduler runs.
struct SchedulerStats {
  int64_t running = 0, waiting = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0, forward_calls = 0;
  int64_t finished = 0, cancelled = 0;
  int64_t kv_bytes = 0;  // stored K and V of the running sequences after the last step
};

class Scheduler {
 public:
  // `backend`, `tok` must outlive the scheduler; policy null = the 16-bit baseline.
  Scheduler(engine::Backend& backend, const text::Tokenizer& tok, std::shared_ptr<const kv::KvPolicy> policy,
            SchedulerOptions opt);
  ~Scheduler();  // finishes every submitted job, then joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the job; false (nothing queued) when max_queue jobs already wait beyond the batch's free
  // slots.
  bool submit(std::shared_ptr<Job> job);
  SchedulerStats stats() const;

 private:
  void drop_cancelled_queued();
  struct Active;
  void loop();
  void step(std::vector<Active>& active);

  engine::Backend& backend_;
  const text::Tokenizer& tok_;
  std::shared_ptr<const kv::KvPolicy> policy_;
  SchedulerOptions opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::atomic<int64_t> running_{0}, prompt_tokens_{0}, generated_tokens_{0}, forward_calls_{0}, finished_{0},
      cancelled_{0}, kv_bytes_{0};
  std::thread thread_;
};

}  // namespace kvaudit::serve
