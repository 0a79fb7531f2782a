// A hand-made results.json (schema_version 1) for the study-report tests: four languages, one
// seed, numbers chosen so that each answer's branch is known in advance:
//   baseline: every CI contains chance (1/3) -> "indistinguishable from chance", hedged
//   en: 0.34 [0.30, 0.38] -> 0.80 [0.76, 0.84]: intervals separate -> clear English gain
//   gaps: es 0.05 [0.01, 0.09] (clear), fr 0.02 [-0.02, 0.06] (unclear), hi 0.20 [0.15, 0.25]
//   distances (syntactic): es 0.1784, fr 0.1882, hi 0.3838 -> 3 targets: not meaningful
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <tuple>
#include <utility>

namespace xlt::test {

inline nlohmann::json eval_language(double acc, double lo, double hi) {
  return {{"accuracy", acc},
          {"ci95", {lo, hi}},
          {"n", 500},
          {"chance", 1.0 / 3.0},
          {"macro_f1", acc - 0.01},
          {"confusion", {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}},
          {"per_class", nlohmann::json::array()},
          {"label_names", {"entailment", "neutral", "contradiction"}}};
}

inline nlohmann::json study_results_fixture() {
  using nlohmann::json;
  json r;
  r["schema_version"] = 1;
  r["xlt_version"] = "0.1.0";
  r["generated"] = "2024-05-01T12:00:00Z";
  r["study"] = {
      {"title", "fixture <study> & co"},
      {"config_file", "/tmp/study.toml"},
      {"out_dir", "/tmp/out"},
      {"languages", {"en", "es", "fr", "hi"}},
      {"source_lang", "en"},
      {"seeds", {7}},
      {"stages",
       {"baseline", "finetune", "zero_shot", "analysis", "attention", "perplexity", "report"}},
      {"encoder",
       {{"model", "tiny-bert"},
        {"path", "/tmp/m"},
        {"randomly_initialized", true},
        {"type", "bert"},
        {"layers", 2},
        {"parameters", 1000}}},
      {"causal_lm", nullptr},
      {"notes", {"a note"}}};
  r["config"] = {{"study", {{"title", "fixture"}}}};
  json base = {
      {"source_lang", "en"},
      {"bootstrap", {{"resamples", 1000}, {"seed", 7}, {"level", 0.95}, {"method", "percentile"}}},
      {"languages", json::object()}};
  const double b[4][3] = {
      {0.34, 0.30, 0.38}, {0.33, 0.29, 0.37}, {0.35, 0.31, 0.39}, {0.32, 0.28, 0.36}};
  const char* langs[4] = {"en", "es", "fr", "hi"};
  for (int i = 0; i < 4; ++i)
    base["languages"][langs[i]] = eval_language(b[i][0], b[i][1], b[i][2]);
  json zs = base;
  const double z[4][3] = {
      {0.80, 0.76, 0.84}, {0.75, 0.71, 0.79}, {0.78, 0.74, 0.82}, {0.60, 0.55, 0.65}};
  for (int i = 0; i < 4; ++i) zs["languages"][langs[i]] = eval_language(z[i][0], z[i][1], z[i][2]);
  zs["languages"]["es"]["transfer_gap"] = {{"gap", 0.05}, {"ci95", {0.01, 0.09}}, {"paired", true}};
  zs["languages"]["fr"]["transfer_gap"] = {
      {"gap", 0.02}, {"ci95", {-0.02, 0.06}}, {"paired", true}};
  zs["languages"]["hi"]["transfer_gap"] = {{"gap", 0.20}, {"ci95", {0.15, 0.25}}, {"paired", true}};
  base["runs"] = {{{"seed", 7}, {"results", base}}};
  zs["runs"] = {{{"seed", 7}, {"results", zs}}};
  r["baseline"] = base;
  r["zero_shot"] = zs;
  r["transfer_gap"] = {{"source_lang", "en"},
                       {"definition", "accuracy(source) - accuracy(target)"},
                       {"languages",
                        {{"es",
                          {{"gap", 0.05},
                           {"std", nullptr},
                           {"seeds", 1},
                           {"per_seed", {0.05}},
                           {"ci95", {0.01, 0.09}},
                           {"paired", true},
                           {"distance", 0.1784}}},
                         {"fr",
                          {{"gap", 0.02},
                           {"std", nullptr},
                           {"seeds", 1},
                           {"per_seed", {0.02}},
                           {"ci95", {-0.02, 0.06}},
                           {"paired", true},
                           {"distance", 0.1882}}},
                         {"hi",
                          {{"gap", 0.20},
                           {"std", nullptr},
                           {"seeds", 1},
                           {"per_seed", {0.20}},
                           {"ci95", {0.15, 0.25}},
                           {"paired", true},
                           {"distance", 0.3838}}}}},
                       {"distance",
                        {{"measure", "syntactic"},
                         {"description", "test distances."},
                         {"source", "fixture"},
                         {"from", "en"}}},
                       {"correlation",
                        {{"method", "spearman"},
                         {"measure", "syntactic"},
                         {"n", 3},
                         {"rho", 0.5},
                         {"p_value", 2.0 / 3.0},
                         {"exact", true},
                         {"meaningful", false},
                         {"note", "Only 3 target languages."}}}};
  json points = json::array();
  for (int i = 0; i < 6; ++i) {
    points.push_back({{"x", i * 1.5},
                      {"y", i % 3 * 2.0},
                      {"lang", i < 3 ? "en" : "es"},
                      {"row", i % 3},
                      {"sentence", "sentence <" + std::to_string(i) + ">"}});
  }
  json tsne_phase = {{"points", points},  {"kl_divergence", 0.25}, {"perplexity", 1.5},
                     {"iterations", 500}, {"method", "exact"},     {"warnings", json::array()}};
  json align = json::array();
  for (int layer = 0; layer <= 2; ++layer) {
    align.push_back({{"layer", layer},
                     {"lang_a", "en"},
                     {"lang_b", "es"},
                     {"retrieval_a2b", 0.2 * layer},
                     {"retrieval_b2a", 0.1 * layer},
                     {"cos_pairs", 0.5},
                     {"cos_random", 0.3},
                     {"centered_retrieval_a2b", 0.4},
                     {"centered_retrieval_b2a", 0.4}});
  }
  r["analysis"] = {{"pooling", "mean"},
                   {"layer", 2},
                   {"layers", 2},
                   {"languages", {"en", "es"}},
                   {"sentences", json::object()},
                   {"tsne", {{"before", tsne_phase}, {"after", tsne_phase}}},
                   {"alignment",
                    {{"source", "parallel.tsv"},
                     {"languages", {"en", "es"}},
                     {"sentences", 3},
                     {"before", align},
                     {"after", align}}}};
  r["attention"] = {
      {"model", "tiny-xglm"},
      {"role", "causal_lm"},
      {"layer", 2},
      {"heads", 4},
      {"pair",
       {{{"lang", "en"},
         {"text", "The cat."},
         {"tokens", {"</s>", "The", "cat", "."}},
         {"weights", {{1, 0, 0, 0}, {0.5, 0.5, 0, 0}, {0.2, 0.3, 0.5, 0}, {0.1, 0.2, 0.3, 0.4}}}},
        {{"lang", "es"},
         {"text", "El gato."},
         {"tokens", {"</s>", "El", "gato", "."}},
         {"weights",
          {{1, 0, 0, 0}, {0.6, 0.4, 0, 0}, {0.2, 0.2, 0.6, 0}, {0.25, 0.25, 0.25, 0.25}}}}}}};
  json ppl = json::object();
  for (int i = 0; i < 4; ++i) {
    ppl[langs[i]] = {{"lang", langs[i]},
                     {"source", "text.txt"},
                     {"perplexity", 900.0 + i},
                     {"bits_per_char", 2.5 + 0.1 * i},
                     {"bits_per_byte", 2.0},
                     {"scored_tokens", 100},
                     {"chars", 400}};
  }
  r["perplexity"] = {{"model", "tiny-xglm"}, {"languages", ppl}};
  r["timings"] = {
      {{"unit", "baseline/seed-7"}, {"stage", "baseline"}, {"status", "ran"}, {"seconds", 1.5}}};
  return r;
}

// The same study with two encoders, "mbert" (the numbers above) and "xlmr" (every gap 0.02
// smaller), in the several-encoder layout: blocks under encoders.NAME, a paired comparison in
// which xlmr transfers clearly better to hi only.
inline nlohmann::json multi_encoder_results_fixture() {
  using nlohmann::json;
  const json one = study_results_fixture();
  json r = one;
  json x = one;
  for (auto& [lang, g] : x["transfer_gap"]["languages"].items()) {
    g["gap"] = g["gap"].get<double>() - 0.02;
    (void)lang;
  }
  r["encoders"] = json::object();
  for (const auto& [name, src] : {std::pair<std::string, const json*>{"mbert", &one},
                                  std::pair<std::string, const json*>{"xlmr", &x}}) {
    r["encoders"][name] = {{"baseline", (*src)["baseline"]},
                           {"zero_shot", (*src)["zero_shot"]},
                           {"transfer_gap", (*src)["transfer_gap"]},
                           {"analysis", (*src)["analysis"]}};
  }
  for (const char* key : {"baseline", "zero_shot", "transfer_gap", "analysis"}) r[key] = nullptr;
  json m = one["study"]["encoder"], x_model = m;
  m["name"] = "mbert";
  x_model["name"] = "xlmr";
  x_model["model"] = "tiny-xlmr";
  r["study"]["encoders"] = {m, x_model};
  json langs = json::object();
  for (const auto& [lang, lo, hi] : {std::tuple<const char*, double, double>{"es", -0.01, 0.05},
                                     {"fr", -0.02, 0.06},
                                     {"hi", 0.005, 0.035}}) {
    const double ga = one["transfer_gap"]["languages"][lang]["gap"].get<double>();
    langs[lang] = {{"gap_a", ga},
                   {"gap_b", ga - 0.02},
                   {"difference", 0.02},
                   {"ci95", {lo, hi}},
                   {"rows", 500},
                   {"smaller_gap", lo > 0 ? "xlmr" : "neither (the interval includes 0)"}};
  }
  r["comparison"] = {
      {"definition", "gap(a) - gap(b)"},
      {"resamples", 1000},
      {"pairs",
       {{{"a", "mbert"}, {"b", "xlmr"}, {"seeds_a", 1}, {"seeds_b", 1}, {"languages", langs}}}}};
  return r;
}

}  // namespace xlt::test
