// The report stage: gathers every complete unit's outputs into results.json (schema_version 1,
// docs/results-schema.json), adds the across-seed statistics, the transfer gap against
// linguistic distance and the plain-language answers, then renders report.html, figures/*.svg
// and tables/*.csv with the torch-free report module.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "study/internal.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/eval/metrics.h"
#include "xlt/eval/results.h"
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
json eval_block(Context& ctx, const std::string& prefix, const std::string& stage) {
  std::vector<std::pair<uint64_t, json>> runs;
  for (uint64_t seed : ctx.config.seeds) {
    const fs::path dir = ctx.out / (prefix + seed_unit(stage, seed));
    if (!read_stage_record(dir)) continue;
    if (auto r = read_json_if(dir / "results.json")) {
      // The statistics only: the unit's own file also records where and how fast it ran
      // (config, data, model, timing), which would make results.json differ between reruns.
      json stats = json::object();
      for (const char* key : {"bootstrap", "languages", "seed", "source_lang", "xlt_version"}) {
        if (r->contains(key)) stats[key] = std::move((*r)[key]);
      }
      runs.emplace_back(seed, std::move(stats));
    }
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

DistanceTable distance_table(const StudyConfig& c, const std::string& measure) {
  if (!c.distance.file.empty()) return read_distance_tsv(c.distance.file, measure, c.source_lang);
  return builtin_distance_table(measure);
}

// The configured measure first, then the built-in table's other measures (a user's file: only
// its configured measure).
std::vector<std::string> correlation_measures(const StudyConfig& c) {
  std::vector<std::string> m = {c.distance.measure};
  if (c.distance.file.empty()) {
    for (const auto& x : builtin_distance_measures()) {
      if (x != c.distance.measure) m.push_back(x);
    }
  }
  return m;
}

constexpr int kCorrelationResamples = 2000;

json correlation_json(const std::vector<double>& xs, const std::vector<double>& ys,
                      const std::string& measure, uint64_t seed) {
  if (xs.size() < 2) {
    return {{"method", "spearman"},
            {"measure", measure},
            {"n", static_cast<int>(xs.size())},
            {"rho", nullptr},
            {"p_value", nullptr},
            {"exact", true},
            {"meaningful", false},
            {"note", "Distances are known for fewer than two target languages."}};
  }
  const RankCorrelation r = spearman(xs, ys, seed);
  return {{"method", "spearman"},
          {"measure", measure},
          {"n", r.n},
          {"rho", nan_to_null(r.rho)},
          {"p_value", nan_to_null(r.p_value)},
          {"exact", r.exact},
          {"meaningful", r.meaningful},
          {"note", r.note}};
}

json transfer_gap_block(Context& ctx, const json& zero_shot, std::vector<std::string>& notes) {
  if (zero_shot.is_null()) return nullptr;
  const StudyConfig& c = ctx.config;
  const DistanceTable table = distance_table(c, c.distance.measure);
  const bool distances_apply = table.source_lang == c.source_lang;
  if (!distances_apply) {
    const std::string note = "The distance table gives distances from '" + table.source_lang +
                             "', not from the source language '" + c.source_lang +
                             "': the transfer gap is not related to distance.";
    if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(note);
  }
  json langs = json::object();
  std::vector<double> xs, ys;
  std::map<std::string, double> mean_gaps;
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
    mean_gaps[lang] = ms.mean;
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
  block["correlation"] = correlation_json(xs, ys, table.measure, c.seeds.front());
  // The gap against every available measure, each with a bootstrap interval of rho over the
  // target languages.
  json all = json::array();
  for (const auto& measure : correlation_measures(c)) {
    const DistanceTable t = measure == table.measure ? table : distance_table(c, measure);
    std::vector<double> mx, my;
    json values = json::object();
    if (t.source_lang == c.source_lang) {
      for (const auto& [lang, gap] : mean_gaps) {
        auto it = t.values.find(lang);
        if (it == t.values.end()) continue;
        mx.push_back(it->second);
        my.push_back(gap);
        values[lang] = it->second;
      }
    }
    json corr = correlation_json(mx, my, measure, c.seeds.front());
    const Interval ci = spearman_bootstrap_ci(mx, my, kCorrelationResamples, c.seeds.front());
    corr["ci95"] = {nan_to_null(ci.low), nan_to_null(ci.high)};
    corr["bootstrap"] = {{"resamples", kCorrelationResamples},
                         {"used", ci.used},
                         {"over", "target languages (percentile interval)"}};
    corr["description"] = t.description;
    corr["source"] = t.source;
    corr["distances"] = values;
    all.push_back(corr);
  }
  block["correlations"] = all;
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

// Per-row correctness of every complete zero-shot run of an encoder, [run][lang][position]:
// predictions.jsonl lists each language's rows in dataset order, and the evaluation sets keep
// the same rows in every language (data::subsample), so position i is the same item everywhere
// when the sets are parallel (which the eval results record as transfer_gap.paired).
using RowMap = std::map<std::string, std::vector<uint8_t>>;
struct EncoderRuns {
  std::vector<RowMap> runs;
  std::set<std::string> paired;  // target languages whose sets are parallel to the source's
};

EncoderRuns zero_shot_rows(Context& ctx, const std::string& prefix) {
  EncoderRuns out;
  bool first = true;
  for (uint64_t seed : ctx.config.seeds) {
    const fs::path dir = ctx.out / (prefix + seed_unit("zero_shot", seed));
    if (!read_stage_record(dir) || !fs::exists(dir / "predictions.jsonl")) continue;
    RowMap m;
    for (const auto& p : eval::read_predictions_jsonl(dir / "predictions.jsonl")) {
      m[p.lang].push_back(p.gold >= 0 && p.pred == p.gold ? 1 : 0);
    }
    out.runs.push_back(std::move(m));
    std::set<std::string> paired;
    if (auto r = read_json_if(dir / "results.json")) {
      for (const auto& [lang, l] : (*r)["languages"].items()) {
        if (l.contains("transfer_gap") && l["transfer_gap"].value("paired", false)) {
          paired.insert(lang);
        }
      }
    }
    if (first) {
      out.paired = paired;
    } else {
      std::set<std::string> both;
      for (const auto& l : paired) {
        if (out.paired.count(l)) both.insert(l);
      }
      out.paired = both;
    }
    first = false;
  }
  return out;
}

// Which encoder transfers better where: per target language, gap(A) - gap(B) on the parallel
// rows, with a paired bootstrap interval over those rows. Languages whose evaluation set is not
// parallel to the source's (different rows) are left out.
json comparison_block(Context& ctx) {
  const StudyConfig& c = ctx.config;
  std::vector<EncoderRuns> rows;
  for (size_t e = 0; e < c.encoders.size(); ++e) {
    rows.push_back(zero_shot_rows(ctx, encoder_prefix(c, e)));
  }
  json pairs = json::array();
  for (size_t a = 0; a < rows.size(); ++a) {
    for (size_t b = a + 1; b < rows.size(); ++b) {
      if (rows[a].runs.empty() || rows[b].runs.empty()) continue;
      json langs = json::object();
      for (const auto& lang : c.languages) {
        if (lang == c.source_lang || !rows[a].paired.count(lang) || !rows[b].paired.count(lang)) {
          continue;
        }
        // Every run of both encoders must hold the same number of rows in both languages.
        size_t n = 0;
        bool ok = true;
        for (const auto* side : {&rows[a], &rows[b]}) {
          for (const auto& run : side->runs) {
            for (const auto& l : {c.source_lang, lang}) {
              auto it = run.find(l);
              if (it == run.end() || it->second.empty() || (n && it->second.size() != n)) {
                ok = false;
              } else {
                n = it->second.size();
              }
            }
          }
        }
        if (!ok) continue;
        auto seed_rows = [&](const EncoderRuns& side) {
          std::vector<SeedRows> out;
          for (const auto& run : side.runs) out.push_back({run.at(c.source_lang), run.at(lang)});
          return out;
        };
        const PairedDifference d = paired_gap_difference(
            seed_rows(rows[a]), seed_rows(rows[b]), c.eval.bootstrap_resamples, c.seeds.front());
        std::string better = "neither (the interval includes 0)";
        if (d.low > 0) better = c.encoders[b].name;
        if (d.high < 0) better = c.encoders[a].name;
        langs[lang] = {{"gap_a", d.gap_a},        {"gap_b", d.gap_b}, {"difference", d.difference},
                       {"ci95", {d.low, d.high}}, {"rows", d.rows},   {"smaller_gap", better}};
      }
      pairs.push_back({{"a", c.encoders[a].name},
                       {"b", c.encoders[b].name},
                       {"seeds_a", rows[a].runs.size()},
                       {"seeds_b", rows[b].runs.size()},
                       {"languages", langs}});
    }
  }
  return {{"definition",
           "difference = transfer gap of a - transfer gap of b (points as fractions), each gap "
           "the mean over seeds of accuracy(source) - accuracy(target) on the evaluation rows "
           "(parallel across languages; languages whose rows are not parallel are left out); "
           "ci95 = paired percentile bootstrap over those rows (the same resampled rows for "
           "both encoders, every seed and both languages); negative = a transfers better"},
          {"resamples", c.eval.bootstrap_resamples},
          {"pairs", pairs}};
}

}  // namespace

json run_report(Context& ctx, const Unit& u) {
  const StudyConfig& c = ctx.config;
  std::vector<std::string> notes;
  json results = {{"schema_version", report::kResultsSchemaVersion},
                  {"xlt_version", XLT_VERSION},
                  {"generated", iso_time_now()}};
  auto unit_json = [&ctx](const std::string& unit, const std::string& file) -> json {
    if (!read_stage_record(ctx.out / unit)) return nullptr;
    auto j = read_json_if(ctx.out / unit / file);
    return j ? *j : json(nullptr);
  };
  // What a one-encoder study holds at the top level, per encoder.
  std::vector<json> blocks;
  for (size_t e = 0; e < c.encoders.size(); ++e) {
    const std::string prefix = encoder_prefix(c, e);
    json b;
    b["baseline"] = eval_block(ctx, prefix, "baseline");
    b["zero_shot"] = eval_block(ctx, prefix, "zero_shot");
    b["transfer_gap"] = transfer_gap_block(ctx, b["zero_shot"], notes);
    b["analysis"] = unit_json(prefix + "analysis", "analysis.json");
    b["model"] = model_entry(ctx, ctx.encoders[e], prefix + "baseline");
    blocks.push_back(std::move(b));
  }
  json attention = unit_json("attention", "attention.json");
  json perplexity = unit_json("perplexity", "perplexity.json");
  if (!perplexity.is_null() && c.perplexity.texts.empty()) {
    notes.push_back(
        "Perplexity was measured on the unique premises of each language's "
        "evaluation sample (no [perplexity] texts were configured).");
  } else if (!perplexity.is_null()) {
    std::string missing;
    for (const auto& lang : c.languages) {
      if (!c.perplexity.texts.count(lang)) missing += (missing.empty() ? "" : ", ") + lang;
    }
    if (!missing.empty()) {
      notes.push_back("No perplexity for " + missing +
                      ": [perplexity] texts names no file for it (with texts given, only the "
                      "languages they name are scored; without them, every language's "
                      "evaluation premises are).");
    }
  }
  if (!ctx.stale.empty()) {
    std::string list;
    for (const auto& n : ctx.stale) list += (list.empty() ? "" : ", ") + n;
    notes.push_back("OUT OF DATE: " + list +
                    " did not run again (their stage was not selected by --stages, or is not in "
                    "study.stages) and hold results of an earlier configuration, which this "
                    "report shows beside the current one; run those stages to bring them up to "
                    "date.");
  }
  json study = {{"title", c.title},
                {"config_file", c.config_file.string()},
                {"out_dir", ctx.out.string()},
                {"languages", c.languages},
                {"source_lang", c.source_lang},
                {"seeds", c.seeds},
                {"stages", c.stages},
                {"encoder", blocks.front()["model"]},
                {"causal_lm", nullptr},
                {"notes", notes}};
  if (!ctx.causal_lm.name.empty()) {
    study["causal_lm"] = model_entry(ctx, ctx.causal_lm, "perplexity");
  }
  if (c.multi_encoder()) {
    study["encoders"] = json::array();
    for (size_t e = 0; e < c.encoders.size(); ++e) {
      json m = blocks[e]["model"];
      m["name"] = c.encoders[e].name;
      study["encoders"].push_back(m);
    }
  }
  results["study"] = study;
  results["config"] = c.to_json();
  if (c.multi_encoder()) {
    // The per-encoder blocks under encoders.NAME; the top-level ones stay null.
    for (const char* key : {"baseline", "zero_shot", "transfer_gap", "analysis"}) {
      results[key] = nullptr;
    }
    results["encoders"] = json::object();
    for (size_t e = 0; e < c.encoders.size(); ++e) {
      json b = blocks[e];
      b.erase("model");
      results["encoders"][c.encoders[e].name] = b;
    }
    results["comparison"] = comparison_block(ctx);
  } else {
    for (const char* key : {"baseline", "zero_shot", "transfer_gap", "analysis"}) {
      results[key] = blocks.front()[key];
    }
  }
  results["attention"] = attention;
  results["perplexity"] = perplexity;
  json timings = json::array();
  for (const auto& other : ctx.units) {
    if (other.name == u.name) continue;
    auto rec = read_stage_record(other.dir);
    if (!rec) continue;
    auto it = ctx.status.find(other.name);
    timings.push_back(
        {{"unit", other.name},
         {"stage", other.stage},
         {"status", it != ctx.status.end() ? it->second
                    : std::find(ctx.stale.begin(), ctx.stale.end(), other.name) != ctx.stale.end()
                        ? "earlier run, out of date"
                        : "earlier run"},
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
