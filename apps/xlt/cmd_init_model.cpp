// `xlt init-model --arch ARCH --config CONFIG.json --out DIR`: a randomly initialised model with
// Hugging Face's init scheme, saved in HF layout (loadable by from_pretrained), for tests, demos
// and benchmarks at real sizes without downloading weights.
#include <iostream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/io/config.h"
#include "xlt/models/model.h"

namespace xlt::cli {
namespace {

struct InitOptions {
  std::string arch, config, out;
  uint64_t seed = 42;
  int64_t num_labels = 0;
};

int run(const InitOptions& o) {
  namespace fs = std::filesystem;
  const fs::path config_path =
      fs::is_directory(o.config) ? fs::path(o.config) / "config.json" : fs::path(o.config);
  if (!fs::exists(config_path)) throw IoError(config_path.string() + ": no such file");
  auto j = nlohmann::json::parse(read_file(config_path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw ConfigError(config_path.string() + ": not a JSON object");
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
  auto model = models::create_model(config, o.seed);
  models::SaveOptions so;
  // Tokenizer files beside the config (e.g. a downloaded model's folder) come along.
  so.tokenizer_dir = fs::absolute(config_path).parent_path();
  models::save_model(*model, o.out, so);
  std::cerr << "xlt init-model: " << o.arch << " with " << model->num_parameters()
            << " parameters (seed " << o.seed << ") saved to " << o.out << "\n";
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<InitOptions>();
  sub.add_option("--arch", o->arch, "Architecture")
      ->required()
      ->check(CLI::IsMember({"bert", "xlm-roberta", "xglm"}));
  sub.add_option("--config", o->config, "config.json (or a folder holding one) giving the sizes")
      ->required();
  sub.add_option("--out", o->out, "Folder to write (replaced atomically if it exists)")->required();
  sub.add_option("--seed", o->seed, "Random seed")->capture_default_str();
  sub.add_option("--num-labels", o->num_labels, "Classification labels (default: from config)")
      ->check(CLI::NonNegativeNumber);
  return [o] { return run(*o); };
}

XLT_REGISTER_COMMAND("init-model",
                     "Write a randomly initialised model (HF init scheme) in Hugging Face layout",
                     31, configure);

}  // namespace
}  // namespace xlt::cli
