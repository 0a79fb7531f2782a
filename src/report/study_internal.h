// Private helpers shared by the study report's renderer and its answer generator: typed reads of
// results.json (schema_version 1) that tolerate absent parts.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace xlt::report {
class HtmlDocument;
struct StudyReport;
}  // namespace xlt::report

namespace xlt::report::detail {

using nlohmann::json;

// One language's accuracy in a "baseline" / "zero_shot" block.
struct LangStat {
  double accuracy = NAN;  // mean over seeds (the single run's accuracy with one seed)
  double std = NAN;       // sample std over seeds; NaN with one seed
  int seeds = 1;
  double low = NAN, high = NAN;  // 95% CI (envelope of the per-seed bootstrap CIs)
  double chance = NAN;
  int64_t n = 0;
};

inline double num_or_nan(const json& j, const char* key) {
  if (!j.is_object()) return NAN;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : NAN;
}

// How a correlation's p-value was found: all n! orderings, or a seeded sample of them.
inline std::string p_value_label(const json& correlation) {
  return correlation.value("exact", true) ? "exact permutation p" : "Monte Carlo permutation p";
}

inline std::optional<LangStat> lang_stat(const json& results, const char* block,
                                         const std::string& lang) {
  if (!results.contains(block) || !results[block].is_object()) return std::nullopt;
  const json& langs = results[block].value("languages", json::object());
  if (!langs.contains(lang)) return std::nullopt;
  const json& l = langs[lang];
  LangStat s;
  s.accuracy = num_or_nan(l, "accuracy");
  s.chance = num_or_nan(l, "chance");
  s.n = l.value("n", int64_t{0});
  if (l.contains("ci95") && l["ci95"].is_array() && l["ci95"].size() == 2) {
    s.low = l["ci95"][0].get<double>();
    s.high = l["ci95"][1].get<double>();
  }
  if (l.contains("across_seeds") && l["across_seeds"].is_object()) {
    const json& a = l["across_seeds"];
    s.accuracy = num_or_nan(a, "mean");
    s.std = num_or_nan(a, "std");
    s.seeds = a.value("n", 1);
    if (a.contains("ci95_envelope") && a["ci95_envelope"].is_array() &&
        a["ci95_envelope"].size() == 2) {
      s.low = a["ci95_envelope"][0].get<double>();
      s.high = a["ci95_envelope"][1].get<double>();
    }
  }
  return s;
}

inline std::vector<std::string> study_languages(const json& results) {
  std::vector<std::string> out;
  if (results.contains("study") && results["study"].contains("languages")) {
    for (const auto& l : results["study"]["languages"]) out.push_back(l.get<std::string>());
  }
  return out;
}

inline std::string source_language(const json& results) {
  if (results.contains("study")) return results["study"].value("source_lang", std::string("en"));
  return "en";
}

// The encoder names of a several-encoder study (results.json "encoders" object), in order;
// empty for a one-encoder study.
inline std::vector<std::string> encoder_names(const json& results) {
  std::vector<std::string> out;
  if (!results.contains("encoders") || !results["encoders"].is_object()) return out;
  if (results.contains("study") && results["study"].contains("encoders") &&
      results["study"]["encoders"].is_array()) {
    for (const auto& e : results["study"]["encoders"]) {
      const std::string n = e.value("name", std::string());
      if (results["encoders"].contains(n)) out.push_back(n);
    }
  }
  if (out.empty()) {
    for (const auto& [k, v] : results["encoders"].items()) out.push_back(k);
  }
  return out;
}

// One encoder's part of a several-encoder results.json in the one-encoder layout (its blocks at
// the top level, study.encoder = that encoder, no "encoders"), so every one-encoder section and
// answer applies unchanged.
inline json encoder_view(const json& results, const std::string& name) {
  json v = results;
  v.erase("encoders");
  v.erase("comparison");
  v.erase("answers");
  const json& b = results["encoders"][name];
  for (const char* key : {"baseline", "zero_shot", "transfer_gap", "analysis"}) {
    v[key] = b.contains(key) ? b[key] : json(nullptr);
  }
  if (v.contains("study") && v["study"].contains("encoders")) {
    for (const auto& e : v["study"]["encoders"]) {
      if (e.value("name", std::string()) == name) v["study"]["encoder"] = e;
    }
    v["study"].erase("encoders");
  }
  return v;
}

// study_compare.cpp: the "Encoders side by side" section of a several-encoder report, and the
// alignment heat map (pairs with `source` x layers, before/after panels; "" without rows) of
// top-1 retrieval (%) or, with `similarity`, of cos(pairs) - cos(non-pairs).
void render_comparison(const json& results, HtmlDocument& doc, StudyReport& out);
std::string alignment_heatmap_svg(const json& alignment, const std::string& source,
                                  const std::string& title, bool similarity);

// How the report shows a path of the machine the study ran on: a report is meant to be shared, so
// it shows no absolute path (results.json and config.json keep them as provenance).
//   under the config file's folder      -> relative to it, as the config writes it:
//   demo/text-en.txt under the output folder             -> <out>/ + relative:
//   <out>/init/encoder/model under $HOME                         -> ~/ + relative same top-level
//   folder as the config -> relative with ..: ../shared/data/xnli elsewhere -> .../ + file name
// A string that is not an absolute path is returned unchanged.
class PathDisplay {
 public:
  // Reads study.config_file and study.out_dir from results.json; `home` is $HOME ("" = none).
  PathDisplay(const json& results, std::string home);
  std::string operator()(const std::string& path) const;
  // A copy of `j` with every string value shown as above (keys and other values unchanged).
  json scrub(const json& j) const;

 private:
  std::string config_dir_, out_dir_, home_;
};

// "45.7%" / "3.2 points" style formatting.
std::string fmt(double v, int decimals);
std::string points(double fraction_difference);  // 0.032 -> "3.2 points"
// A number for a tables/*.csv data column: 15 significant digits, empty when missing (NaN),
// so spreadsheets and pandas read numbers, not the report's display strings.
std::string csv_number(double v);
// "true" / "false" for a JSON boolean, empty otherwise.
std::string csv_bool(const json& b);
// Element i of a two-number JSON array such as "ci95"; NaN when absent.
double pair_at(const json& pair, size_t i);

}  // namespace xlt::report::detail
