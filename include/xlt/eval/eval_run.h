// A complete NLI evaluation run, as `xlt eval` and the study runner perform it: read the --data
// specs, subsample with a seed, load the model (a missing classification head is initialised from
// the seed and flagged), map labels by name, classify every language, compute the statistics
// (accuracy, bootstrap CI, macro-F1, per-class P/R/F1, confusion, chance, transfer gaps) and
// write results.json / results.csv / predictions.jsonl.
//
// Usage:
//   xlt::eval::NliEvalConfig cfg;  cfg.model = "runs/ft";  cfg.data = {"en=dev-en.tsv", ...};
//   auto run = xlt::eval::run_nli_eval(cfg);          // logs to stderr
//   xlt::eval::write_eval_outputs(run, "out/");
//   std::cout << xlt::eval::format_eval_table(run);
#pragma once

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "xlt/data/nli.h"
#include "xlt/eval/evaluate.h"
#include "xlt/eval/results.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"

namespace xlt::eval {

struct NliEvalConfig {
  std::string model;               // folder, .safetensors file, or cached hub id
  std::vector<std::string> data;   // --data values (LANG=PATH or PATH)
  std::vector<std::string> langs;  // --langs values (comma lists allowed)
  std::string format = "auto";
  bool skip_bad_rows = false;
  int64_t samples = 0;  // per language; 0 = all
  uint64_t seed = 42;   // subsampling, new-head initialisation and bootstrap
  int64_t num_labels = 3;
  bool new_head = false;  // replace the checkpoint's classifier by a fresh one (seeded by seed)
  int bootstrap = 1000;   // resamples
  std::string source_lang = "en";
  EvalOptions eval;  // batch size, max length, sorting, progress
  std::string device = "cpu";
  std::string dtype = "float32";
  int threads = 0;  // recorded only: the caller sets libtorch's thread count

  // Every option, for results.json's "config".
  nlohmann::json to_json() const;
};

struct NliEvalRun {
  NliEvalConfig config;
  std::vector<data::NliDataset> datasets;    // after subsampling, in evaluation order
  std::vector<EvalPredictions> predictions;  // one per dataset
  EvalSummary summary;                       // statistics per language + transfer gaps
  bool head_initialized = false;             // the classifier was not in the checkpoint
  std::vector<std::string> initialized;      // parameter names initialised fresh
  LabelMapping label_mapping;
  std::vector<std::string> model_labels;  // the model's id2label names, by output index
  std::string model_path;                 // resolved location
  std::string model_type;
  double seconds = 0;

  // results_to_json(summary) plus "config", "xlt_version", "model" (path, type, labels,
  // head_initialized, label mapping), "data" (per language: source, read report) and "timing".
  nlohmann::json results_json() const;
};

// Loads the model and tokenizer named in `config` and evaluates. Messages (read reports, head
// initialisation, label mapping, speed) go to `log` (nullptr = silent).
NliEvalRun run_nli_eval(const NliEvalConfig& config, std::ostream* log);

// The first half of run_nli_eval: reads the --data specs of `config` (data, langs, format,
// skip_bad_rows) and subsamples them (samples, seed). Read reports go to `log`.
std::vector<data::NliDataset> read_eval_datasets(const NliEvalConfig& config, std::ostream* log);

// The second half: evaluates a model already in memory (e.g. the Python package's xlt.Model) as
// run_nli_eval does after loading it: a classification head the loader initialised is flagged and
// noted in `log`. The caller sets the result's model_path.
NliEvalRun evaluate_loaded_model(models::Model& model, const text::Tokenizer& tokenizer,
                                 std::vector<data::NliDataset> datasets,
                                 const NliEvalConfig& config, std::ostream* log);

// Evaluates an already loaded model on already read datasets (e.g. the study runner after
// fine-tuning). `head_initialized` is recorded as given. config.eval.progress_label, when set,
// replaces "eval" in the progress bars ("baseline en").
NliEvalRun evaluate_datasets(models::Model& model, const text::Tokenizer& tokenizer,
                             std::vector<data::NliDataset> datasets, const NliEvalConfig& config,
                             bool head_initialized, std::ostream* log);

// DIR/results.json, DIR/results.csv, DIR/predictions.jsonl (created atomically; DIR is created).
void write_eval_outputs(const NliEvalRun& run, const std::filesystem::path& dir);

// The readable table printed on stdout: one row per language (n, accuracy, CI, macro-F1, chance,
// transfer gap with its CI).
std::string format_eval_table(const NliEvalRun& run);

}  // namespace xlt::eval
