// Entry point of the `xlt` CLI: builds the subcommands from the registry, parses, runs, and maps
// exceptions to exit codes (0 ok, 1 usage, 2 bad input, 3 internal error) with a one-line message.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "command.h"
#include "xlt/core/error.h"
#include "xlt/core/interrupt.h"
#include "xlt/core/threads.h"
#include "xlt/distributed/distributed.h"
#include "xlt/version.h"

namespace xlt::cli {

namespace {

CLI::Validator number_check(bool allow_zero) {
  return CLI::Validator(
      [allow_zero](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v)) return "'" + text + "' is not a number";
        if (v > 0 || (allow_zero && v == 0)) return {};
        return text + (allow_zero ? " is negative (expected >= 0)" : " is not a positive number");
      },
      allow_zero ? "NONNEGATIVE" : "POSITIVE");
}

}  // namespace

CLI::Validator positive() {
  return number_check(false);
}

CLI::Validator thread_count() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::string why = number_check(true)(text);
        if (!why.empty()) return why;
        if (std::stod(text) > kMaxThreads) {
          return text + " threads is more than " + std::to_string(kMaxThreads);
        }
        return {};
      },
      "0.." + std::to_string(kMaxThreads));
}

CLI::Validator non_negative() {
  return number_check(true);
}

void add_execution_options(CLI::App& sub, bool& packed,
                           models::ForwardOptions::Attention& attention) {
  sub.add_flag_function(
      "--no-packing", [&packed](int64_t) { packed = false; },
      "Compute on padding tokens as Hugging Face does (for comparisons)");
  sub.add_option_function<std::string>(
         "--attention",
         [&attention](const std::string& v) { attention = models::parse_attention(v); },
         "Attention kernel: auto (on CUDA with PyTorch 2.x the variable-length kernel, else "
         "fused SDPA; eager elsewhere), eager (Hugging Face's arithmetic), sdpa (fused, per "
         "length group) or varlen (one variable-length call per layer; on the CPU a slow "
         "per-sequence loop)")
      ->check(CLI::IsMember({"auto", "eager", "sdpa", "varlen"}))
      ->default_str("auto");
}

void add_profile_options(CLI::App& sub, models::ProfileOptions& profile) {
  sub.add_option_function<std::string>(
      "--profile", [&profile](const std::string& v) { profile.dir = v; },
      "Profile a window of steps with libtorch's profiler: DIR/trace.json (Perfetto, "
      "chrome://tracing), ops.csv, profile.json, and a table on stderr");
  sub.add_option("--profile-skip", profile.skip,
                 "Steps run before the profiled window (warm-up: allocations, autotuning)")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--profile-steps", profile.steps, "Steps in the profiled window")
      ->check(positive())
      ->capture_default_str();
}

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

void add_runtime_options(CLI::App& sub, RuntimeOptions& opts, bool distributed) {
  sub.add_option("--device", opts.device, "Device to run on: cpu or cuda[:N]")
      ->capture_default_str();
  sub.add_option("--threads", opts.threads,
                 "CPU threads for libtorch (0 = the cores not already busy)")
      ->check(thread_count())
      ->capture_default_str();
  opts.distributed = distributed;
  if (!distributed) return;
  sub.add_option("--dist-timeout", opts.dist_timeout,
                 "Distributed runs: seconds a collective waits for a lost peer before failing")
      ->check(positive())
      ->capture_default_str();
}

bool init_distributed(const RuntimeOptions& opts) {
  auto* g = distributed::init(distributed::launch_env_from_process(),
                              {std::chrono::seconds(opts.dist_timeout), opts.device});
  return g == nullptr || g->rank() == 0;
}

int apply_runtime_options(const RuntimeOptions& opts) {
  if (opts.device != "cpu" && opts.device.rfind("cuda", 0) != 0) {
    throw UsageError("--device: expected cpu or cuda[:N], got '" + opts.device + "'");
  }
  if (!opts.distributed) {
    // torchrun's and xlt launch's variable (Slurm's are set for a whole allocation, also
    // around a single process).
    const char* world = std::getenv("WORLD_SIZE");
    if (world && std::strtol(world, nullptr, 10) > 1) {
      throw UsageError(std::string("this command runs as one process, but WORLD_SIZE=") + world +
                       " says it is one of several ranks (xlt launch, torchrun), each of which "
                       "would do the whole work and write the same outputs; run it without a "
                       "launcher (eval, finetune and study are the distributed commands), or "
                       "from inside a distributed job as `env -u WORLD_SIZE xlt ...`");
    }
  }
  int n = opts.threads;
  // Not simply every core: threads that outnumber the free cores collapse (xlt/core/threads.h).
  if (n == 0) n = default_threads(usable_cores(), busy_cpus());
  at::set_num_threads(n);
  return n;
}

std::string version_line() {
  // What the binary was built against, so a bug report or a GPU job log says which libtorch ran.
  std::string line = std::string("xlt ") + XLT_VERSION + " (libtorch " + XLT_TORCH_VERSION + ", ";
  const std::string cuda = XLT_CUDA_VERSION;
  line += cuda.empty() ? std::string("CPU only") : "CUDA " + cuda;
  return line + ")";
}

// " (did you mean 'eval'?)" for a command within two edits of `word`, else "".
std::string suggestion(const std::string& word, const std::vector<Command>& commands) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = up;
      }
    }
    return row[b.size()];
  };
  std::string lower = word;  // `xlt EVAL` is a typo of eval too
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const Command* best = nullptr;
  size_t best_distance = 3;
  for (const auto& cmd : commands) {
    const size_t d = distance(lower, cmd.name);
    if (d < best_distance) {
      best_distance = d;
      best = &cmd;
    }
  }
  return best ? " (did you mean '" + best->name + "'?)" : "";
}

}  // namespace xlt::cli

int main(int argc, char** argv) {
  using namespace xlt::cli;
  // A file-size limit (ulimit -f, quota) must surface as an IoError, not kill the process.
  xlt::ignore_file_size_signal();
  CLI::App app{
      "xlt: zero-shot cross-lingual transfer studies on multilingual transformers "
      "(mBERT, XLM-R, XGLM), natively on libtorch."};
  app.set_version_flag("--version", version_line());
  app.require_subcommand(1);
  app.footer(
      "Run `xlt COMMAND --help` for a command's options. Exit codes: 0 success, 1 usage "
      "error, 2 bad input, 3 internal error.");

  auto& commands = registry();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (auto& cmd : commands) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.description);
    runners.emplace_back(sub, cmd.configure(*sub));
  }

  // An unknown command: CLI11 says only "A subcommand is required", naming neither the word nor
  // the commands.
  const bool known_command =
      argc > 1 && std::any_of(commands.begin(), commands.end(),
                              [&](const Command& c) { return c.name == argv[1]; });
  if (argc > 1 && argv[1][0] != '-' && !known_command) {
    std::cerr << "xlt: error: unknown command '" << argv[1] << "'" << suggestion(argv[1], commands)
              << "; the commands are:";
    for (const auto& cmd : commands) std::cerr << " " << cmd.name;
    std::cerr << " (xlt --help describes them)\n";
    return 1;
  }
  // Cut `xlt launch [options] -- COMMAND...` before CLI11 sees the COMMAND (see command.h).
  std::vector<char*> args(argv, argv + argc);
  if (argc > 1 && std::string(argv[1]) == "launch") {
    const std::vector<std::string> rest(argv + 2, argv + argc);
    if (const auto sep = launch_separator(*app.get_subcommand("launch"), rest)) {
      launch_command_after_dashes() = std::vector<std::string>(rest.begin() + *sep + 1, rest.end());
      args.resize(2 + *sep);
    }
  }
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  try {
    for (auto& [sub, run] : runners) {
      if (sub->parsed()) return run();
    }
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "xlt: error: " << e.what() << "\n";
    return xlt::exit_code_for(e);
  }
}
