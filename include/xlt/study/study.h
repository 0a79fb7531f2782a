// The whole cross-lingual transfer study as one resumable pipeline (`xlt study CONFIG.toml`):
//
//   [init]      random models built from a config (demo only)       DIR/init/<role>/
//   baseline    NLI accuracy per language before fine-tuning         DIR/baseline/seed-<S>/
//   finetune    English fine-tuning (xlt/train/finetune.h)           DIR/finetune/seed-<S>/
//   zero_shot   accuracy per language of each fine-tuned model       DIR/zero_shot/seed-<S>/
//   analysis    sentence embeddings, t-SNE, per-layer alignment      DIR/analysis/
//   attention   head-averaged attention of a parallel pair           DIR/attention/
//   perplexity  causal-LM perplexity per language                    DIR/perplexity/
//   report      results.json, report.html, figures/, tables/         DIR/report/ (+ DIR/*.html)
//
// Each unit records its inputs in DIR/<unit>/stage.json (config subset, content digests of the
// model and data files it read, the fingerprints of the units it builds on, the xlt version),
// written last and atomically: a unit is complete exactly when its stage.json exists. A rerun
// skips units whose inputs are unchanged ("skip <unit>: up to date"); an interrupted fine-tuning
// resumes from its last saved state. docs/study.md has the details.
//
// Usage:
//   auto config = xlt::study::load_study_config("examples/demo.toml");
//   xlt::study::RunOptions opt;  opt.out = "runs/demo";
//   xlt::study::StudyOutcome r = xlt::study::run_study(config, opt);   // r.report = report.html
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "xlt/study/config.h"

namespace xlt::study {

struct RunOptions {
  std::filesystem::path out;        // empty = config.out, else runs/<config stem>
  bool dry_run = false;             // print the plan only; nothing is written or downloaded
  std::vector<std::string> stages;  // run only these stages (empty = the config's stages)
  bool overwrite = false;           // start over: empty DIR first (refused for unsafe folders)
  bool progress = true;             // progress bars on stderr
  int threads = -1;                 // -1 = config's study.threads; 0 = xlt::default_threads
  std::string device;               // empty = config's study.device
  int dist_timeout = 300;           // distributed launches: seconds a collective waits for a peer
  std::ostream* log = nullptr;      // plan and skip lines; nullptr = std::cerr
};

struct UnitStatus {
  std::string unit;    // "baseline/seed-42", "analysis", ...
  std::string stage;   // "baseline", ... ("init" for model initialisation)
  std::string action;  // "run", "skip", "not selected", "blocked"
  std::string reason;  // "up to date", "not run yet", "inputs changed: train.epochs", ...
  double seconds = 0;  // time spent now (run) or recorded (skip)
};

struct StudyOutcome {
  std::filesystem::path out;
  std::filesystem::path report;  // DIR/report.html ("" when the report stage did not run)
  std::vector<UnitStatus> units;
  nlohmann::json results;  // results.json's content (null when the report stage did not run)
  // SIGINT/SIGTERM stopped a fine-tuning unit at a safe point: its state is saved, it has no
  // stage.json, and no unit after it ran. Rerunning the same study resumes it.
  int interrupted_by = 0;
  std::string stopped_unit;            // "finetune/seed-1"
  bool stopped_unit_complete = false;  // the signal came as it finished: nothing to resume
  int64_t stopped_at_step = 0;         // of stopped_total_steps
  int64_t stopped_total_steps = 0;
};

// The output folder the options/config select.
std::filesystem::path resolve_out_dir(const StudyConfig& config, const RunOptions& options);

// What a run would do, without writing anything (the --dry-run plan). Throws like run_study for
// an unusable output folder or unmet dependencies.
std::vector<UnitStatus> plan_study(const StudyConfig& config, const RunOptions& options);

// Runs the plan. Throws UsageError for an --out folder that is not a study folder (without
// overwrite), IoError when another study holds DIR's lock, ConfigError for unmet dependencies
// (e.g. --stages zero_shot without a complete fine-tuning), and whatever a stage throws.
StudyOutcome run_study(const StudyConfig& config, const RunOptions& options);

// The plan as printed by --dry-run (one line per unit).
std::string format_plan(const std::vector<UnitStatus>& plan);

}  // namespace xlt::study
