#include "eval/runner.h"

#include <algorithm>
#include <map>
#include <set>
#include <span>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/ifeval/bench_metrics.h"

namespace kvaudit::eval {

namespace {

struct Job {
  const Prompt* prompt;
  const SchemeRun* scheme;
};

// "max_new_tokens: 4 there, 6 in this run; ..." over the keys whose values differ.
std::string settings_diff(const std::string& there, const std::string& here) {
  const nlohmann::json a = nlohmann::json::parse(there), b = nlohmann::json::parse(here);
  std::string out;
  const auto shown = [](const nlohmann::json& j, const std::string& key) {
    return j.contains(key) ? j[key].dump() : std::string("absent");
  };
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  for (const auto& [k, v] : b.items()) keys.insert(k);
  for (const auto& k : keys)
    if (shown(a, k) != shown(b, k))
      out += (out.empty() ? "" : "; ") + k + ": " + shown(a, k) + " there, " + shown(b, k) + " in this run";
  return out;
}

void check_previous(const std::vector<Prompt>& prompts, const std::vector<SchemeRun>& schemes,
                    const GenerationIo& io, const SamplesLog& previous) {
  std::map<std::string, const Prompt*> by_id;
  for (const auto& p : prompts) by_id[p.id] = &p;
  std::set<std::string> names;
  for (const auto& s : schemes) names.insert(s.name);
  const std::string file = previous.path.empty() ? "samples.jsonl" : previous.path;
  for (const auto& s : previous.samples) {
    if (s.judge != io.judge_name)
      usage_error("{}: sample {} ({}) was judged by '{}', this run uses '{}'; use a new --out", file, s.id,
                  s.scheme, s.judge, io.judge_name);
    const auto it = by_id.find(s.id);
    if (it == by_id.end()) continue;
    if (it->second->text != s.prompt)
      usage_error("{}: prompt {} has a different text than the dataset now; use a new --out", file, s.id);
    if (names.count(s.scheme) && !s.gen.empty() && !io.gen.empty() && s.gen != io.gen)
      usage_error("{}: sample {} ({}) was generated with other settings ({}); use a new --out", file, s.id,
                  s.scheme, settings_diff(s.gen, io.gen));
  }
}

// One request's early-stop state: its tokens so far and the part of their text that is final.
struct StopWatch {
  std::function<std::string(int)> push;
  std::vector<int> tokens;
  std::string stable;
};

// The engine's responses to one chunk of jobs (one engine::generate call).
std::vector<Response> engine_responses(engine::Backend& backend, const std::vector<const Prompt*>& prompts,
                                       const std::vector<const SchemeRun*>& schemes, const GenerationIo& io,
                                       const RunnerOptions& opt, std::map<const Prompt*, std::vector<int>>& encoded) {
  std::vector<engine::GenerateRequest> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto it = encoded.find(prompts[i]);
    if (it == encoded.end()) it = encoded.emplace(prompts[i], io.encode(*prompts[i])).first;
    const int64_t context = backend.model().config.max_position;
    if (context > 0 && int64_t(it->second.size()) > context)
      usage_error("prompt {} has {} tokens (chat template applied), past {}'s context of {}", prompts[i]->id,
                  it->second.size(), backend.model().path, context);
    reqs.push_back({it->second, schemes[i]->policy});
  }
  engine::GenerateOptions gen = opt.gen;
  std::vector<StopWatch> watch;  // [prompts.size()] when early stop is on
  if (io.new_stream && io.decided) {
    for (size_t i = 0; i < prompts.size(); ++i) watch.push_back({io.new_stream(), {}, {}});
    gen.decided = [&](size_t r, int tok) {
      StopWatch& w = watch[r];
      w.tokens.push_back(tok);
      w.stable += w.push(tok);
      if (!io.decided(w.stable)) return false;
      // The stored response is decode(tokens so far); stop only if it begins with the text the
      // judge decided on, so its verdict is the full response's (a decoder that rewrites earlier
      // text would otherwise break that; the check is retried on the next token).
      return io.decode(w.tokens).starts_with(w.stable);
    };
  }
  const auto results = engine::generate(backend, reqs, gen);
  std::vector<Response> out;
  for (const engine::GenerateResult& res : results)
    out.push_back({io.decode(res.tokens),
                   res.finish == engine::FinishReason::kDecided ? std::optional<int>(int(res.tokens.size())) : std::nullopt,
                   res.tokens.size() + (res.finish == engine::FinishReason::kStop)});
  return out;
}

// Responds to, judges and appends one chunk of jobs.
void run_chunk(const Responder& respond, std::span<const Job> jobs, const GenerationIo& io,
               SamplesWriter& writer, SampleMap& out, RunStats* stats) {
  std::vector<const Prompt*> judged_prompts;
  std::vector<const SchemeRun*> schemes;
  for (const Job& j : jobs) {
    judged_prompts.push_back(j.prompt);
    schemes.push_back(j.scheme);
  }
  std::vector<Response> responses = respond(judged_prompts, schemes);
  if (responses.size() != jobs.size()) throw std::logic_error("run_samples: a wrong number of responses");
  std::vector<std::string> texts;
  for (const Response& r : responses) texts.push_back(r.text);
  const std::vector<Verdict> verdicts = io.judge(judged_prompts, texts);
  if (verdicts.size() != responses.size())
    throw std::logic_error("run_samples: the judge returned a wrong number of verdicts");
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Prompt& p = *jobs[i].prompt;
    Sample s{p.id,
             p.bench,
             jobs[i].scheme->name,
             io.judge_name,
             p.text,
             std::move(responses[i].text),
             verdicts[i].refused,
             verdicts[i].matched,
             responses[i].stopped_early_at,
             io.gen};
    if (stats) {
      stats->tokens += responses[i].tokens;
      stats->stopped_early += s.stopped_early_at.has_value();
    }
    writer.append(s);
    out.emplace(SampleKey{p.id, s.scheme}, std::move(s));
  }
}

}  // namespace

SampleMap run_samples(engine::Backend& backend, const std::vector<Prompt>& prompts,
                      const std::vector<SchemeRun>& schemes, const GenerationIo& io,
                      const RunnerOptions& opt, const SamplesLog& previous, SamplesWriter& writer,
                      Progress* progress, RunStats* stats) {
  std::map<const Prompt*, std::vector<int>> encoded;  // a prompt is tokenized once for all schemes
  const Responder respond = [&](const std::vector<const Prompt*>& ps, const std::vector<const SchemeRun*>& ss) {
    return engine_responses(backend, ps, ss, io, opt, encoded);
  };
  const size_t chunk = opt.chunk ? opt.chunk : 4 * size_t(std::max(1, opt.gen.batch_size));
  return run_samples(respond, prompts, schemes, io, chunk, opt.share_batches, previous, writer, progress, stats);
}

SampleMap run_samples(const Responder& respond, const std::vector<Prompt>& prompts,
                      const std::vector<SchemeRun>& schemes, const GenerationIo& io, size_t chunk,
                      bool share_batches, const SamplesLog& previous, SamplesWriter& writer, Progress* progress,
                      RunStats* stats) {
  check_previous(prompts, schemes, io, previous);
  SampleMap out;
  std::map<std::string, const Prompt*> wanted;
  for (const auto& p : prompts) wanted[p.id] = &p;
  for (const auto& s : previous.samples)
    if (wanted.count(s.id)) out.emplace(SampleKey{s.id, s.scheme}, s);

  // Passes of jobs; chunks never cross a pass. Shared: one pass, prompt-major, so one prompt's
  // schemes land in the same batch. Not shared: one pass per scheme.
  std::vector<std::vector<Job>> passes;
  if (share_batches) {
    passes.emplace_back();
    for (const auto& p : prompts)
      for (const auto& s : schemes)
        if (!out.count({p.id, s.name})) passes.back().push_back({&p, &s});
  } else {
    for (const auto& s : schemes) {
      passes.emplace_back();
      for (const auto& p : prompts)
        if (!out.count({p.id, s.name})) passes.back().push_back({&p, &s});
    }
  }
  size_t n_todo = 0;
  for (const auto& pass : passes) n_todo += pass.size();
  const size_t total = prompts.size() * schemes.size();
  size_t done = total - n_todo;
  if (stats) {
    stats->resumed = done;
    stats->generated = n_todo;
  }
  if (progress) {
    progress->resumed(done);
    progress->update(done);
  }

  chunk = std::max<size_t>(chunk, 1);
  for (const auto& todo : passes)
    for (size_t begin = 0; begin < todo.size(); begin += chunk) {
      const size_t end = std::min(todo.size(), begin + chunk);
      run_chunk(respond, std::span(todo).subspan(begin, end - begin), io, writer, out, stats);
      done += end - begin;
      if (progress) progress->update(done);
    }
  return out;
}

std::vector<SchemeResult> aggregate_results(const std::vector<Prompt>& prompts,
                                            const std::vector<SchemeRun>& schemes,
                                            const SampleMap& samples, const std::string& data_dir,
                                            const std::optional<NoiseControl>& noise) {
  if (schemes.empty()) throw std::logic_error("aggregate_results: no schemes");
  const SchemeRun* control = nullptr;
  if (noise) {
    for (const auto& s : schemes)
      if (s.name == noise->scheme) control = &s;
    if (!control) throw std::logic_error("aggregate_results: the noise control " + noise->scheme + " did not run");
  }
  std::vector<std::string> benches;  // in prompt order
  for (const auto& p : prompts)
    if (benches.empty() || benches.back() != p.bench) benches.push_back(p.bench);
  const auto verdict = [&](const Prompt& p, const SchemeRun& s) {
    const auto it = samples.find({p.id, s.name});
    if (it == samples.end())
      throw std::logic_error("aggregate_results: no sample for " + p.id + " under " + s.name);
    return it->second.refused;
  };
  // IFEval: the scorer reads each response (cheap: thousands a second), baseline verdicts once.
  std::map<std::string, std::vector<ifeval::Verdict>> ifeval_verdicts;  // scheme -> per prompt
  const auto ifeval_of = [&](const SchemeRun& s) -> const std::vector<ifeval::Verdict>& {
    auto [it, fresh] = ifeval_verdicts.try_emplace(s.name);
    if (fresh)
      for (const auto& p : prompts)
        if (p.bench == ifeval::kBench) {
          const auto sm = samples.find({p.id, s.name});
          if (sm == samples.end()) throw std::logic_error("aggregate_results: no sample for " + p.id + " under " + s.name);
          it->second.push_back(ifeval::score(ifeval::item_of(data_dir, p.id), sm->second.response));
        }
    return it->second;
  };
  std::vector<SchemeResult> out;
  for (const auto& s : schemes) {
    SchemeResult sr{s.name, {}};
    for (const auto& b : benches) {
      const bool tested = control && &s != &schemes[0] && &s != control;  // against the noise control
      if (b == ifeval::kBench) {
        BenchMetrics m;
        m.ifeval = ifeval::ifeval_metrics(ifeval_of(schemes[0]), ifeval_of(s));
        m.n = int64_t(ifeval_of(s).size());
        if (tested) m.noise = NoiseTest::undefined();  // no refusal to flip: the keys are null
        sr.benches.push_back({b, m});
        continue;
      }
      size_t n = 0;
      for (const auto& p : prompts) n += p.bench == b;
      std::unique_ptr<bool[]> base(new bool[n]), quant(new bool[n]), probe(new bool[n]);  // [n]
      // The noise test's verdicts, on the prompts that should be refused only (XSTest safe prompts
      // feed over-refusal only): [h] of n, filled in the same pass.
      std::unique_ptr<bool[]> bh(new bool[n]), sh(new bool[n]), nh(new bool[n]);
      size_t i = 0, h = 0;
      for (const auto& p : prompts) {
        if (p.bench != b) continue;
        base[i] = verdict(p, schemes[0]);
        quant[i] = verdict(p, s);
        probe[i] = is_over_refusal_probe(p);
        if (tested && !probe[i]) bh[h] = base[i], sh[h] = quant[i], nh[h++] = verdict(p, *control);
        ++i;
      }
      BenchMetrics m = refusal_metrics({base.get(), n}, {quant.get(), n}, {probe.get(), n});
      if (tested)
        m.noise = h > 0 ? noise_test({bh.get(), h}, {sh.get(), h}, {nh.get(), h}, noise->alpha) : NoiseTest::undefined();
      sr.benches.push_back({b, m});
    }
    out.push_back(std::move(sr));
  }
  return out;
}

}  // namespace kvaudit::eval
