// A randomly initialised model saved in HF layout (see include/xlt/models/init_model.h).
#include "xlt/models/init_model.h"

#include <algorithm>
#include <iterator>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/json_strict.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/io/config.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"

namespace xlt::models {

int64_t init_model(const InitModelOptions& o) {
  namespace fs = std::filesystem;
  static const char* const kArchs[] = {"bert", "xlm-roberta", "xglm"};
  if (std::find(std::begin(kArchs), std::end(kArchs), o.arch) == std::end(kArchs)) {
    throw UsageError("--arch: expected bert, xlm-roberta or xglm, got '" + o.arch + "'");
  }
  const fs::path config_path = fs::is_directory(o.config) ? o.config / "config.json" : o.config;
  if (!fs::exists(config_path)) throw FileNotFound(config_path.string() + ": no such file");
  nlohmann::json j;
  try {
    j = detail::parse_json_strict_sorted(read_file(config_path));
  } catch (const detail::JsonParseFailure& e) {
    throw ConfigError(config_path.string() + ": " + detail::describe(e));
  }
  if (!j.is_object()) {
    throw ConfigError(config_path.string() + ": expected a JSON object, found " +
                      detail::json_type_name(j));
  }
  // A config without model_type takes --arch; one with a different type is a mistake.
  if (!j.contains("model_type")) {
    j["model_type"] = o.arch;
  } else if (j.at("model_type") != o.arch) {
    throw UsageError("--arch " + o.arch + " but " + config_path.string() + " has model_type " +
                     j.at("model_type").dump());
  }
  auto config = io::ModelConfig::from_json(j, config_path.string());
  if (o.num_labels > 0) {
    if (config.model_type == io::ModelType::kXglm) {
      throw UsageError("--num-labels applies to classification models; xglm is a causal LM");
    }
    config.num_labels = o.num_labels;
    config.id2label.clear();
    config.label2id.clear();
    for (int64_t i = 0; i < o.num_labels; ++i) {
      config.id2label[i] = "LABEL_" + std::to_string(i);
      config.label2id["LABEL_" + std::to_string(i)] = i;
    }
  }
  auto model = create_model(config, o.seed);
  SaveOptions so;
  // Tokenizer files beside the config (e.g. a downloaded model's folder) come along when they make
  // a tokenizer of this architecture: the demo folder's BERT vocab.txt sits beside its XGLM config
  // too, and copied into the XGLM folder it would be that model's tokenizer.
  const fs::path beside = fs::absolute(config_path).parent_path();
  const text::TokenizerFamily want = o.arch == "bert"          ? text::TokenizerFamily::kBert
                                     : o.arch == "xlm-roberta" ? text::TokenizerFamily::kXlmRoberta
                                                               : text::TokenizerFamily::kXglm;
  // No tokenizer there: nothing to copy. One that is there but cannot be read is an error (it was
  // copied as is, to fail at first use).
  const bool has_tokenizer = fs::exists(beside / "vocab.txt") ||
                             fs::exists(beside / "tokenizer.json") ||
                             fs::exists(beside / "sentencepiece.bpe.model");
  if (has_tokenizer) {
    std::unique_ptr<text::Tokenizer> tok;
    try {
      tok = text::load_tokenizer(beside);
    } catch (const Error& e) {
      throw TokenizerError(std::string("the tokenizer beside ") + config_path.string() +
                           " cannot be read (remove it, or fix it, to initialise from this "
                           "config): " +
                           e.what());
    }
    if (tok->info().family == want) so.tokenizer_dir = beside;
  }
  save_model(*model, o.out, so);
  return model->num_parameters();
}

}  // namespace xlt::models
