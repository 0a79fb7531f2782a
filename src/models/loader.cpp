// Loading: config.json + safetensors weights -> a model, strictly. Every problem with the weights
// is collected and reported in one CheckpointError (like llama.cpp's loader), so a user fixing a
// converted checkpoint sees all mismatches at once rather than one per run.
#include "models/loader.h"

#include <ATen/CPUGeneratorImpl.h>

#include <map>
#include <sstream>

#include "core/strings.h"
#include "models/encoder_blocks.h"
#include "models/layers.h"
#include "xlt/core/error.h"
#include "xlt/io/hub_cache.h"

namespace xlt::models {
using xlt::detail::ends_with;
using xlt::detail::starts_with;
namespace fs = std::filesystem;

namespace {

bool in_module(const std::string& name, const std::string& module_path) {
  return starts_with(name, module_path + ".");
}

bool is_float(io::DType d) {
  return d == io::DType::F32 || d == io::DType::F16 || d == io::DType::BF16 || d == io::DType::F64;
}

struct Problems {
  std::vector<std::string> missing, unexpected, misshapen, wrong_dtype;
  bool head_shape_only = true;  // every misshapen tensor is in the task head
  bool empty() const {
    return missing.empty() && unexpected.empty() && misshapen.empty() && wrong_dtype.empty();
  }
  std::string message(const std::string& what, const std::string& cls) const {
    std::ostringstream o;
    o << what << " does not match " << cls << ":";
    auto list = [&](const char* title, const std::vector<std::string>& v) {
      if (v.empty()) return;
      o << "\n  " << v.size() << " " << title << ":";
      for (const auto& s : v) o << "\n    " << s;
    };
    list("missing (model shape)", missing);
    list("unexpected (checkpoint shape)", unexpected);
    list("misshapen", misshapen);
    list("with a wrong dtype", wrong_dtype);
    if (!misshapen.empty() && head_shape_only) {
      o << "\n  (the classification head has a different number of labels: replace it by a "
           "new head, --new-head in xlt eval and xlt finetune)";
    }
    return o.str();
  }
};

}  // namespace

LoadReport load_weights(ArchModel& model, const io::Checkpoint& ckpt, const LoadOptions& opts) {
  LoadReport report;
  std::map<std::string, at::Tensor> params;
  std::map<std::string, bool> found;
  std::vector<std::string> order;  // HF's parameter order, for the reports
  for (auto& [name, p] : model.named_parameters()) {
    params.emplace(name, p);
    found.emplace(name, false);
    order.push_back(name);
  }
  const auto heads = model.head_modules();
  auto in_head = [&](const std::string& n) {
    for (const auto& h : heads) {
      if (in_module(n, h)) return true;
    }
    return false;
  };
  const std::string prefix = model.base_prefix();

  Problems prob;
  at::NoGradGuard no_grad;
  for (const auto& raw : ckpt.names()) {
    std::string name = raw;
    if (ends_with(name, ".LayerNorm.gamma")) name = name.substr(0, name.size() - 5) + "weight";
    if (ends_with(name, ".LayerNorm.beta")) name = name.substr(0, name.size() - 4) + "bias";
    // A bare base-model checkpoint (BertModel.save_pretrained) has no "bert." prefix.
    if (!params.count(name) && !model.ignorable(name) && !starts_with(name, prefix) &&
        (params.count(prefix + name) || model.ignorable(prefix + name))) {
      name = prefix + name;
    }
    if (name != raw && params.count(name)) report.renamed.push_back(raw + " -> " + name);
    const auto& view = ckpt.tensor(raw);
    auto it = params.find(name);
    if (it == params.end()) {
      if (model.ignorable(name)) {
        report.ignored.push_back(raw);
      } else {
        prob.unexpected.push_back(raw + " " + shape_str(view.shape));
      }
      continue;
    }
    if (opts.new_head && in_head(name)) {
      report.ignored.push_back(raw + " (replaced by a new head)");
      continue;
    }
    if (found[name]) {
      prob.unexpected.push_back(raw + " (a second tensor for " + name + ")");
      continue;
    }
    at::Tensor& param = it->second;
    if (!is_float(view.dtype)) {
      prob.wrong_dtype.push_back(raw + ": " + std::string(io::dtype_name(view.dtype)) +
                                 ", expected a floating type (F32, F16, BF16, F64)");
      found[name] = true;
      continue;
    }
    if (at::IntArrayRef(view.shape) != param.sizes()) {
      prob.misshapen.push_back(raw + ": checkpoint " + shape_str(view.shape) + ", model " +
                               shape_str(param.sizes()));
      if (!in_head(name)) prob.head_shape_only = false;
      found[name] = true;
      continue;
    }
    param.copy_(tensor_from_view(view));
    found[name] = true;
    ++report.loaded;
  }

  // Optional modules (task head, pooler) the checkpoint lacks entirely are initialised as HF's
  // from_pretrained does; a partially present module is an error.
  auto gen = at::detail::createCPUGenerator(opts.seed);
  for (const auto& mod : model.optional_modules()) {
    bool any = false;
    for (const auto& [name, f] : found) any = any || (in_module(name, mod) && f);
    if (any) continue;
    model.init_module(mod, gen);
    for (const auto& name : order) {
      if (in_module(name, mod)) {
        found[name] = true;
        report.initialized.push_back(name);
      }
    }
  }
  for (const auto& name : order) {
    if (!found[name]) prob.missing.push_back(name + " " + shape_str(params[name].sizes()));
  }
  if (!prob.empty()) {
    std::string where = ckpt.files().empty()
                            ? std::string("checkpoint")
                            : "checkpoint " + ckpt.files().front()->path().string();
    throw CheckpointError(prob.message(where, model.hf_class()));
  }
  return report;
}

namespace {

void apply_label_options(io::ModelConfig& config, const LoadOptions& opts, const fs::path& dir) {
  int64_t n = opts.num_labels;
  if (!opts.labels.empty()) {
    if (n > 0 && n != static_cast<int64_t>(opts.labels.size())) {
      throw UsageError("num_labels " + std::to_string(n) + " but " +
                       std::to_string(opts.labels.size()) + " label names given");
    }
    n = static_cast<int64_t>(opts.labels.size());
  }
  if (n <= 0) return;
  if (config.model_type == io::ModelType::kXglm) {
    throw ConfigError(dir.string() + ": an xglm model is a causal LM; classification (eval, " +
                      "finetune, a classification head) needs a bert or xlm-roberta checkpoint " +
                      "(a causal LM is for perplexity and attention maps)");
  }
  if (n != config.num_labels || !opts.labels.empty()) {
    config.num_labels = n;
    config.id2label.clear();
    for (int64_t i = 0; i < n; ++i) {
      config.id2label[i] = opts.labels.empty() ? "LABEL_" + std::to_string(i) : opts.labels[i];
    }
    config.label2id.clear();
    for (const auto& [id, label] : config.id2label) config.label2id[label] = id;
  }
}

}  // namespace

void check_tokenizer_fits(std::size_t tokenizer_vocab_size, const Model& model,
                          const fs::path& tokenizer_source) {
  const int64_t rows = model.config().vocab_size;
  if (static_cast<int64_t>(tokenizer_vocab_size) <= rows) return;
  throw ConfigError("tokenizer " + tokenizer_source.string() + " has " +
                    std::to_string(tokenizer_vocab_size) +
                    " tokens but the model's vocab_size is " + std::to_string(rows) +
                    ": it is not this model's tokenizer (give the model's own tokenizer files)");
}

int64_t max_sequence_length(const Model& model) {
  const io::ModelConfig& c = model.config();
  switch (c.model_type) {
    case io::ModelType::kBert:
      return encoder_max_length(c, PositionScheme::kAbsolute);
    case io::ModelType::kXlmRoberta:
      return encoder_max_length(c, PositionScheme::kRoberta);
    case io::ModelType::kXglm:
      return 0;
  }
  return 0;
}

std::unique_ptr<Model> load_model(const fs::path& spec, const LoadOptions& opts) {
  ensure_fast_blas();
  // A local path, else a hub id ("org/name[@rev]") found in the local Hugging Face cache; the
  // resolver's IoError says where it looked.
  const fs::path path = fs::exists(spec) ? spec : io::resolve_model_location(spec.string()).path;
  const fs::path dir = fs::is_directory(path) ? path : path.parent_path();
  const fs::path config_path = dir / "config.json";
  if (!fs::exists(config_path)) {
    throw CheckpointError(dir.string() +
                          ": no config.json (a Hugging Face model folder needs one)");
  }
  auto config = io::ModelConfig::load(config_path);
  apply_label_options(config, opts, dir);
  auto model = make_arch_model(config);
  auto ckpt = io::Checkpoint::open(path);
  auto report = load_weights(*model, ckpt, opts);
  report.source = path;
  model->mutable_load_report() = std::move(report);
  model->set_source_dir(dir);
  if (opts.device != c10::Device(c10::kCPU) || opts.dtype != c10::kFloat) {
    model->to(opts.device, opts.dtype);
  }
  return model;
}

}  // namespace xlt::models
