#include "serve/scheduler.h"

#include <algorithm>
#include <exception>

#include "serve/stop_text.h"

namespace kvaudit::serve {

const char* finish_name(Finish f) {
  switch (f) {
    case Finish::kStop: return "stop";
    case Finish::kLength: return "length";
    case Finish::kCancelled: return "cancelled";
    case Finish::kError: return "error";
    case Finish::kRunning: break;
  }
  return "running";
}

Job::Snapshot Job::wait(size_t have, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return state_.text.size() > have || state_.finish != Finish::kRunning; });
  return state_;
}

void Job::publish(std::string text, int completion_tokens, Finish finish, std::string error) {
  {
    std::lock_guard lock(mu_);
    state_.text = std::move(text);
    state_.completion_tokens = completion_tokens;
    state_.finish = finish;
    state_.error = std::move(error);
  }
  cv_.notify_all();
}

struct Scheduler::Active {
  std::shared_ptr<Job> job;
  std::unique_ptr<engine::Sequence> seq;
  std::vector<int> pending;  // tokens to feed next: the prompt, then the last generated token
  std::unique_ptr<text::StreamDecoder> decoder;
  StopText text;
  std::mt19937_64 rng;
  std::vector<int> tokens;   // generated, the stop id excluded
  bool stop_id = false;      // ended by a stop id: generated too, so usage counts it (as vLLM and OpenAI)
  Finish finish = Finish::kRunning;
  int completion_tokens() const { return int(tokens.size()) + (stop_id ? 1 : 0); }
};

Scheduler::Scheduler(engine::Backend& backend, const text::Tokenizer& tok,
                     std::shared_ptr<const kv::KvPolicy> policy, SchedulerOptions opt)
    : backend_(backend), tok_(tok), policy_(std::move(policy)), opt_(std::move(opt)) {
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

// Queued jobs whose client went away leave the queue (mu_ held): they hold no slot a live
// request could use.
void Scheduler::drop_cancelled_queued() {
  std::erase_if(queue_, [&](const std::shared_ptr<Job>& j) {
    if (!j->cancelled()) return false;
    j->publish({}, 0, Finish::kCancelled);
    ++cancelled_;
    return true;
  });
}

bool Scheduler::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard lock(mu_);
    drop_cancelled_queued();
    // Queued jobs that a free batch slot takes at the next step are not waiting: --max-queue 0
    // still admits a request while the batch has room.
    const int64_t free_slots = std::max<int64_t>(0, int64_t(opt_.max_batch) - running_.load());
    if (int64_t(queue_.size()) >= int64_t(opt_.max_queue) + free_slots) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
  return true;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  {
    std::lock_guard lock(mu_);
    s.waiting = int64_t(std::count_if(queue_.begin(), queue_.end(), [](const auto& j) { return !j->cancelled(); }));
  }
  s.running = running_;
  s.prompt_tokens = prompt_tokens_;
  s.generated_tokens = generated_tokens_;
  s.forward_calls = forward_calls_;
  s.finished = finished_;
  s.cancelled = cancelled_;
  s.kv_bytes = kv_bytes_;
  return s;
}

void Scheduler::loop() {
  std::vector<Active> active;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active.empty(); });
      if (stopping_ && queue_.empty() && active.empty()) return;
      drop_cancelled_queued();
      while (active.size() < size_t(opt_.max_batch) && !queue_.empty()) {  // join the running batch
        std::shared_ptr<Job> job = std::move(queue_.front());
        queue_.pop_front();
        const CompletionRequest& r = job->request();
        prompt_tokens_ += int64_t(r.prompt.size());
        active.push_back({job, std::make_unique<engine::Sequence>(backend_.model().config, policy_), r.prompt,
                          std::make_unique<text::StreamDecoder>(tok_, true), StopText(r.stop),
                          std::mt19937_64(r.seed), {}, false, Finish::kRunning});
      }
    }
    std::erase_if(active, [&](const Active& a) {  // clients that went away leave before the next step
      if (!a.job->cancelled()) return false;
      a.job->publish({}, a.completion_tokens(), Finish::kCancelled);
      ++cancelled_;
      return true;
    });
    running_ = int64_t(active.size());
    if (active.empty()) {
      kv_bytes_ = 0;  // the cancelled ones' caches are gone
      continue;
    }
    try {
      step(active);
    } catch (const std::exception& e) {  // fail the batch, keep serving
      for (Active& a : active) a.job->publish({}, a.completion_tokens(), Finish::kError, e.what());
      active.clear();
    }
    int64_t kv = 0;
    for (const Active& a : active) kv += int64_t(a.seq->kv_bytes());
    kv_bytes_ = kv;
    running_ = int64_t(active.size());
  }
}

void Scheduler::step(std::vector<Active>& active) {
  std::vector<engine::SeqInput> batch;  // [active.size()]
  for (Active& a : active) batch.push_back({a.seq.get(), a.pending, false});
  const engine::Logits logits = backend_.forward(batch);
  ++forward_calls_;
  const auto is_stop = [&](int t) { return std::find(opt_.stop_ids.begin(), opt_.stop_ids.end(), t) != opt_.stop_ids.end(); };

  for (size_t i = 0; i < active.size(); ++i) {
    Active& a = active[i];
    const CompletionRequest& r = a.job->request();
    const int tok = sample_token(logits.last(i), logits.n_vocab, r.sampling, a.rng);
    if (is_stop(tok)) {
      a.finish = Finish::kStop;
      a.stop_id = true;
      ++generated_tokens_;
    } else {
      a.tokens.push_back(tok);
      ++generated_tokens_;
      if (a.text.append(a.decoder->push(tok))) a.finish = Finish::kStop;
      else if (int(a.tokens.size()) >= r.max_tokens) a.finish = Finish::kLength;
      a.pending.assign(1, tok);
    }
    if (a.finish == Finish::kRunning) {
      a.job->publish(a.text.text().substr(0, a.text.stable_size()), a.completion_tokens(), Finish::kRunning);
      continue;
    }
    // The whole text is decoded at once, as `generate` does for a batch (the stream decoder only
    // holds back incomplete characters, so this changes nothing but the tail it held).
    if (!a.text.stopped() && a.text.reset(tok_.decode(a.tokens, true))) a.finish = Finish::kStop;
    a.job->publish(a.text.text(), a.completion_tokens(), a.finish);
    ++finished_;
  }
  // Finished sequences leave the batch (their caches are freed here).
  std::erase_if(active, [](const Active& a) { return a.finish != Finish::kRunning; });
}

}  // namespace kvaudit::serve
