// Subcommand registry for the `xlt` CLI. Each cmd_<verb>.cpp defines its options on a CLI11
// subcommand and returns the function that runs it; registration happens at static-init time, so
// adding a command needs no edit elsewhere. Help text comes from the option table itself.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "xlt/models/model.h"
#include "xlt/models/profiler.h"

namespace xlt::cli {

using Runner = std::function<int()>;
// Adds options to `sub` and returns the runner to call when the subcommand is chosen.
using Configure = std::function<Runner(CLI::App& sub)>;

struct Command {
  std::string name;
  std::string description;
  int order;  // position in `xlt --help` (the study's flow: inspect, tokenize, forward, ...)
  Configure configure;
};

std::vector<Command>& registry();

// `xlt launch -n N -- COMMAND...`: CLI11 2.1 hands what follows a subcommand's `--` back to the
// top-level app, which rejects it ("The following arguments were not expected"). main() therefore
// cuts argv at launch's own `--` before parsing and leaves the COMMAND here (nullopt: no `--`
// before COMMAND, which CLI11's prefix_command then collects).
std::optional<std::vector<std::string>>& launch_command_after_dashes();
// Where launch's own options end: the index in `args` (argv after "launch") of the `--` that
// separates them from COMMAND, or nullopt when COMMAND starts first (a word not starting with '-')
// or there is no `--`. An option of `launch` that takes a value skips that value ("-n 2"), so a
// value spelt "--" is not taken for the separator.
std::optional<size_t> launch_separator(const CLI::App& launch,
                                       const std::vector<std::string>& args);

struct Registrar {
  Registrar(std::string name, std::string description, int order, Configure configure) {
    registry().push_back({std::move(name), std::move(description), order, std::move(configure)});
  }
};

// Number checks with readable messages ("--batch-size: 0 is not a positive number"); CLI11 2.1's
// PositiveNumber / NonNegativeNumber print the range up to DBL_MAX in 309 digits instead.
CLI::Validator positive();      // > 0
CLI::Validator non_negative();  // >= 0
// --threads: 0 (automatic) to 1024; more would only oversubscribe the machine (a typo such as
// 100000 made libtorch start that many threads).
CLI::Validator thread_count();

// How eval and finetune run the model: --no-packing (clears `packed`) and --attention.
void add_execution_options(CLI::App& sub, bool& packed,
                           models::ForwardOptions::Attention& attention);

// --profile DIR, --profile-skip N, --profile-steps N (xlt/models/profiler.h).
void add_profile_options(CLI::App& sub, models::ProfileOptions& profile);

// Options every model-running command shares.
struct RuntimeOptions {
  std::string device = "cpu";
  int threads = 0;           // 0 = the cores not already busy (xlt/core/threads.h)
  int dist_timeout = 300;    // seconds a collective waits for a peer (distributed launches)
  bool distributed = false;  // the command runs as ranks of a distributed launch (eval, finetune)
};
// --device, --threads; with `distributed`, --dist-timeout too.
void add_runtime_options(CLI::App& sub, RuntimeOptions& opts, bool distributed = false);
// Applies --threads to libtorch (Debian's libtorch defaults to one intra-op thread) and validates
// --device. A command that is not distributed refuses to run as one of several ranks (every rank
// would do the whole work and write the same outputs). Returns the number of threads in use.
int apply_runtime_options(const RuntimeOptions& opts);
// Joins the c10d group when the environment describes a distributed launch (xlt launch, torchrun,
// srun; see xlt/distributed/distributed.h). Returns true on the rank that writes outputs (rank 0 or
// alone).
bool init_distributed(const RuntimeOptions& opts);

}  // namespace xlt::cli

#define XLT_CLI_CONCAT2(a, b) a##b
#define XLT_CLI_CONCAT(a, b) XLT_CLI_CONCAT2(a, b)
#define XLT_REGISTER_COMMAND(name, description, order, configure)                              \
  static ::xlt::cli::Registrar XLT_CLI_CONCAT(xlt_cmd_registrar_, __LINE__)(name, description, \
                                                                            order, configure)
