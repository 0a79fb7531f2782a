// config.json <-> ModelConfig for bert, xlm-roberta and xglm. Defaults are those of the Hugging
// Face config classes (BertConfig, XLMRobertaConfig, XGLMConfig in transformers 4.40); XGLM's own
// key names are read (and, like HF's attribute_map, the BERT-style aliases hidden_size,
// num_hidden_layers, num_attention_heads) and written back under XGLM's names.
#include "xlt/io/config.h"

#include <cmath>
#include <set>

#include "core/json_strict.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"

namespace xlt::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSupported = "bert, xlm-roberta, xglm";

// Typed access to one config object; every error names the source file and the key.
class Reader {
 public:
  Reader(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw ConfigError(source_ + ": key '" + key + "': " + what);
  }
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const {
    fail(key, std::string("expected ") + expected + ", found " +
                  xlt::detail::json_type_name(j_.at(key)) + " " + j_.at(key).dump());
  }
  bool has(const std::string& key) const { return j_.contains(key); }
  bool is_null(const std::string& key) const { return has(key) && j_.at(key).is_null(); }

  void get(const std::string& key, int64_t& out) const {
    if (!has(key)) return;
    const json& v = j_.at(key);
    if (!v.is_number_integer()) wrong_type(key, "an integer");
    out = v.get<int64_t>();
  }
  // Token ids and similar: null means absent (-1).
  void get_optional(const std::string& key, int64_t& out) const {
    if (is_null(key)) {
      out = -1;
      return;
    }
    get(key, out);
    if (has(key) && out < 0)
      fail(key, "expected a non-negative integer or null, found " + std::to_string(out));
  }
  void get(const std::string& key, double& out) const {
    if (!has(key)) return;
    const json& v = j_.at(key);
    if (!v.is_number()) wrong_type(key, "a number");
    out = v.get<double>();
  }
  void get_optional(const std::string& key, double& out) const {
    if (is_null(key)) {
      out = -1;
      return;
    }
    get(key, out);
  }
  void get(const std::string& key, bool& out) const {
    if (!has(key)) return;
    const json& v = j_.at(key);
    if (!v.is_boolean()) wrong_type(key, "true or false");
    out = v.get<bool>();
  }
  void get(const std::string& key, std::string& out) const {
    if (!has(key)) return;
    const json& v = j_.at(key);
    if (!v.is_string()) wrong_type(key, "a string");
    out = v.get<std::string>();
  }
  // An alias (XGLM's hidden_size for d_model) must agree with the canonical key when both exist.
  void get_aliased(const std::string& key, const std::string& alias, int64_t& out) const {
    get(key, out);
    if (!has(alias)) return;
    int64_t other = out;
    get(alias, other);
    if (has(key) && other != out)
      fail(alias, "is an alias of '" + key + "' (" + std::to_string(out) + ") but says " +
                      std::to_string(other));
    out = other;
  }

  const json& raw() const { return j_; }
  const std::string& source() const { return source_; }

 private:
  const json& j_;
  std::string source_;
};

void read_labels(const Reader& r, ModelConfig& c) {
  if (r.has("id2label") && !r.is_null("id2label")) {
    const json& m = r.raw().at("id2label");
    if (!m.is_object()) r.wrong_type("id2label", "an object of \"id\": \"label\"");
    c.id2label.clear();
    for (const auto& [k, v] : m.items()) {
      // JSON keys are strings; Hugging Face converts them with int().
      std::size_t used = 0;
      int64_t id = -1;
      try {
        id = std::stoll(k, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != k.size() || k.empty()) r.fail("id2label", "key '" + k + "' is not an integer id");
      if (!v.is_string()) r.fail("id2label", "label for id " + k + " must be a string");
      c.id2label[id] = v.get<std::string>();
    }
    int64_t n = static_cast<int64_t>(c.id2label.size());
    for (const auto& [id, label] : c.id2label)
      if (id < 0 || id >= n)
        r.fail("id2label",
               "ids must be 0.." + std::to_string(n - 1) + ", found " + std::to_string(id));
    c.num_labels = n;
    if (r.has("num_labels")) {
      int64_t given = n;
      r.get("num_labels", given);
      if (given != n)
        r.fail("num_labels", std::to_string(given) + " disagrees with id2label's " +
                                 std::to_string(n) + " labels");
    }
  } else {
    r.get("num_labels", c.num_labels);
    if (c.num_labels < 1) r.fail("num_labels", "must be at least 1");
    c.id2label.clear();
    for (int64_t i = 0; i < c.num_labels; ++i) c.id2label[i] = "LABEL_" + std::to_string(i);
  }

  c.label2id.clear();
  if (r.has("label2id") && !r.is_null("label2id")) {
    const json& m = r.raw().at("label2id");
    if (!m.is_object()) r.wrong_type("label2id", "an object of \"label\": id");
    for (const auto& [k, v] : m.items()) {
      if (!v.is_number_integer()) r.fail("label2id", "id for label '" + k + "' must be an integer");
      c.label2id[k] = v.get<int64_t>();
    }
  } else {
    for (const auto& [id, label] : c.id2label) c.label2id[label] = id;
  }
}

void validate(const Reader& r, const ModelConfig& c, bool xglm) {
  auto key = [&](const char* bert_key, const char* xglm_key) {
    return std::string(xglm ? xglm_key : bert_key);
  };
  auto positive = [&](int64_t v, const std::string& k) {
    if (v <= 0) r.fail(k, "must be positive, found " + std::to_string(v));
  };
  auto probability = [&](double v, const std::string& k) {
    if (!(v >= 0.0 && v <= 1.0)) r.fail(k, "must be in [0, 1], found " + std::to_string(v));
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, key("hidden_size", "d_model"));
  positive(c.num_hidden_layers, key("num_hidden_layers", "num_layers"));
  positive(c.num_attention_heads, key("num_attention_heads", "attention_heads"));
  positive(c.intermediate_size, key("intermediate_size", "ffn_dim"));
  positive(c.max_position_embeddings, "max_position_embeddings");
  if (c.hidden_size % c.num_attention_heads != 0)
    r.fail(key("hidden_size", "d_model"),
           std::to_string(c.hidden_size) + " is not divisible by the number of attention heads (" +
               std::to_string(c.num_attention_heads) + ")");
  probability(c.hidden_dropout_prob, key("hidden_dropout_prob", "dropout"));
  probability(c.attention_probs_dropout_prob,
              key("attention_probs_dropout_prob", "attention_dropout"));
  if (xglm) {
    probability(c.activation_dropout, "activation_dropout");
    probability(c.layerdrop, "layerdrop");
  } else {
    positive(c.type_vocab_size, "type_vocab_size");
    if (!(c.layer_norm_eps > 0)) r.fail("layer_norm_eps", "must be positive");
    if (c.classifier_dropout != -1) probability(c.classifier_dropout, "classifier_dropout");
  }
  // Checked here, where the file's path is known, not when the model is built.
  static const std::set<std::string> kActivations = {
      "gelu", "gelu_python", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu"};
  if (!kActivations.count(c.hidden_act)) {
    r.fail(key("hidden_act", "activation_function"),
           "'" + c.hidden_act +
               "' is not supported (expected gelu, gelu_python, gelu_new, gelu_pytorch_tanh, "
               "gelu_fast or relu)");
  }
  if (!xglm && c.position_embedding_type != "absolute") {
    r.fail("position_embedding_type",
           "'" + c.position_embedding_type + "' is not supported (only 'absolute')");
  }
  if (!c.problem_type.empty() && c.problem_type != "regression" &&
      c.problem_type != "single_label_classification" &&
      c.problem_type != "multi_label_classification") {
    r.fail("problem_type", "'" + c.problem_type +
                               "' is not supported (expected regression, "
                               "single_label_classification, multi_label_classification or null)");
  }
  // XGLM's loss fills the position after the last token with pad_token_id (HF fails there too).
  if (xglm && c.pad_token_id < 0) r.fail("pad_token_id", "an XGLM model needs one, found null");
  if (c.pad_token_id >= c.vocab_size)
    r.fail("pad_token_id", std::to_string(c.pad_token_id) +
                               " is outside the vocabulary (vocab_size " +
                               std::to_string(c.vocab_size) + ")");
}

json optional_id(int64_t v) {
  return v < 0 ? json(nullptr) : json(v);
}

}  // namespace

std::string model_type_name(ModelType type) {
  switch (type) {
    case ModelType::kBert:
      return "bert";
    case ModelType::kXlmRoberta:
      return "xlm-roberta";
    case ModelType::kXglm:
      return "xglm";
  }
  return "?";
}

ModelType parse_model_type(const std::string& name) {
  if (name == "bert") return ModelType::kBert;
  if (name == "xlm-roberta") return ModelType::kXlmRoberta;
  if (name == "xglm") return ModelType::kXglm;
  throw ConfigError("unsupported model_type '" + name + "' (supported: " + kSupported + ")");
}

ModelConfig ModelConfig::defaults(ModelType type) {
  ModelConfig c;  // the member initialisers are BertConfig's defaults
  c.model_type = type;
  c.vocab_size = 30522;
  c.id2label = {{0, "LABEL_0"}, {1, "LABEL_1"}};
  c.label2id = {{"LABEL_0", 0}, {"LABEL_1", 1}};
  if (type == ModelType::kXlmRoberta) {
    c.pad_token_id = 1;
    c.bos_token_id = 0;
    c.eos_token_id = 2;
  } else if (type == ModelType::kXglm) {
    c.vocab_size = 256008;
    c.hidden_size = 1024;
    c.num_hidden_layers = 24;
    c.num_attention_heads = 16;
    c.intermediate_size = 4096;
    c.max_position_embeddings = 2048;
    c.attention_probs_dropout_prob = 0.1;
    c.activation_dropout = 0.0;
    c.layerdrop = 0.0;
    c.scale_embedding = true;
    c.decoder_start_token_id = 2;
    c.pad_token_id = 1;
    c.bos_token_id = 0;
    c.eos_token_id = 2;
    // Not configurable in HF's XGLM: nn.LayerNorm's default eps, sinusoidal positions, no
    // token types.
    c.layer_norm_eps = 1e-5;
    c.type_vocab_size = 0;
    c.position_embedding_type = "sinusoidal";
  }
  return c;
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw ConfigError(source + ": expected a JSON object");
  Reader r(j, source);
  if (!r.has("model_type"))
    throw ConfigError(source + ": missing 'model_type' (supported: " + kSupported + ")");
  std::string type_name;
  r.get("model_type", type_name);
  ModelType type;
  try {
    type = parse_model_type(type_name);
  } catch (const ConfigError& e) {
    throw ConfigError(source + ": " + e.what());
  }
  ModelConfig c = defaults(type);
  c.raw = j;

  if (r.has("architectures") && !r.is_null("architectures")) {
    const json& a = j.at("architectures");
    if (!a.is_array()) r.wrong_type("architectures", "an array of strings");
    for (const auto& v : a) {
      if (!v.is_string()) r.wrong_type("architectures", "an array of strings");
      c.architectures.push_back(v.get<std::string>());
    }
  }
  r.get("vocab_size", c.vocab_size);
  r.get("max_position_embeddings", c.max_position_embeddings);
  r.get_optional("pad_token_id", c.pad_token_id);
  r.get_optional("bos_token_id", c.bos_token_id);
  r.get_optional("eos_token_id", c.eos_token_id);
  const bool xglm = type == ModelType::kXglm;
  if (xglm) {
    r.get_aliased("d_model", "hidden_size", c.hidden_size);
    r.get_aliased("num_layers", "num_hidden_layers", c.num_hidden_layers);
    r.get_aliased("attention_heads", "num_attention_heads", c.num_attention_heads);
    r.get("ffn_dim", c.intermediate_size);
    r.get("activation_function", c.hidden_act);
    r.get("dropout", c.hidden_dropout_prob);
    r.get("attention_dropout", c.attention_probs_dropout_prob);
    r.get("activation_dropout", c.activation_dropout);
    r.get("layerdrop", c.layerdrop);
    r.get("init_std", c.initializer_range);
    r.get("scale_embedding", c.scale_embedding);
    r.get("decoder_start_token_id", c.decoder_start_token_id);
  } else {
    r.get("hidden_size", c.hidden_size);
    r.get("num_hidden_layers", c.num_hidden_layers);
    r.get("num_attention_heads", c.num_attention_heads);
    r.get("intermediate_size", c.intermediate_size);
    r.get("hidden_act", c.hidden_act);
    r.get("hidden_dropout_prob", c.hidden_dropout_prob);
    r.get("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
    r.get("type_vocab_size", c.type_vocab_size);
    r.get("layer_norm_eps", c.layer_norm_eps);
    r.get("initializer_range", c.initializer_range);
    r.get("position_embedding_type", c.position_embedding_type);
    r.get_optional("classifier_dropout", c.classifier_dropout);
  }
  if (r.is_null("problem_type")) {
    c.problem_type.clear();
  } else {
    r.get("problem_type", c.problem_type);
  }
  r.get("tie_word_embeddings", c.tie_word_embeddings);
  read_labels(r, c);
  validate(r, c, xglm);
  return c;
}

ModelConfig ModelConfig::load(const fs::path& path) {
  fs::path file = fs::is_directory(path) ? path / "config.json" : path;
  if (!fs::exists(file)) throw FileNotFound(file.string() + ": no such file");
  std::string text = read_file(file);
  nlohmann::ordered_json parsed;
  try {
    parsed = xlt::detail::parse_json_strict(text);
  } catch (const xlt::detail::JsonParseFailure& e) {
    if (e.kind == xlt::detail::JsonParseFailure::Kind::kSyntax)
      throw ConfigError(file.string() + ": malformed JSON at byte " + std::to_string(e.byte) +
                        ": " + e.message);
    throw ConfigError(file.string() + ": duplicate key '" + e.message + "'");
  }
  // Sorted keys (nlohmann::json) match save_pretrained's sort_keys=True on the way back out.
  return from_json(json::parse(parsed.dump()), file.string());
}

json ModelConfig::to_json() const {
  json j = raw.is_object() ? raw : json::object();
  j["model_type"] = model_type_name(model_type);
  if (!architectures.empty() || j.contains("architectures")) j["architectures"] = architectures;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["pad_token_id"] = optional_id(pad_token_id);
  if (bos_token_id >= 0 || j.contains("bos_token_id"))
    j["bos_token_id"] = optional_id(bos_token_id);
  if (eos_token_id >= 0 || j.contains("eos_token_id"))
    j["eos_token_id"] = optional_id(eos_token_id);
  if (model_type == ModelType::kXglm) {
    for (const char* alias : {"hidden_size", "num_hidden_layers", "num_attention_heads"})
      j.erase(alias);
    j["d_model"] = hidden_size;
    j["num_layers"] = num_hidden_layers;
    j["attention_heads"] = num_attention_heads;
    j["ffn_dim"] = intermediate_size;
    j["activation_function"] = hidden_act;
    j["dropout"] = hidden_dropout_prob;
    j["attention_dropout"] = attention_probs_dropout_prob;
    j["activation_dropout"] = activation_dropout;
    j["layerdrop"] = layerdrop;
    j["init_std"] = initializer_range;
    j["scale_embedding"] = scale_embedding;
    j["decoder_start_token_id"] = decoder_start_token_id;
  } else {
    j["hidden_size"] = hidden_size;
    j["num_hidden_layers"] = num_hidden_layers;
    j["num_attention_heads"] = num_attention_heads;
    j["intermediate_size"] = intermediate_size;
    j["hidden_act"] = hidden_act;
    j["hidden_dropout_prob"] = hidden_dropout_prob;
    j["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
    j["type_vocab_size"] = type_vocab_size;
    j["layer_norm_eps"] = layer_norm_eps;
    j["initializer_range"] = initializer_range;
    j["position_embedding_type"] = position_embedding_type;
    j["classifier_dropout"] = classifier_dropout < 0 ? json(nullptr) : json(classifier_dropout);
  }
  // Written only where it differs from HF's default or was given, as save_pretrained does.
  if (!tie_word_embeddings || j.contains("tie_word_embeddings"))
    j["tie_word_embeddings"] = tie_word_embeddings;
  // Like save_pretrained, labels are written when they differ from the 2-label default.
  ModelConfig d = defaults(model_type);
  if (id2label != d.id2label || label2id != d.label2id || j.contains("id2label")) {
    json ids = json::object();
    for (const auto& [id, label] : id2label) ids[std::to_string(id)] = label;
    j["id2label"] = ids;
    j["label2id"] = label2id;
  }
  j.erase("num_labels");  // derived from id2label, as in HF's saved configs
  if (!problem_type.empty()) {
    j["problem_type"] = problem_type;
  } else if (j.contains("problem_type")) {
    j["problem_type"] = nullptr;
  }
  return j;
}

void ModelConfig::save(const fs::path& path) const {
  // ensure_ascii like Python's json.dumps default, which save_pretrained uses.
  write_file_atomic(path, to_json().dump(2, ' ', true) + "\n");
}

}  // namespace xlt::io
