// Helpers for the fine-tuning tests: a tiny randomly initialised BERT saved in HF layout with the
// demo WordPiece vocabulary, a synthetic NLI task whose label is carried by one marker word in
// the hypothesis (learnable in a few hundred steps), and safetensors reading. Header-only: the
// suite globs only *_test.cpp.
#pragma once

#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_env.h"
#include "xlt/data/random.h"
#include "xlt/io/config.h"
#include "xlt/io/safetensors.h"
#include "xlt/models/model.h"

namespace xlt::test {

inline std::filesystem::path demo_dir() {
  return source_dir() / "examples" / "demo";
}

// A 2-layer, hidden-32 BERT over the demo vocabulary (1423 tokens), saved with the demo
// tokenizer files. `num_labels` sets the head size written to the checkpoint.
inline std::filesystem::path make_tiny_bert(const std::filesystem::path& dir, uint64_t seed = 7,
                                            int64_t num_labels = 3) {
  auto c = io::ModelConfig::defaults(io::ModelType::kBert);
  c.architectures = {"BertForSequenceClassification"};
  c.vocab_size = 1423;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 64;
  c.max_position_embeddings = 64;
  c.num_labels = num_labels;
  c.id2label.clear();
  c.label2id.clear();
  for (int64_t i = 0; i < num_labels; ++i) {
    c.id2label[i] = "LABEL_" + std::to_string(i);
    c.label2id["LABEL_" + std::to_string(i)] = i;
  }
  c.raw = c.to_json();
  auto model = models::create_model(c, seed);
  models::SaveOptions so;
  so.tokenizer_dir = demo_dir();
  models::save_model(*model, dir, so);
  return dir;
}

// Hugging Face JSON Lines NLI data: the premise is filler words, the hypothesis holds exactly
// one marker ("very" -> entailment 0, "old" -> neutral 1, "never" -> contradiction 2) among
// filler words, at a random position.
inline void write_marker_task(const std::filesystem::path& path, int n, uint64_t seed) {
  static const std::vector<std::string> filler = {
      "cat",    "car",   "man",  "woman", "house", "red",  "girl",   "dogs", "school", "garden",
      "coffee", "train", "food", "park",  "night", "fish", "market", "room", "bridge", "museum"};
  static const std::vector<std::string> marker = {"very", "old", "never"};
  data::Xoshiro256ss rng(seed);
  auto word = [&] { return filler[rng.uniform_below(filler.size())]; };
  std::string out;
  for (int i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng.uniform_below(3));
    std::string premise, hyp;
    const int pl = 3 + static_cast<int>(rng.uniform_below(5));
    for (int k = 0; k < pl; ++k) premise += (k ? " " : "") + word();
    const int hl = 2 + static_cast<int>(rng.uniform_below(4));
    const int at = static_cast<int>(rng.uniform_below(static_cast<uint64_t>(hl) + 1));
    std::vector<std::string> h;
    for (int k = 0; k < hl; ++k) h.push_back(word());
    h.insert(h.begin() + at, marker[static_cast<size_t>(label)]);
    for (size_t k = 0; k < h.size(); ++k) hyp += (k ? " " : "") + h[k];
    nlohmann::json j = {{"premise", premise}, {"hypothesis", hyp}, {"label", label}};
    out += j.dump() + "\n";
  }
  write_text(path, out);
}

// Every tensor of a safetensors file, copied (float32/int64 only).
inline std::map<std::string, at::Tensor> read_safetensors(const std::filesystem::path& path) {
  auto f = io::SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& name : f->names()) {
    const auto& v = f->tensor(name);
    const auto dt = v.dtype == io::DType::F32 ? at::kFloat : at::kLong;
    auto t = at::empty(v.shape, at::TensorOptions().dtype(dt));
    std::memcpy(t.data_ptr(), v.data, v.nbytes);
    out.emplace(name, t);
  }
  return out;
}

// Train-record losses of a log.jsonl, in order.
// `key` of every "train" record of a log.jsonl, in step order.
inline std::vector<double> logged_train_values(const std::filesystem::path& log,
                                               const std::string& key) {
  std::vector<double> values;
  std::istringstream in(read_text(log));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.at("type") == "train") values.push_back(j.at(key).get<double>());
  }
  return values;
}

inline std::vector<double> logged_losses(const std::filesystem::path& log) {
  return logged_train_values(log, "loss");
}

}  // namespace xlt::test
