// results.json / results.csv / predictions.jsonl writers and the per-language result assembly;
// see include/xlt/eval/results.h. No libtorch: only metrics and JSON.
#include "xlt/eval/results.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/csv.h"
#include "xlt/data/spec.h"

namespace xlt::eval {

LanguageResult compute_language_result(const std::string& lang, const std::vector<int>& gold,
                                       const std::vector<int>& pred,
                                       const BootstrapOptions& bootstrap,
                                       const std::vector<std::string>& label_names) {
  const int k = static_cast<int>(label_names.size());
  LanguageResult r;
  r.lang = lang;
  r.label_names = label_names;
  r.confusion = confusion_matrix(gold, pred, k);  // validates sizes and ids
  if (gold.empty()) throw Error("metrics: no predictions for language '" + lang + "'");
  r.n = static_cast<int64_t>(gold.size());
  r.correct = correctness(gold, pred);
  r.accuracy = accuracy(gold, pred);
  const AccuracyInterval ci = accuracy_ci(r.correct, bootstrap);
  r.ci95 = ci.ci;
  r.ci95_method = ci.method;
  r.chance = chance_level(gold, k);
  r.per_class = per_class_metrics(r.confusion, label_names);
  r.macro_f1 = macro_f1(r.confusion);
  return r;
}

void add_transfer_gaps(EvalSummary& summary, const std::vector<xlt::data::NliDataset>& datasets) {
  auto find_result = [&](const std::string& lang) -> const LanguageResult* {
    for (const auto& r : summary.languages)
      if (r.lang == lang) return &r;
    return nullptr;
  };
  auto find_dataset = [&](const std::string& lang) -> const xlt::data::NliDataset* {
    for (const auto& d : datasets)
      if (d.lang == lang) return &d;
    return nullptr;
  };
  summary.transfer_gaps.clear();
  const LanguageResult* source = find_result(summary.source_lang);
  if (!source) return;
  const auto* source_data = find_dataset(summary.source_lang);
  for (const auto& target : summary.languages) {
    if (target.lang == summary.source_lang) continue;
    const auto* target_data = find_dataset(target.lang);
    bool paired = source_data && target_data &&
                  xlt::data::is_parallel(*source_data, *target_data) &&
                  source_data->size() == source->n && target_data->size() == target.n;
    summary.transfer_gaps[target.lang] =
        transfer_gap(source->correct, target.correct, paired, summary.bootstrap);
  }
}

namespace {
nlohmann::json interval_json(const Interval& i) {
  return nlohmann::json::array({i.low, i.high});
}
}  // namespace

nlohmann::json language_result_to_json(const LanguageResult& r) {
  nlohmann::json per_class = nlohmann::json::array();
  for (const auto& c : r.per_class)
    per_class.push_back({{"label", c.name},
                         {"precision", c.precision},
                         {"recall", c.recall},
                         {"f1", c.f1},
                         {"support", c.support},
                         {"predicted", c.predicted}});
  return {{"accuracy", r.accuracy},
          {"ci95", interval_json(r.ci95)},
          {"ci95_method", interval_method_name(r.ci95_method)},
          {"n", r.n},
          {"chance", r.chance},
          {"macro_f1", r.macro_f1},
          {"confusion", r.confusion},
          {"per_class", per_class},
          {"label_names", r.label_names}};
}

nlohmann::json results_to_json(const EvalSummary& summary) {
  nlohmann::json languages = nlohmann::json::object();
  for (const auto& r : summary.languages) {
    nlohmann::json j = language_result_to_json(r);
    if (auto it = summary.transfer_gaps.find(r.lang); it != summary.transfer_gaps.end())
      j["transfer_gap"] = {{"gap", it->second.gap},
                           {"ci95", interval_json(it->second.ci)},
                           {"paired", it->second.paired}};
    languages[r.lang] = std::move(j);
  }
  return {{"languages", languages},
          {"source_lang", summary.source_lang},
          {"bootstrap",
           {{"resamples", summary.bootstrap.resamples},
            {"seed", summary.bootstrap.seed},
            {"level", summary.bootstrap.level},
            {"method", "percentile"}}}};
}

namespace {
// Six decimals: enough for accuracies of sets up to 10^6 examples, short enough to read.
std::string fixed(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}
}  // namespace

std::string results_to_csv(const EvalSummary& summary) {
  std::ostringstream out;
  out << "lang,n,accuracy,ci95_low,ci95_high,macro_f1,chance,gap,gap_ci95_low,gap_ci95_high,"
         "paired\n";
  for (const auto& r : summary.languages) {
    std::vector<std::string> row = {r.lang,
                                    std::to_string(r.n),
                                    fixed(r.accuracy),
                                    fixed(r.ci95.low),
                                    fixed(r.ci95.high),
                                    fixed(r.macro_f1),
                                    fixed(r.chance)};
    if (auto it = summary.transfer_gaps.find(r.lang); it != summary.transfer_gaps.end()) {
      row.push_back(fixed(it->second.gap));
      row.push_back(fixed(it->second.ci.low));
      row.push_back(fixed(it->second.ci.high));
      row.push_back(it->second.paired ? "true" : "false");
    } else {
      row.insert(row.end(), {"", "", "", ""});
    }
    out << xlt::data::csv_row(row) << "\n";
  }
  return out.str();
}

void write_results_csv(const std::filesystem::path& path, const EvalSummary& summary) {
  write_file_atomic(path, results_to_csv(summary));
}

void write_results_json(const std::filesystem::path& path, const nlohmann::json& results) {
  write_file_atomic(path, results.dump(2) + "\n");
}

namespace {
// The shortest decimal that reads back as the same float, as a double, so that nlohmann's
// shortest-double output prints 0.1 rather than 0.10000000149011612.
double float_for_json(float f) {
  if (!std::isfinite(f)) return static_cast<double>(f);
  char buf[32];
  for (int digits = 6; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return std::strtod(buf, nullptr);
}
}  // namespace

nlohmann::json prediction_to_json(const Prediction& p) {
  nlohmann::json probs = nlohmann::json::array();
  for (float f : p.probs) probs.push_back(float_for_json(f));
  return {
      {"lang", p.lang}, {"index", p.index}, {"gold", p.gold}, {"pred", p.pred}, {"probs", probs}};
}

void write_predictions_jsonl(const std::filesystem::path& path,
                             const std::vector<Prediction>& predictions) {
  AtomicFile file(path);
  for (const auto& p : predictions) file.stream() << prediction_to_json(p).dump() << '\n';
  file.commit();
}

std::vector<Prediction> read_predictions_jsonl(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  std::vector<Prediction> out;
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(line_no) + ": ";
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw DataError(where + "invalid JSON object");
    try {
      Prediction p;
      p.lang = j.at("lang").get<std::string>();
      p.index = j.at("index").get<int64_t>();
      p.gold = j.at("gold").get<int>();
      p.pred = j.at("pred").get<int>();
      if (auto it = j.find("probs"); it != j.end()) p.probs = it->get<std::vector<float>>();
      out.push_back(std::move(p));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(where +
                      "expected fields lang (string), index, gold, pred (integers), "
                      "probs (numbers): " +
                      e.what());
    }
  }
  return out;
}

}  // namespace xlt::eval
