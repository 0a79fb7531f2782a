// `xlt align MODEL --input PARALLEL.tsv | --input LANG=FILE ... --out DIR`: cross-lingual
// alignment of a model's sentence embeddings at every layer, for every language pair of
// parallel sentences: translation retrieval (both directions), cosine of translation pairs vs
// random pairs, retrieval after per-language mean-centering. Writes DIR/alignment.csv (the
// contract header of xlt/analysis/alignment.h) and DIR/align.json (resolved options + rows).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis_common.h"
#include "command.h"
#include "xlt/analysis/alignment.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/analysis/parallel_text.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/version.h"

namespace xlt::cli {
namespace {
namespace fs = std::filesystem;

struct AlignCliOptions {
  std::string model, tokenizer, out, layers = "all", pool = "mean", special = "exclude";
  std::string dtype = "float32", langs;
  std::vector<std::string> inputs;
  int64_t batch_size = 32, max_length = 128, max_sentences = -1;
  bool no_progress = false;
  RuntimeOptions runtime;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int run(const AlignCliOptions& o) {
  const int threads = apply_runtime_options(o.runtime);
  const auto start = std::chrono::steady_clock::now();
  analysis::ParallelReadOptions ro;
  ro.langs = split_commas(o.langs);
  ro.max_rows = o.max_sentences;
  const analysis::ParallelText par = analysis::read_parallel_inputs(o.inputs, ro);
  if (par.rows() < 2) {
    throw DataError("parallel input: " + std::to_string(par.rows()) +
                    " rows; alignment metrics need at least 2 parallel sentences");
  }
  auto lm = load_analysis_model(o.model, o.tokenizer, o.runtime.device, o.dtype, "align");
  const int L = static_cast<int>(lm.model->config().num_hidden_layers);

  analysis::EmbeddingOptions eo;
  eo.layers = analysis::parse_layers(o.layers, L, 0);
  eo.pooling = analysis::parse_pooling(o.pool);
  eo.special = analysis::parse_special_policy(o.special);
  eo.batch_size = o.batch_size;
  eo.max_length = o.max_length;
  eo.progress = !o.no_progress;
  std::vector<analysis::SentenceEmbeddings> per_lang;
  for (size_t i = 0; i < par.langs.size(); ++i) {
    eo.progress_label = "embed " + par.langs[i];
    per_lang.push_back(analysis::sentence_embeddings(*lm.model, *lm.tokenizer, par.columns[i], eo));
  }
  std::vector<analysis::LanguageLayers> ll;
  for (size_t i = 0; i < par.langs.size(); ++i) {
    analysis::LanguageLayers x;
    x.lang = par.langs[i];
    for (const auto& m : per_lang[i].matrices) x.layers.push_back(m.view());
    ll.push_back(std::move(x));
  }
  auto rows = analysis::alignment_by_layer(ll, threads);
  // alignment_by_layer numbers the layers it was given 0, 1, ...; map back to hidden_states.
  for (auto& r : rows) r.layer = eo.layers.at(static_cast<size_t>(r.layer));

  const fs::path dir(o.out);
  make_output_dir(dir);
  analysis::write_alignment_csv(dir / "alignment.csv", rows);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::ordered_json j;
  j["xlt_version"] = XLT_VERSION;
  j["model"] = {{"spec", o.model},
                {"path", lm.path.string()},
                {"type", io::model_type_name(lm.model->type())},
                {"num_layers", L}};
  j["config"] = {{"inputs", o.inputs},          {"languages", par.langs},
                 {"layers", eo.layers},         {"pooling", o.pool},
                 {"special_tokens", o.special}, {"batch_size", o.batch_size},
                 {"max_length", o.max_length},  {"max_sentences", o.max_sentences},
                 {"device", o.runtime.device},  {"dtype", o.dtype},
                 {"threads", threads}};
  j["sources"] = par.sources;
  j["sentences"] = par.rows();
  j["chance_retrieval"] = 1.0 / static_cast<double>(par.rows());
  j["seconds"] = seconds;
  write_file_atomic(dir / "align.json", j.dump(2) + "\n");

  std::printf("%5s %-6s %-6s %9s %9s %9s %9s %9s %9s\n", "layer", "a", "b", "a2b", "b2a",
              "cos_pair", "cos_rand", "c_a2b", "c_b2a");
  for (const auto& r : rows) {
    const auto& m = r.metrics;
    std::printf("%5d %-6s %-6s %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f\n", r.layer, r.lang_a.c_str(),
                r.lang_b.c_str(), m.retrieval_a2b, m.retrieval_b2a, m.cos_pairs, m.cos_random,
                m.centered_retrieval_a2b, m.centered_retrieval_b2a);
  }
  std::fprintf(stderr, "xlt align: %zu sentences x %zu languages x %zu layers in %.1f s -> %s\n",
               par.rows(), par.langs.size(), eo.layers.size(), seconds,
               (dir / "alignment.csv").string().c_str());
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<AlignCliOptions>();
  sub.add_option("model", o->model, "Model folder (BERT, XLM-R, XGLM) or cached hub id")
      ->required();
  sub.add_option("--input,--parallel", o->inputs,
                 "Parallel sentences: one TSV whose header row names the languages "
                 "(en<TAB>es<TAB>...), or LANG=FILE per line-aligned file (repeat)")
      ->required();
  sub.add_option("--out", o->out, "Output folder: alignment.csv, align.json")->required();
  sub.add_option("--langs", o->langs, "Languages to use, comma-separated (default: all)");
  sub.add_option("--layers,--layer", o->layers,
                 "Layers as HF hidden_states (0 = embeddings): all, last, or a list like 0,6,12")
      ->capture_default_str();
  sub.add_option("--pool", o->pool, "Pooling: cls (first token) or mean")
      ->check(CLI::IsMember({"cls", "mean"}))
      ->capture_default_str();
  sub.add_option("--special", o->special,
                 "Special tokens in mean pooling: exclude, keep or mark (= keep)")
      ->check(CLI::IsMember({"keep", "mark", "exclude"}))
      ->capture_default_str();
  sub.add_option("--max-sentences", o->max_sentences, "Use the first N rows (default: all)");
  sub.add_option("--batch-size", o->batch_size, "Sentences per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--max-length", o->max_length, "Tokens per sentence (special tokens included)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--tokenizer", o->tokenizer, "Tokenizer folder/file (default: the model's)");
  sub.add_option("--dtype", o->dtype, "float32 or bfloat16")->capture_default_str();
  sub.add_flag("--no-progress", o->no_progress, "No progress bar");
  add_runtime_options(sub, o->runtime);
  return [o]() { return run(*o); };
}

}  // namespace

XLT_REGISTER_COMMAND("align",
                     "Cross-lingual alignment per layer of parallel sentences (retrieval, cosine, "
                     "mean-centred retrieval) as alignment.csv",
                     62, configure);

}  // namespace xlt::cli
