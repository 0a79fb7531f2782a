// What the loader and saver need to know about an architecture beyond the public Model API:
// HF class name, base-model prefix, which parameter groups may be freshly initialised, which
// checkpoint tensors are known leftovers to ignore. One implementation per architecture file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "xlt/models/model.h"

namespace xlt::models {

class ArchModel : public Model {
 public:
  // Written to config.json "architectures" (e.g. "BertForSequenceClassification").
  virtual std::string hf_class() const = 0;
  // Prefix of the base model's parameters ("bert.", "roberta.", "model."): a bare base-model
  // checkpoint stores names without it.
  virtual std::string base_prefix() const = 0;
  // Module paths (e.g. "classifier", "bert.pooler") whose parameters the loader initialises with
  // HF's init when the checkpoint has none of them (HF reports these as "newly initialized").
  virtual std::vector<std::string> optional_modules() const { return {}; }
  // The task head's module path(s), replaced by LoadOptions::new_head.
  virtual std::vector<std::string> head_modules() const { return {}; }
  // Checkpoint tensors this model does not use but that well-formed checkpoints carry
  // (pretraining heads, tied copies, stale buffers).
  virtual bool ignorable(const std::string& checkpoint_name) const = 0;

  // HF init of the module at `path` ("" = whole model).
  void init_module(const std::string& path, at::Generator& gen);

 protected:
  using Model::Model;
};

std::unique_ptr<ArchModel> make_bert(const io::ModelConfig& config);
std::unique_ptr<ArchModel> make_xlm_roberta(const io::ModelConfig& config);
std::unique_ptr<ArchModel> make_xglm(const io::ModelConfig& config);
// Dispatches on config.model_type. Parameters are allocated but uninitialised.
std::unique_ptr<ArchModel> make_arch_model(const io::ModelConfig& config);

}  // namespace xlt::models
