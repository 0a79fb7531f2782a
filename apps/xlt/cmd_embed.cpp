// `xlt embed MODEL --input FILE|LANG=FILE ... --out DIR`: sentence embeddings from any layer,
// written as DIR/embeddings.safetensors (one F32 tensor `embeddings.layer{L}` [n, hidden] per
// layer) + DIR/metadata.tsv (one row per sentence), and a TensorBoard Embedding Projector export
// (DIR/tensors.tsv + the same metadata.tsv + projector_config.pbtxt). DIR/embed.json records the
// resolved options. `xlt tsne DIR/embeddings.safetensors` reads the output as is.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "analysis_common.h"
#include "command.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/analysis/parallel_text.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/io/safetensors.h"
#include "xlt/version.h"

namespace xlt::cli {
namespace {
namespace fs = std::filesystem;

struct EmbedCliOptions {
  std::string model, out;
  std::vector<std::string> inputs;
  EmbeddingCliOptions emb;
  int projector_layer = -1000;  // unset: the last requested layer
  RuntimeOptions runtime;
};

std::string metadata_tsv(const analysis::SentenceList& list, const std::vector<int64_t>& tokens) {
  std::string out = "sentence\tlang\tindex\tsource\tline\ttokens";
  for (const auto& c : list.extra_columns) out += "\t" + tsv_field(c);
  out += "\n";
  for (size_t i = 0; i < list.records.size(); ++i) {
    const auto& r = list.records[i];
    out += tsv_field(r.sentence) + "\t" + tsv_field(r.lang) + "\t" + std::to_string(i) + "\t" +
           tsv_field(r.source) + "\t" + std::to_string(r.line) + "\t" + std::to_string(tokens[i]);
    for (const auto& e : r.extra) out += "\t" + tsv_field(e);
    out += "\n";
  }
  return out;
}

std::string vectors_tsv(const analysis::Matrix& m) {
  std::string out;
  out.reserve(static_cast<size_t>(m.rows * m.cols) * 11);
  char buf[32];
  for (int64_t i = 0; i < m.rows; ++i) {
    for (int64_t j = 0; j < m.cols; ++j) {
      std::snprintf(buf, sizeof buf, j == 0 ? "%.7g" : "\t%.7g", static_cast<double>(m(i, j)));
      out += buf;
    }
    out += "\n";
  }
  return out;
}

int run(const EmbedCliOptions& o) {
  const int threads = apply_runtime_options(o.runtime);
  // --out is made ready before any work, and a run that fails leaves no empty folder behind.
  CreatedFolders out_folders(prepare_output_folder(o.out, "--out"));
  const auto start = std::chrono::steady_clock::now();
  const analysis::SentenceList list = analysis::read_sentence_inputs(o.inputs);
  auto lm = load_analysis_model(o.model, o.emb.tokenizer, o.runtime.device, o.emb.dtype, "embed");
  const int L = static_cast<int>(lm.model->config().num_hidden_layers);

  analysis::EmbeddingOptions eo = to_embedding_options(o.emb, *lm.model, "embed");
  int projector = eo.layers.back();
  if (o.projector_layer != -1000) {
    projector = analysis::parse_layers(std::to_string(o.projector_layer), L, 0).front();
    // Adding it to the stored layers would change what tsne and align read from this folder.
    if (std::find(eo.layers.begin(), eo.layers.end(), projector) == eo.layers.end()) {
      throw UsageError("--projector-layer " + std::to_string(o.projector_layer) +
                       " is not among the --layer values; add it there (the projector view is "
                       "one of the stored layers)");
    }
  }
  std::vector<std::string> sentences;
  for (const auto& r : list.records) sentences.push_back(r.sentence);
  const auto emb = analysis::sentence_embeddings(*lm.model, *lm.tokenizer, sentences, eo);

  const fs::path dir(o.out);
  std::vector<io::TensorView> views;
  std::vector<std::string> names;
  size_t projector_index = 0;
  for (size_t k = 0; k < emb.layers.size(); ++k) {
    const auto& m = emb.matrices[k];
    io::TensorView v;
    v.name = "embeddings.layer" + std::to_string(emb.layers[k]);
    v.dtype = io::DType::F32;
    v.shape = {m.rows, m.cols};
    v.data = reinterpret_cast<const std::byte*>(m.data.data());
    v.nbytes = m.data.size() * sizeof(float);
    if (emb.layers[k] == projector) projector_index = k;
    names.push_back(v.name);  // one per layer: parse_layers keeps a repeated layer once
    views.push_back(v);
  }
  io::write_safetensors(dir / "embeddings.safetensors", views,
                        {{"format", "xlt-embeddings"},
                         {"pooling", o.emb.pool},
                         {"special_tokens", o.emb.special},
                         {"model", lm.path.string()}});
  write_file_atomic(dir / "metadata.tsv", metadata_tsv(list, emb.num_tokens));
  write_file_atomic(dir / "tensors.tsv", vectors_tsv(emb.matrices[projector_index]));
  const std::string projector_name = "embeddings.layer" + std::to_string(projector);
  write_file_atomic(
      dir / "projector_config.pbtxt",
      "embeddings {\n  tensor_name: \"" + projector_name +
          "\"\n  tensor_path: \"tensors.tsv\"\n  metadata_path: \"metadata.tsv\"\n}\n");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::ordered_json j;
  j["xlt_version"] = XLT_VERSION;
  j["model"] = {{"spec", o.model},
                {"path", lm.path.string()},
                {"type", io::model_type_name(lm.model->type())},
                {"num_layers", L},
                {"hidden_size", lm.model->config().hidden_size}};
  j["config"] = {{"inputs", o.inputs},
                 {"layers", emb.layers},
                 {"pooling", o.emb.pool},
                 {"special_tokens", o.emb.special},
                 {"batch_size", o.emb.batch_size},
                 {"max_length", eo.max_length},
                 {"device", o.runtime.device},
                 {"dtype", o.emb.dtype},
                 {"threads", threads},
                 {"projector_layer", projector}};
  j["sentences"] = sentences.size();
  j["tensors"] = names;
  j["seconds"] = seconds;
  write_file_atomic(dir / "embed.json", j.dump(2) + "\n");
  std::fprintf(stderr, "xlt embed: %zu sentences x %zu layers (%s pooling) in %.1f s -> %s\n",
               sentences.size(), names.size(), o.emb.pool.c_str(), seconds, dir.string().c_str());
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<EmbedCliOptions>();
  sub.add_option("model", o->model, "Model folder (BERT, XLM-R, XGLM) or cached hub id")
      ->required();
  sub.add_option("--input", o->inputs,
                 "Sentence file(s): FILE or LANG=FILE, one sentence per line, or a TSV with a "
                 "header that has a `sentence` (and optional `lang`) column; repeatable")
      ->required();
  sub.add_option("--out", o->out,
                 "Output folder: embeddings.safetensors, metadata.tsv, tensors.tsv, embed.json")
      ->required();
  o->emb.layers = "last";
  add_embedding_options(sub, o->emb, "--layer,--layers",
                        "Layers as HF hidden_states (0 = embeddings, L = last): all, last, or a "
                        "list like 0,6,12 (negative counts from the end)");
  sub.add_option("--projector-layer", o->projector_layer,
                 "Layer exported to tensors.tsv for the Embedding Projector (default: the last "
                 "requested layer)");
  add_runtime_options(sub, o->runtime);
  return [o]() { return run(*o); };
}

}  // namespace

XLT_REGISTER_COMMAND("embed",
                     "Sentence embeddings from any layer (safetensors + Embedding Projector TSV)",
                     55, configure);

}  // namespace xlt::cli
