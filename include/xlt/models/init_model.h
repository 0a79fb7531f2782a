// `xlt init-model` as a library call: a randomly initialised model (Hugging Face's init scheme)
// with the sizes of a config.json, saved in HF layout, for tests, demos and benchmarks without
// downloading weights. The CLI and the Python package (xlt.init_model) both call it.
//
// Usage:
//   xlt::models::InitModelOptions o;  o.arch = "bert";  o.config = "bert-config.json";
//   o.out = "runs/tiny";  int64_t n = xlt::models::init_model(o);  // parameters written
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace xlt::models {

struct InitModelOptions {
  std::string arch;              // "bert", "xlm-roberta" or "xglm"
  std::filesystem::path config;  // config.json, or a folder holding one
  std::filesystem::path out;     // replaced atomically if it exists
  uint64_t seed = 42;
  int64_t num_labels = 0;  // > 0: classification labels LABEL_0.. (not for xglm); 0 = config's
};

// Writes the model (and the tokenizer files beside the config) to options.out; returns its
// number of parameters. Throws IoError for a missing config, ConfigError for a bad one and
// UsageError when arch and the config's model_type disagree or num_labels is given for xglm.
int64_t init_model(const InitModelOptions& options);

}  // namespace xlt::models
