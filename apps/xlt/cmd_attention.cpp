// `xlt attention MODEL --sentences "S1" "S2" ... --out DIR`: attention maps (head mean or every
// head) per layer with their tokens, for encoders (square) and causal LMs (lower-triangular),
// plus position-free measures per sentence and layer and their differences for every pair of
// sentences ("does the model attend to parallel sentences the same way?"). Writes
// DIR/attention.json and one heatmap figure per layer, DIR/attention_layer{L}.svg, with the
// sentences side by side on one shared colour scale.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "analysis_common.h"
#include "command.h"
#include "xlt/analysis/attention.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/report/svg.h"
#include "xlt/version.h"

namespace xlt::cli {
namespace {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

struct AttentionCliOptions {
  std::string model, tokenizer, out, layer = "all", heads = "mean", special = "keep";
  std::string dtype = "float32", langs;
  std::vector<std::string> sentences;
  int64_t max_length = 128;
  RuntimeOptions runtime;
};

ordered_json measures_json(const analysis::AttentionMeasures& m) {
  return {{"entropy", m.entropy},
          {"entropy_normalized", m.entropy_normalized},
          {"special_mass", m.special_mass},
          {"distance", m.distance}};
}

// [heads][n][n] (per head) or [n][n] (head mean) nested arrays.
ordered_json weights_json(const analysis::LayerAttention& la, size_t n, bool per_head) {
  ordered_json heads = ordered_json::array();
  for (int64_t h = 0; h < la.heads; ++h) {
    ordered_json rows = ordered_json::array();
    for (size_t r = 0; r < n; ++r) {
      const auto* p = la.weights.data() + static_cast<size_t>(h) * n * n + r * n;
      rows.push_back(std::vector<float>(p, p + n));
    }
    heads.push_back(std::move(rows));
  }
  return per_head ? heads : heads.at(0);
}

std::vector<std::string> labels(const analysis::SentenceAttention& a, bool mark) {
  std::vector<std::string> out;
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    out.push_back(mark && a.special[i] ? "*" + a.tokens[i] : a.tokens[i]);
  }
  return out;
}

std::string layer_figure(const std::vector<analysis::SentenceAttention>& all, size_t k,
                         const std::vector<std::string>& names, bool mark,
                         const std::string& model_name) {
  std::vector<report::HeatmapPanel> panels;
  int64_t heads = 1;
  for (size_t s = 0; s < all.size(); ++s) {
    const auto& a = all[s];
    const auto& la = a.layers[k];
    heads = la.heads;
    const int64_t n = static_cast<int64_t>(a.tokens.size());
    for (int64_t h = 0; h < la.heads; ++h) {
      report::HeatmapPanel p;
      p.title = names[s] + (la.heads > 1 ? " head " + std::to_string(h + 1) : "");
      p.rows = p.cols = n;
      p.row_labels = p.col_labels = labels(a, mark);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          // Keys a causal LM cannot see are shown as missing, not as zero attention.
          const bool hidden =
              a.causal && a.positions[static_cast<size_t>(j)] > a.positions[static_cast<size_t>(i)];
          p.values.push_back(
              hidden ? std::numeric_limits<double>::quiet_NaN()
                     : static_cast<double>(la.weights[static_cast<size_t>((h * n + i) * n + j)]));
        }
      }
      panels.push_back(std::move(p));
    }
  }
  report::HeatmapOptions ho;
  ho.title = model_name + ": attention of layer " + std::to_string(all.front().layers[k].layer) +
             (heads > 1 ? " (every head)" : " (mean over heads)");
  ho.x_label = "key token";
  ho.y_label = "query token";
  ho.colorbar_label = "attention weight";
  ho.panels_per_row = heads > 1 ? static_cast<int>(heads) : 0;
  return report::heatmap_svg(panels, ho);
}

int run(const AttentionCliOptions& o) {
  apply_runtime_options(o.runtime);
  // --out is made ready before any work, and a run that fails leaves no empty folder behind.
  CreatedFolders out_folders(prepare_output_folder(o.out, "--out"));
  const auto langs = split_labels(o.langs, "--langs");
  if (!langs.empty() && langs.size() != o.sentences.size()) {
    throw UsageError("--langs: " + std::to_string(langs.size()) + " languages for " +
                     std::to_string(o.sentences.size()) + " sentences");
  }
  auto lm = load_analysis_model(o.model, o.tokenizer, o.runtime.device, o.dtype, "attention");
  const int L = static_cast<int>(lm.model->config().num_hidden_layers);
  analysis::AttentionOptions ao;
  ao.layers = analysis::parse_layers(o.layer, L, 1);
  ao.per_head = o.heads == "all";
  ao.special = analysis::parse_special_policy(o.special);
  ao.max_length = capped_max_length(*lm.model, o.max_length, "attention");
  std::vector<analysis::SentenceAttention> all;
  std::vector<std::string> names;
  for (size_t i = 0; i < o.sentences.size(); ++i) {
    all.push_back(analysis::sentence_attention(*lm.model, *lm.tokenizer, o.sentences[i], ao));
    names.push_back("S" + std::to_string(i + 1) + (langs.empty() ? "" : " (" + langs[i] + ")"));
  }
  const bool mark = ao.special == analysis::SpecialTokenPolicy::kMark;

  ordered_json j;
  j["xlt_version"] = XLT_VERSION;
  j["model"] = {{"spec", o.model},
                {"path", lm.path.string()},
                {"type", io::model_type_name(lm.model->type())},
                {"num_layers", L},
                {"num_heads", all.front().num_heads},
                {"causal", all.front().causal}};
  j["config"] = {{"layers", ao.layers},         {"heads", o.heads},
                 {"special_tokens", o.special}, {"max_length", ao.max_length},
                 {"device", o.runtime.device},  {"dtype", o.dtype}};
  j["layer_numbering"] =
      "1..L: layer l is the attention inside transformer layer l "
      "(Hugging Face attentions[l - 1])";
  ordered_json sentences = ordered_json::array();
  for (size_t s = 0; s < all.size(); ++s) {
    const auto& a = all[s];
    ordered_json js;
    js["index"] = s;
    js["lang"] = langs.empty() ? ordered_json(nullptr) : ordered_json(langs[s]);
    js["text"] = o.sentences[s];
    js["tokens"] = a.tokens;
    js["special"] = a.special;
    js["positions"] = a.positions;
    ordered_json layers = ordered_json::array();
    for (const auto& la : a.layers) {
      layers.push_back({{"layer", la.layer},
                        {"measures", measures_json(la.measures)},
                        {"weights", weights_json(la, a.tokens.size(), ao.per_head)}});
    }
    js["layers"] = std::move(layers);
    sentences.push_back(std::move(js));
  }
  j["sentences"] = std::move(sentences);
  ordered_json comparisons = ordered_json::array();
  for (size_t a = 0; a < all.size(); ++a) {
    for (size_t b = a + 1; b < all.size(); ++b) {
      ordered_json per_layer = ordered_json::array();
      analysis::AttentionMeasures mean;
      for (size_t k = 0; k < ao.layers.size(); ++k) {
        const auto d =
            analysis::measure_difference(all[a].layers[k].measures, all[b].layers[k].measures);
        per_layer.push_back({{"layer", ao.layers[k]}, {"abs_difference", measures_json(d)}});
        mean.entropy += d.entropy / static_cast<double>(ao.layers.size());
        mean.entropy_normalized += d.entropy_normalized / static_cast<double>(ao.layers.size());
        mean.special_mass += d.special_mass / static_cast<double>(ao.layers.size());
        mean.distance += d.distance / static_cast<double>(ao.layers.size());
      }
      comparisons.push_back({{"a", a},
                             {"b", b},
                             {"layers", per_layer},
                             {"mean_abs_difference", measures_json(mean)}});
    }
  }
  j["comparisons"] = std::move(comparisons);

  const fs::path dir(o.out);
  std::vector<std::string> figures;
  const std::string model_name = lm.path.filename().string();
  for (size_t k = 0; k < ao.layers.size(); ++k) {
    const std::string name = "attention_layer" + std::to_string(ao.layers[k]) + ".svg";
    write_file_atomic(dir / name, layer_figure(all, k, names, mark, model_name));
    figures.push_back(name);
  }
  j["figures"] = figures;
  write_file_atomic(dir / "attention.json", j.dump(1) + "\n");
  // Figures of layers an earlier run drew into this folder would read as this run's.
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("attention_layer", 0) == 0 && e.path().extension() == ".svg" &&
        std::find(figures.begin(), figures.end(), f) == figures.end()) {
      std::error_code ec;
      fs::remove(e.path(), ec);  // the run's own outputs are complete; a leftover is harmless
    }
  }

  std::printf("%5s %-10s %9s %9s %9s %9s\n", "layer", "sentence", "entropy", "ent_norm", "special",
              "distance");
  for (size_t k = 0; k < ao.layers.size(); ++k) {
    for (size_t s = 0; s < all.size(); ++s) {
      const auto& m = all[s].layers[k].measures;
      std::printf("%5d %-10s %9.4f %9.4f %9.4f %9.4f\n", ao.layers[k], names[s].c_str(), m.entropy,
                  m.entropy_normalized, m.special_mass, m.distance);
    }
  }
  std::fprintf(stderr, "xlt attention: %zu sentences x %zu layers -> %s\n", all.size(),
               ao.layers.size(), dir.string().c_str());
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<AttentionCliOptions>();
  sub.add_option("model", o->model, "Model folder (BERT, XLM-R, XGLM) or cached hub id")
      ->required();
  sub.add_option("--sentences", o->sentences,
                 "Sentences to show side by side (e.g. a parallel "
                 "pair)")
      ->required();
  sub.add_option("--out", o->out, "Output folder: attention.json, attention_layer{L}.svg")
      ->required();
  sub.add_option("--langs", o->langs, "Language of each sentence, comma-separated (labels)");
  sub.add_option("--layer,--layers", o->layer,
                 "Attention layers 1..L (layer l = HF attentions[l-1]): all, last, or a list")
      ->capture_default_str();
  sub.add_option("--heads", o->heads, "mean (average over heads) or all (every head)")
      ->check(CLI::IsMember({"mean", "all"}))
      ->capture_default_str();
  sub.add_option("--special", o->special,
                 "Special tokens: keep, mark (flag them, '*' in figures) or exclude (drop their "
                 "rows/columns, renormalise rows)")
      ->check(CLI::IsMember({"keep", "mark", "exclude"}))
      ->capture_default_str();
  sub.add_option("--max-length", o->max_length, "Tokens per sentence (special tokens included)")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--tokenizer", o->tokenizer, "Tokenizer folder/file (default: the model's)");
  sub.add_option("--dtype", o->dtype, "float32 or bfloat16")->capture_default_str();
  add_runtime_options(sub, o->runtime);
  return [o]() { return run(*o); };
}

}  // namespace

XLT_REGISTER_COMMAND("attention",
                     "Attention maps per layer (JSON + SVG heatmaps) and position-free measures "
                     "comparing sentences",
                     64, configure);

}  // namespace xlt::cli
