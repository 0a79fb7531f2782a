// Evaluation results as files: results.json (per-language statistics and transfer gaps),
// predictions.jsonl (one row per example) and a per-language CSV table. Builds on metrics.h so
// that `xlt eval` only has to run the model and call these. All writes are atomic. No libtorch.
//
// Usage:
//   xlt::eval::EvalSummary summary;
//   summary.bootstrap = {1000, seed};
//   for each language: summary.languages.push_back(
//       xlt::eval::compute_language_result(lang, gold, pred, summary.bootstrap));
//   xlt::eval::add_transfer_gaps(summary, datasets);          // needs "en" among the languages
//   xlt::write_file_atomic(out / "results.json", xlt::eval::results_to_json(summary).dump(2));
//   xlt::eval::write_predictions_jsonl(out / "predictions.jsonl", rows);
//   xlt::eval::write_results_csv(out / "results.csv", summary);
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "xlt/data/nli.h"
#include "xlt/eval/metrics.h"

namespace xlt::eval {

struct LanguageResult {
  std::string lang;
  int64_t n = 0;
  double accuracy = 0.0;
  Interval ci95;  // accuracy interval at BootstrapOptions::level (see accuracy_ci)
  IntervalMethod ci95_method = IntervalMethod::kPercentileBootstrap;
  double chance = 0.0;
  double macro_f1 = 0.0;
  ConfusionMatrix confusion;
  std::vector<ClassMetrics> per_class;
  std::vector<std::string> label_names;
  std::vector<uint8_t> correct;  // per example, kept for transfer-gap bootstraps; not serialised
};

// All statistics for one language. `label_names` default to entailment/neutral/contradiction.
LanguageResult compute_language_result(
    const std::string& lang, const std::vector<int>& gold, const std::vector<int>& pred,
    const BootstrapOptions& bootstrap,
    const std::vector<std::string>& label_names = xlt::data::LabelSet::nli().names);

struct EvalSummary {
  std::vector<LanguageResult> languages;             // in evaluation order
  std::string source_lang = "en";                    // the transfer source (gap = source - target)
  std::map<std::string, TransferGap> transfer_gaps;  // by target language
  BootstrapOptions bootstrap;
};

// Fills summary.transfer_gaps for every language other than source_lang, when source_lang was
// evaluated. Paired when data::is_parallel(source dataset, target dataset) and the prediction
// counts equal the dataset sizes; unpaired otherwise. `datasets` are matched to results by lang.
void add_transfer_gaps(EvalSummary& summary, const std::vector<xlt::data::NliDataset>& datasets);

// {"languages": {LANG: {"accuracy", "ci95": [lo, hi], "ci95_method", "n", "chance", "macro_f1",
//                       "confusion": [[...]], "per_class": [{"label", "precision", "recall",
//                       "f1", "support", "predicted"}], "label_names": [...],
//                       "transfer_gap": {"gap", "ci95", "paired"}   (targets only)}},
//  "source_lang": "en", "bootstrap": {"resamples", "seed", "level", "method": "percentile"}}
// Callers add their own keys (config, model, versions) to the returned object.
nlohmann::json results_to_json(const EvalSummary& summary);
nlohmann::json language_result_to_json(const LanguageResult& result);

// Header lang,n,accuracy,ci95_low,ci95_high,macro_f1,chance,gap,gap_ci95_low,gap_ci95_high,paired
// (gap columns empty for the source and when there is no source). Rows in evaluation order.
std::string results_to_csv(const EvalSummary& summary);
void write_results_csv(const std::filesystem::path& path, const EvalSummary& summary);
void write_results_json(const std::filesystem::path& path, const nlohmann::json& results);

// One row of predictions.jsonl.
struct Prediction {
  std::string lang;
  int64_t index = 0;  // NliExample::index (source record)
  int gold = -1;      // -1 when unlabelled
  int pred = -1;
  std::vector<float> probs;  // softmax over the label set
};

// {"lang": "es", "index": 17, "gold": 2, "pred": 1, "probs": [0.1, 0.7, 0.2]}. Probabilities are
// written with the fewest digits that read back as the same float.
nlohmann::json prediction_to_json(const Prediction& p);
void write_predictions_jsonl(const std::filesystem::path& path,
                             const std::vector<Prediction>& predictions);
// Reads predictions.jsonl back (e.g. to recompute statistics). DataError "file:line: reason".
std::vector<Prediction> read_predictions_jsonl(const std::filesystem::path& path);

}  // namespace xlt::eval
