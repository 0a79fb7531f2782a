// Typed view of a Hugging Face config.json for the architectures xlt supports (bert,
// xlm-roberta, xglm), with Hugging Face's defaults for absent fields. The parsed JSON is kept so
// that a saved model writes back every key it was given (plus what xlt changed).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace xlt::io {

enum class ModelType { kBert, kXlmRoberta, kXglm };

// "bert", "xlm-roberta", "xglm".
std::string model_type_name(ModelType type);
// Throws ConfigError listing the supported types for anything else.
ModelType parse_model_type(const std::string& name);

struct ModelConfig {
  ModelType model_type = ModelType::kBert;
  std::vector<std::string> architectures;

  // Common shape (XGLM's d_model/num_layers/attention_heads/ffn_dim are mapped onto these).
  int64_t vocab_size = 0;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  double initializer_range = 0.02;
  int64_t pad_token_id = 0;
  int64_t bos_token_id = -1;  // -1 = absent
  int64_t eos_token_id = -1;
  std::string position_embedding_type = "absolute";
  double classifier_dropout = -1;  // -1 = null (use hidden_dropout_prob)
  // The output projection is the input embedding matrix (XGLM's lm_head; HF's default true).
  // False: XGLM has its own lm_head.weight.
  bool tie_word_embeddings = true;

  // XGLM-only.
  double activation_dropout = 0.0;
  double layerdrop = 0.0;
  bool scale_embedding = true;
  int64_t decoder_start_token_id = 2;

  // Classification heads.
  int64_t num_labels = 2;
  // Ids are 0..num_labels-1 (checked). Without id2label in the file, HF's LABEL_<i> names.
  std::map<int64_t, std::string> id2label;
  // As given, else the inverse of id2label.
  std::map<std::string, int64_t> label2id;
  std::string problem_type;  // "" = null

  // The whole config.json as read (or as built by to_json for new models).
  nlohmann::json raw;

  // Hugging Face's defaults for a fresh config of this type (e.g. XLMRobertaConfig()).
  static ModelConfig defaults(ModelType type);
  // Parses and validates (positive sizes, hidden_size divisible by heads, ...). `source` names
  // the file in error messages.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
  // `path` is a config.json or a folder holding one. Throws IoError / ConfigError naming it.
  static ModelConfig load(const std::filesystem::path& path);
  // Serialises back in Hugging Face's layout and key names for this model type (raw keys kept,
  // typed fields override them; XGLM is written with d_model/num_layers/attention_heads/...).
  nlohmann::json to_json() const;
  // Atomic; formatted as save_pretrained does (indent 2, sorted keys, ASCII, trailing newline).
  void save(const std::filesystem::path& path) const;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

}  // namespace xlt::io
