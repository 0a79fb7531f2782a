// The whole `xlt eval` pipeline as a library call: data specs -> subsample -> model + tokenizer
// -> per-language predictions -> statistics -> result files and a readable table.
#include "xlt/eval/eval_run.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <utility>

#include "xlt/core/error.h"
#include "xlt/data/spec.h"
#include "xlt/eval/collate.h"
#include "xlt/eval/evaluate.h"
#include "xlt/eval/sharded.h"
#include "xlt/io/hub_cache.h"
#include "xlt/version.h"

namespace xlt::eval {
namespace fs = std::filesystem;
namespace {

// printf-style formatting for the table (iostream manipulators make wide tables unreadable).
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string pad_right(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

std::string pad_left(std::string s, size_t w) {
  if (s.size() < w) s.insert(0, w - s.size(), ' ');
  return s;
}

bool is_head_parameter(const std::string& name) {
  return name.rfind("classifier", 0) == 0 || name.find(".classifier") != std::string::npos;
}

}  // namespace

nlohmann::json NliEvalConfig::to_json() const {
  return {{"model", model},
          {"data", data},
          {"langs", langs},
          {"format", format},
          {"skip_bad_rows", skip_bad_rows},
          {"samples", samples},
          {"seed", seed},
          {"num_labels", num_labels},
          {"new_head", new_head},
          {"bootstrap", bootstrap},
          {"source_lang", source_lang},
          {"batch_size", eval.batch_size},
          {"max_length", eval.max_length},
          {"sort_by_length", eval.sort_by_length},
          {"max_tokens", eval.max_tokens},
          // How the forward was asked to run (same figures to float tolerance): packing and
          // the requested attention kernel ("auto" picks per device, docs/eval.md).
          {"packed", eval.packed},
          {"attention", models::attention_name(eval.attention)},
          {"device", device},
          {"dtype", dtype},
          {"threads", threads}};
}

nlohmann::json NliEvalRun::results_json() const {
  nlohmann::json j = results_to_json(summary);
  j["xlt_version"] = XLT_VERSION;
  j["config"] = config.to_json();
  j["head_initialized"] = head_initialized;
  nlohmann::json mapping = nlohmann::json::array();
  for (size_t k = 0; k < label_mapping.model_to_data.size(); ++k) {
    mapping.push_back({{"model_index", k},
                       {"model_label", k < model_labels.size() ? model_labels[k] : ""},
                       {"data_label", label_mapping.model_to_data[k]}});
  }
  j["model"] = {{"path", model_path},
                {"type", model_type},
                {"labels", model_labels},
                {"head_initialized", head_initialized},
                {"initialized_parameters", initialized},
                {"label_mapping", mapping},
                {"label_mapping_by_name", label_mapping.by_name}};
  nlohmann::json data = nlohmann::json::object(), timing = nlohmann::json::object();
  for (size_t i = 0; i < datasets.size(); ++i) {
    const auto& d = datasets[i];
    const auto& p = predictions[i];
    data[d.lang] = {{"source", d.source},
                    {"format", std::string(data::nli_format_name(d.format))},
                    {"n", d.size()},
                    {"records", d.report.records},
                    {"no_gold_label", d.report.no_gold_label},
                    {"bad_rows", d.report.bad_rows}};
    timing[d.lang] = {{"seconds", p.seconds},
                      {"pairs_per_s", p.seconds > 0 ? p.size() / p.seconds : 0.0},
                      {"tokens", p.tokens},
                      {"padded_tokens", p.padded_tokens},
                      {"truncated", p.truncated}};
  }
  j["data"] = data;
  j["timing"] = timing;
  j["seconds"] = seconds;
  return j;
}

NliEvalRun evaluate_datasets(models::Model& model, const text::Tokenizer& tokenizer,
                             std::vector<data::NliDataset> datasets, const NliEvalConfig& config,
                             bool head_initialized, std::ostream* log) {
  const auto start = std::chrono::steady_clock::now();
  NliEvalRun run;
  run.config = config;
  run.head_initialized = head_initialized;
  run.model_type = io::model_type_name(model.type());
  for (int64_t k = 0; k < model.num_labels(); ++k) {
    auto it = model.config().id2label.find(k);
    run.model_labels.push_back(it == model.config().id2label.end() ? "LABEL_" + std::to_string(k)
                                                                   : it->second);
  }
  for (const auto& d : datasets) {
    if (!d.fully_labelled()) {
      int64_t missing = 0, first_line = -1;
      for (const auto& ex : d.examples) {
        if (ex.label != data::kNoLabel) continue;
        if (missing++ == 0) first_line = ex.line;
      }
      throw DataError(d.source + (first_line > 0 ? ":" + std::to_string(first_line) : "") + " (" +
                      d.lang + "): " + std::to_string(missing) +
                      (missing == 1 ? " example has" : " examples have") + " no gold label" +
                      (first_line > 0 ? " (the first on this line)" : "") +
                      "; evaluation needs labelled data");
    }
  }
  const data::LabelSet labels = datasets.empty() ? data::LabelSet::nli() : datasets.front().labels;
  if (head_initialized) {
    // An untrained head has no label order of its own: use the data's, and name it so.
    run.label_mapping.model_to_data.resize(static_cast<size_t>(labels.size()));
    for (int i = 0; i < labels.size(); ++i) run.label_mapping.model_to_data[i] = i;
    if (model.num_labels() == labels.size()) run.model_labels = labels.names;
  } else {
    run.label_mapping = map_labels(model.config(), labels);
    if (log && run.label_mapping.by_name && !run.label_mapping.identity())
      *log << "xlt eval: " << run.label_mapping.describe(run.model_labels) << "\n";
  }

  run.summary.bootstrap = {config.bootstrap, config.seed};
  run.summary.source_lang = config.source_lang;
  // A --max-length beyond the model's positions fits only if no pair is that long: every
  // language is checked before the first is evaluated (each is checked again as it runs).
  if (const int64_t limit = models::max_sequence_length(model);
      limit > 0 && config.eval.max_length > limit) {
    for (const auto& d : datasets) {
      check_pairs_fit_model(
          model, d,
          encode_nli_pairs(tokenizer, d, config.eval.max_length, config.eval.tokenizer_threads),
          config.eval.max_length);
    }
  }
  EvalOptions opt = config.eval;
  opt.label_map = run.label_mapping.model_to_data;
  for (const auto& d : datasets) {
    opt.progress_label =
        (config.eval.progress_label.empty() ? "eval" : config.eval.progress_label) + " " + d.lang;
    // Sharded across ranks under a distributed launch (xlt launch, torchrun, srun).
    EvalPredictions p = evaluate_nli_sharded(model, tokenizer, d, opt, distributed::current());
    if (log) {
      const double pad = p.padded_tokens > 0 ? 1.0 - double(p.tokens) / p.padded_tokens : 0.0;
      *log << "xlt eval: " << d.lang << ": " << p.size() << " pairs in " << fmt("%.2f", p.seconds)
           << " s (" << fmt("%.1f", p.seconds > 0 ? p.size() / p.seconds : 0.0)
           << " pairs/s, padding " << fmt("%.1f", 100 * pad) << "% of tokens"
           << (p.truncated ? ", " + std::to_string(p.truncated) + " truncated" : "") << ")\n";
    }
    run.summary.languages.push_back(
        compute_language_result(d.lang, p.gold, p.pred, run.summary.bootstrap, labels.names));
    run.predictions.push_back(std::move(p));
  }
  run.datasets = std::move(datasets);
  add_transfer_gaps(run.summary, run.datasets);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

std::vector<data::NliDataset> read_eval_datasets(const NliEvalConfig& config, std::ostream* log) {
  if (config.bootstrap < 1) throw UsageError("--bootstrap must be >= 1");
  // A pair needs its special tokens and some text: below 8 every pair was cut to the specials
  // alone and the "accuracy" was one prediction for all rows (finetune's bound too).
  if (config.eval.max_length < 8) {
    throw UsageError("--max-length must be at least 8, got " +
                     std::to_string(config.eval.max_length));
  }
  data::SpecOptions so;
  so.read.format = data::parse_nli_format(config.format);
  so.read.skip_bad_rows = config.skip_bad_rows;
  so.langs_select_values = true;
  std::vector<std::string> langs;
  if (!config.langs.empty()) langs = data::parse_lang_list(config.langs);
  auto datasets = data::parse_data_specs(config.data, langs, so);
  auto has_lang = [&datasets](const std::string& lang) {
    return std::any_of(datasets.begin(), datasets.end(),
                       [&](const data::NliDataset& d) { return d.lang == lang; });
  };
  auto evaluated = [&datasets] {  // "en, es, ..." for messages
    std::string have;
    for (const auto& d : datasets) have += (have.empty() ? "" : ", ") + d.lang;
    return have;
  };
  // A language --langs names must be evaluated: data without a language column of its own
  // (MultiNLI, English) does not provide it.
  for (const auto& l : langs) {
    if (!has_lang(l)) {
      throw UsageError("--langs names '" + l +
                       "', which no --data value provides (they give: " + evaluated() + ")");
    }
  }
  // Gaps need the source among the languages; without it they were dropped without a word
  // (--source-lang EN with en and es data gave a table with no gap column).
  if (log && datasets.size() > 1 && !has_lang(config.source_lang)) {
    *log << "xlt eval: note: no transfer gaps: the source language '" << config.source_lang
         << "' (--source-lang) is not among the evaluated languages (" << evaluated() << ")\n";
  }
  std::string unplaced;
  for (const auto& d : datasets) {
    if (log) *log << "xlt eval: " << d.lang << ": " << d.report.summary() << "\n";
    if (d.report.bad_without_language > 0) unplaced += (unplaced.empty() ? "" : ", ") + d.lang;
  }
  // A skipped row keeps its place in the sample's draw (data::subsample), so parallel
  // languages keep the same rows; a row whose language could not be read has no place.
  if (log && config.samples > 0 && !unplaced.empty() && datasets.size() > 1) {
    *log << "xlt eval: warning: --samples after --skip-bad-rows skipped rows whose language "
            "could not be read ("
         << unplaced
         << "): those languages' samples may not be the same rows as the others' (a transfer "
            "gap is then unpaired); fix the bad rows to keep the sets parallel\n";
  }
  data::subsample(datasets, config.samples, config.seed);
  return datasets;
}

NliEvalRun evaluate_loaded_model(models::Model& model, const text::Tokenizer& tokenizer,
                                 std::vector<data::NliDataset> datasets,
                                 const NliEvalConfig& config, std::ostream* log) {
  bool head_initialized = false;
  std::vector<std::string> head;
  for (const auto& name : model.load_report().initialized) {
    if (is_head_parameter(name)) {
      head_initialized = true;
      head.push_back(name);
    }
  }
  if (log) {
    *log << "xlt eval: " << model.load_report().summary() << "\n";
    if (head_initialized) {
      *log << (config.new_head
                   ? "xlt eval: note: --new-head replaced the checkpoint's classification head; "
                     "a new one ("
                   : "xlt eval: note: the checkpoint has no classification head; a new one (");
      for (size_t i = 0; i < head.size(); ++i) *log << (i ? ", " : "") << head[i];
      *log << ") was initialised from seed " << config.seed
           << ": these are untrained-baseline predictions\n";
    }
  }
  NliEvalRun run =
      evaluate_datasets(model, tokenizer, std::move(datasets), config, head_initialized, log);
  run.initialized = model.load_report().initialized;
  return run;
}

NliEvalRun run_nli_eval(const NliEvalConfig& config, std::ostream* log) {
  auto datasets = read_eval_datasets(config, log);
  const io::ModelLocation loc = io::resolve_model_location(config.model);
  models::LoadOptions lo;
  lo.num_labels = config.num_labels;
  lo.new_head = config.new_head;
  lo.device = models::parse_device(config.device);
  lo.dtype = models::parse_dtype(config.dtype);
  lo.seed = config.seed;
  auto model = models::load_model(loc.path, lo);
  const fs::path dir = fs::is_directory(loc.path) ? loc.path : loc.path.parent_path();
  auto tokenizer = text::load_tokenizer(dir);
  models::check_tokenizer_fits(tokenizer->vocab_size(), *model, dir);
  NliEvalRun run = evaluate_loaded_model(*model, *tokenizer, std::move(datasets), config, log);
  run.model_path = loc.path.string();
  return run;
}

void write_eval_outputs(const NliEvalRun& run, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create folder: " + ec.message());
  std::vector<Prediction> rows;
  for (const auto& p : run.predictions) {
    auto r = p.to_predictions();
    rows.insert(rows.end(), r.begin(), r.end());
  }
  write_predictions_jsonl(dir / "predictions.jsonl", rows);
  write_results_csv(dir / "results.csv", run.summary);
  // Written last: its presence marks a complete run.
  write_results_json(dir / "results.json", run.results_json());
}

std::string format_eval_table(const NliEvalRun& run) {
  std::ostringstream o;
  const auto& s = run.summary;
  const bool gaps = !s.transfer_gaps.empty();
  o << pad_right("lang", 8) << pad_left("n", 7) << pad_left("accuracy", 10) << "  "
    << pad_right("95% CI", 17) << pad_left("macro-F1", 9) << pad_left("chance", 8);
  if (gaps) o << pad_left("gap " + s.source_lang + "-x", 10) << "  " << pad_right("95% CI", 17);
  o << "\n";
  for (const auto& r : s.languages) {
    o << pad_right(r.lang, 8) << pad_left(std::to_string(r.n), 7)
      << pad_left(fmt("%.4f", r.accuracy), 10) << "  "
      << pad_right("[" + fmt("%.4f", r.ci95.low) + ", " + fmt("%.4f", r.ci95.high) + "]", 17)
      << pad_left(fmt("%.4f", r.macro_f1), 9) << pad_left(fmt("%.4f", r.chance), 8);
    auto it = s.transfer_gaps.find(r.lang);
    if (it != s.transfer_gaps.end()) {
      const auto& g = it->second;
      o << pad_left(fmt("%+.4f", g.gap), 10) << "  "
        << pad_right("[" + fmt("%+.4f", g.ci.low) + ", " + fmt("%+.4f", g.ci.high) + "]", 17)
        << (g.paired ? " paired" : " unpaired");
    }
    o << "\n";
  }
  if (run.head_initialized)
    o << "note: classification head newly initialised (seed " << run.config.seed
      << "): untrained baseline\n";
  return o.str();
}

}  // namespace xlt::eval
