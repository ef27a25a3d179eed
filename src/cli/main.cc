#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "core/version.h"

int main(int argc, char** argv) {
  // A write past RLIMIT_FSIZE then fails with EFBIG, reported with the file's name (and the previous
  // results.json / samples.jsonl kept intact), instead of SIGXFSZ killing the run mid-file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"kvaudit: does your model still refuse harmful requests under KV-cache quantization?",
               "kvaudit"};
  app.set_version_flag("--version", kvaudit::kVersion);
  app.require_subcommand(1);
  namespace c = kvaudit::cli;
  for (auto add : {c::add_generate, c::add_logits, c::add_tokenize, c::add_template, c::add_kv,
                   c::add_eval, c::add_sweep, c::add_ppl, c::add_diagnose, c::add_audit, c::add_screen,
                   c::add_bench, c::add_serve, c::add_score})
    add(app);
  // CLI11 reads an unknown first word as a stray positional and only says "A subcommand is
  // required"; name it and the commands instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::string names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "kvaudit: error: unknown command '%s' (commands: %s)\nRun with --help for more information.\n",
                   argv[1], names.c_str());
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;  // bad usage (SPEC.md §6), whatever CLI11's own code
  } catch (const kvaudit::UsageError& e) {
    std::fprintf(stderr, "kvaudit: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvaudit: failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
