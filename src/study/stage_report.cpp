// The report stage: gathers every complete unit's outputs into results.json (schema_version 1,
// docs/results-schema.json), adds the across-seed statistics, the transfer gap against
// linguistic distance and the plain-language answers, then renders report.html, figures/*.svg
// and tables/*.csv with the torch-free report module.
#include <algorithm>
#include <cmath>

#include "study/internal.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/eval/metrics.h"
#include "xlt/report/study_report.h"
#include "xlt/study/distance.h"
#include "xlt/study/statistics.h"
#include "xlt/version.h"

namespace xlt::study::detail {
namespace {

std::optional<json> read_json_if(const fs::path& p) {
  if (!fs::exists(p)) return std::nullopt;
  return json::parse(read_file(p));
}

json nan_to_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// The "baseline"/"zero_shot" block: the first seed's `xlt eval` results, each language with an
// "across_seeds" summary, and every seed's full results under "runs".
json eval_block(Context& ctx, const std::string& stage) {
  std::vector<std::pair<uint64_t, json>> runs;
  for (uint64_t seed : ctx.config.seeds) {
    const fs::path dir = ctx.out / seed_unit(stage, seed);
    if (!read_stage_record(dir)) continue;
    if (auto r = read_json_if(dir / "results.json")) runs.emplace_back(seed, std::move(*r));
  }
  if (runs.empty()) return nullptr;
  json block = runs.front().second;
  block.erase("xlt_version");
  block.erase("seed");
  for (auto& [lang, l] : block["languages"].items()) {
    std::vector<double> acc;
    json seeds = json::array();
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& [seed, r] : runs) {
      if (!r["languages"].contains(lang)) continue;
      const json& x = r["languages"][lang];
      acc.push_back(x["accuracy"].get<double>());
      seeds.push_back(seed);
      lo = std::min(lo, x["ci95"][0].get<double>());
      hi = std::max(hi, x["ci95"][1].get<double>());
    }
    const auto ms = eval::mean_std(acc);
    l["across_seeds"] = {{"seeds", seeds},  {"accuracy", acc},
                         {"mean", ms.mean}, {"std", nan_to_null(ms.std)},
                         {"n", ms.n},       {"ci95_envelope", {lo, hi}}};
  }
  block["runs"] = json::array();
  for (auto& [seed, r] : runs) block["runs"].push_back({{"seed", seed}, {"results", r}});
  return block;
}

DistanceTable distance_table(const StudyConfig& c) {
  if (!c.distance.file.empty()) {
    return read_distance_tsv(c.distance.file, c.distance.measure, c.source_lang);
  }
  return builtin_distance_table(c.distance.measure);
}

json transfer_gap_block(Context& ctx, const json& zero_shot, std::vector<std::string>& notes) {
  if (zero_shot.is_null()) return nullptr;
  const StudyConfig& c = ctx.config;
  const DistanceTable table = distance_table(c);
  const bool distances_apply = table.source_lang == c.source_lang;
  if (!distances_apply) {
    notes.push_back("The distance table gives distances from '" + table.source_lang +
                    "', not from the source language '" + c.source_lang +
                    "': the transfer gap is not related to distance.");
  }
  json langs = json::object();
  std::vector<double> xs, ys;
  for (const auto& lang : c.languages) {
    if (lang == c.source_lang) continue;
    std::vector<double> gaps;
    double lo = INFINITY, hi = -INFINITY;
    bool paired = true;
    for (const auto& run : zero_shot["runs"]) {
      const json& l = run["results"]["languages"];
      if (!l.contains(lang) || !l[lang].contains("transfer_gap")) continue;
      const json& g = l[lang]["transfer_gap"];
      gaps.push_back(g["gap"].get<double>());
      lo = std::min(lo, g["ci95"][0].get<double>());
      hi = std::max(hi, g["ci95"][1].get<double>());
      paired = paired && g.value("paired", false);
    }
    if (gaps.empty()) continue;
    const auto ms = eval::mean_std(gaps);
    json entry = {{"gap", ms.mean},     {"std", nan_to_null(ms.std)}, {"seeds", ms.n},
                  {"per_seed", gaps},   {"ci95", {lo, hi}},           {"paired", paired},
                  {"distance", nullptr}};
    auto it = table.values.find(lang);
    if (distances_apply && it != table.values.end()) {
      entry["distance"] = it->second;
      xs.push_back(it->second);
      ys.push_back(ms.mean);
    }
    langs[lang] = entry;
  }
  json block = {{"source_lang", c.source_lang},
                {"definition",
                 "accuracy(source) - accuracy(target) after fine-tuning; mean over "
                 "seeds; ci95 = envelope of the per-seed bootstrap intervals"},
                {"languages", langs},
                {"distance",
                 {{"measure", table.measure},
                  {"description", table.description},
                  {"source", table.source},
                  {"from", table.source_lang}}}};
  if (xs.size() >= 2) {
    const RankCorrelation r = spearman(xs, ys, c.seeds.front());
    block["correlation"] = {{"method", "spearman"},
                            {"measure", table.measure},
                            {"n", r.n},
                            {"rho", nan_to_null(r.rho)},
                            {"p_value", nan_to_null(r.p_value)},
                            {"exact", r.exact},
                            {"meaningful", r.meaningful},
                            {"note", r.note}};
  } else {
    block["correlation"] = {{"method", "spearman"},
                            {"measure", table.measure},
                            {"n", static_cast<int>(xs.size())},
                            {"rho", nullptr},
                            {"p_value", nullptr},
                            {"exact", true},
                            {"meaningful", false},
                            {"note", "Distances are known for fewer than two target languages."}};
  }
  return block;
}

json model_entry(Context& ctx, const ResolvedModel& m, const std::string& from_unit_prefix) {
  json info = {{"model", m.name},
               {"path", m.dir.string()},
               {"randomly_initialized", m.random},
               {"type", m.available ? io::model_type_name(m.config.model_type) : ""},
               {"layers", m.config.num_hidden_layers},
               {"parameters", 0}};
  // Parameter counts come from whichever unit loaded the model.
  for (const auto& u : ctx.units) {
    if (u.name.rfind(from_unit_prefix, 0) != 0 && u.name != m.init_unit) continue;
    if (auto rec = read_stage_record(u.dir)) {
      const json s = rec->value("summary", json::object());
      if (s.contains("model") && s["model"].value("role", "") == m.role) {
        info["parameters"] = s["model"].value("parameters", 0);
        break;
      }
    }
  }
  return info;
}

}  // namespace

json run_report(Context& ctx, const Unit& u) {
  const StudyConfig& c = ctx.config;
  std::vector<std::string> notes;
  json results = {{"schema_version", report::kResultsSchemaVersion},
                  {"xlt_version", XLT_VERSION},
                  {"generated", iso_time_now()}};
  json baseline = eval_block(ctx, "baseline");
  json zero_shot = eval_block(ctx, "zero_shot");
  json gap = transfer_gap_block(ctx, zero_shot, notes);
  auto unit_json = [&ctx](const std::string& unit, const std::string& file) -> json {
    if (!read_stage_record(ctx.out / unit)) return nullptr;
    auto j = read_json_if(ctx.out / unit / file);
    return j ? *j : json(nullptr);
  };
  json analysis = unit_json("analysis", "analysis.json");
  json attention = unit_json("attention", "attention.json");
  json perplexity = unit_json("perplexity", "perplexity.json");
  if (!perplexity.is_null() && c.perplexity.texts.empty()) {
    notes.push_back(
        "Perplexity was measured on the unique premises of each language's "
        "evaluation sample (no [perplexity] texts were configured).");
  }
  json study = {{"title", c.title},
                {"config_file", c.config_file.string()},
                {"out_dir", ctx.out.string()},
                {"languages", c.languages},
                {"source_lang", c.source_lang},
                {"seeds", c.seeds},
                {"stages", c.stages},
                {"encoder", model_entry(ctx, ctx.encoder, "baseline")},
                {"causal_lm", nullptr},
                {"notes", notes}};
  if (!ctx.causal_lm.name.empty()) {
    study["causal_lm"] = model_entry(ctx, ctx.causal_lm, "perplexity");
  }
  results["study"] = study;
  results["config"] = c.to_json();
  results["baseline"] = baseline;
  results["zero_shot"] = zero_shot;
  results["transfer_gap"] = gap;
  results["analysis"] = analysis;
  results["attention"] = attention;
  results["perplexity"] = perplexity;
  json timings = json::array();
  for (const auto& other : ctx.units) {
    if (other.name == u.name) continue;
    auto rec = read_stage_record(other.dir);
    if (!rec) continue;
    auto it = ctx.status.find(other.name);
    timings.push_back({{"unit", other.name},
                       {"stage", other.stage},
                       {"status", it == ctx.status.end() ? "earlier run" : it->second},
                       {"seconds", rec->value("seconds", 0.0)}});
  }
  results["timings"] = timings;
  results["answers"] = report::answers_to_json(report::study_answers(results));

  const report::StudyReport r = report::render_study_report(results);
  for (const char* sub : {"figures", "tables"}) fs::remove_all(ctx.out / sub);
  fs::create_directories(ctx.out / "figures");
  fs::create_directories(ctx.out / "tables");
  for (const auto& [name, svg] : r.figures) {
    write_file_atomic(ctx.out / "figures" / (name + ".svg"), svg);
  }
  for (const auto& [name, csv] : r.tables) {
    write_file_atomic(ctx.out / "tables" / (name + ".csv"), csv);
  }
  write_json(ctx.out / "results.json", results);
  write_file_atomic(ctx.out / "report.html", r.html);
  return {{"figures", r.figures.size()},
          {"tables", r.tables.size()},
          {"report", (ctx.out / "report.html").string()}};
}

}  // namespace xlt::study::detail
