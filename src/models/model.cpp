// The architecture-independent half of xlt::models::Model (parameters, modes, device/dtype moves)
// and the runtime helpers (device/dtype parsing, threads).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "models/arch.h"
#include "models/layers.h"
#include "xlt/core/error.h"
#include "xlt/core/threads.h"

namespace xlt::models {

Model::Model(ModelKind kind, io::ModelConfig config, std::shared_ptr<torch::nn::Module> module)
    : kind_(kind), config_(std::move(config)), module_(std::move(module)) {
  module_->eval();
}

Model::~Model() = default;

std::vector<std::pair<std::string, at::Tensor>> Model::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : module_->named_parameters(/*recurse=*/true)) {
    out.emplace_back(item.key(), item.value());
  }
  return out;
}

std::vector<at::Tensor> Model::parameters() const {
  return module_->parameters(true);
}

int64_t Model::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : module_->parameters(true)) n += p.numel();
  return n;
}

void Model::train(bool on) {
  module_->train(on);
}
bool Model::is_training() const {
  return module_->is_training();
}

void Model::to(c10::Device device, c10::ScalarType dtype) {
  if (dtype != c10::kFloat && dtype != c10::kBFloat16) {
    throw UsageError("model dtype must be float32 or bfloat16, got " + dtype_name(dtype));
  }
  module_->to(device, dtype);
  device_ = device;
  dtype_ = dtype;
}

std::string LoadReport::summary() const {
  std::ostringstream o;
  o << "loaded " << loaded << " tensors from " << source.string();
  if (!renamed.empty()) o << "; " << renamed.size() << " legacy names mapped";
  if (!ignored.empty()) {
    o << "; ignored " << ignored.size() << " unused (";
    for (size_t i = 0; i < ignored.size() && i < 3; ++i) o << (i ? ", " : "") << ignored[i];
    if (ignored.size() > 3) o << ", ...";
    o << ")";
  }
  if (!initialized.empty()) {
    o << "; newly initialised " << initialized.size() << " (";
    for (size_t i = 0; i < initialized.size() && i < 4; ++i) {
      o << (i ? ", " : "") << initialized[i];
    }
    if (initialized.size() > 4) o << ", ...";
    o << ")";
  }
  return o.str();
}

void ArchModel::init_module(const std::string& path, at::Generator& gen) {
  const double std = config().initializer_range;
  if (path.empty()) {
    hf_init(module(), std, gen);
    return;
  }
  for (const auto& item : module().named_modules()) {
    if (item.key() == path) {
      hf_init(*item.value(), std, gen);
      return;
    }
  }
  throw std::logic_error("init_module: no module " + path);
}

std::unique_ptr<ArchModel> make_arch_model(const io::ModelConfig& config) {
  switch (config.model_type) {
    case io::ModelType::kBert:
      return make_bert(config);
    case io::ModelType::kXlmRoberta:
      return make_xlm_roberta(config);
    case io::ModelType::kXglm:
      return make_xglm(config);
  }
  throw ConfigError("config.json: unsupported model_type");
}

std::unique_ptr<Model> create_model(const io::ModelConfig& config, uint64_t seed) {
  ensure_fast_blas();
  auto model = make_arch_model(config);
  auto gen = at::detail::createCPUGenerator(seed);
  model->init_module("", gen);
  return model;
}

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    c10::Device dev(c10::kCUDA);
    try {
      dev = c10::Device(name);
    } catch (const std::exception&) {
      throw UsageError("--device: expected cpu, cuda or cuda:N, got '" + name + "'");
    }
    if (!torch::cuda::is_available()) {
      throw ConfigError("--device " + name + ": CUDA is not available in this build/machine");
    }
    if (dev.has_index() && dev.index() >= static_cast<int>(torch::cuda::device_count())) {
      throw ConfigError("--device " + name + ": only " +
                        std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
    }
    return dev;
  }
  throw UsageError("--device: expected cpu, cuda or cuda:N, got '" + name + "'");
}

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "f32") return c10::kFloat;
  if (name == "bfloat16" || name == "bf16") return c10::kBFloat16;
  throw UsageError("--dtype: expected float32 or bfloat16, got '" + name + "'");
}

std::string dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat:
      return "float32";
    case c10::kBFloat16:
      return "bfloat16";
    case c10::kHalf:
      return "float16";
    default:
      return c10::toString(dtype);
  }
}

int set_threads(int n) {
  if (n > kMaxThreads) {
    throw UsageError("threads: " + std::to_string(n) + " is more than " +
                     std::to_string(kMaxThreads));
  }
  ensure_fast_blas();
  if (n <= 0) n = default_threads(usable_cores(), busy_cpus());
  at::set_num_threads(n);
  return n;
}

}  // namespace xlt::models
