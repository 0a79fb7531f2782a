// AdamW parameter groups, the linear schedule, the gradient-accumulated optimisation step and the
// optimiser state as named tensors (see optimizer.h). Forward/backward, clipping and zeroing are
// xlt::models' training-step pieces; this file adds what Hugging Face's Trainer puts around them.
#include "xlt/train/optimizer.h"

#include <ATen/Context.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>
#include <type_traits>

#include "xlt/core/error.h"
#include "xlt/models/training_step.h"

namespace xlt::train {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// libtorch 1.13 keys optimiser state by the printed TensorImpl address, 2.x by the pointer
// (the same rule xlt::models::adamw_moments reads with).
template <typename Key>
Key state_key(const at::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream o;
    o << p.unsafeGetTensorImpl();
    return o.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

void set_adamw_state(torch::optim::AdamW& optimizer, const at::Tensor& param,
                     const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, int64_t step) {
  auto& state = optimizer.state();
  using Key = typename std::decay_t<decltype(state)>::key_type;
  auto s = std::make_unique<torch::optim::AdamWParamState>();
  s->step(step);
  s->exp_avg(exp_avg);
  s->exp_avg_sq(exp_avg_sq);
  state[state_key<Key>(param)] = std::move(s);
}

}  // namespace

bool is_no_decay(const std::string& name) {
  if (name.find("bias") != std::string::npos) return true;
  // The module owning the parameter is the second-to-last path component.
  const auto last = name.rfind('.');
  if (last == std::string::npos) return false;
  const auto prev = name.rfind('.', last - 1);
  const std::string module = lower(name.substr(prev == std::string::npos ? 0 : prev + 1,
                                               last - (prev == std::string::npos ? 0 : prev + 1)));
  return module.find("layernorm") != std::string::npos ||
         module.find("layer_norm") != std::string::npos;
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(models::Model& model,
                                                    const OptimizerConfig& c) {
  auto options = [&c](double wd) {
    torch::optim::AdamWOptions o(c.lr);
    o.betas(std::make_tuple(c.beta1, c.beta2)).eps(c.eps).weight_decay(wd).amsgrad(false);
    return o;
  };
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& [name, p] : model.named_parameters()) {
    if (c.grouping == ParamGrouping::kHfNoDecay && is_no_decay(name)) {
      no_decay.push_back(p);
    } else {
      decay.push_back(p);
    }
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!decay.empty()) {
    groups.emplace_back(decay,
                        std::make_unique<torch::optim::AdamWOptions>(options(c.weight_decay)));
  }
  if (!no_decay.empty()) {
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(options(0.0)));
  }
  return std::make_unique<torch::optim::AdamW>(std::move(groups), options(c.weight_decay));
}

double linear_schedule_factor(int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  }
  return std::max(0.0, static_cast<double>(total_steps - step) /
                           static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps)));
}

int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps) {
  if (warmup_steps > 0) return warmup_steps;
  return static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * warmup_ratio));
}

StepStats optimization_step(models::Model& model, torch::optim::AdamW& optimizer,
                            const std::vector<models::ModelInputs>& micro_batches,
                            const StepConfig& config) {
  if (micro_batches.empty()) throw std::invalid_argument("optimization_step: no micro-batches");
  model.train(config.train_mode);
  if (config.dropout_seed) at::manual_seed(*config.dropout_seed);
  models::zero_grad(model);
  StepStats stats;
  const double scale = 1.0 / static_cast<double>(micro_batches.size());
  for (size_t i = 0; i < micro_batches.size(); ++i) {
    const auto& mb = micro_batches[i];
    if (config.before_micro_batch) config.before_micro_batch(i, micro_batches.size());
    models::ForwardOptions fo;
    fo.packed = config.packed;
    auto r = models::forward_backward(model, mb, scale, fo);
    stats.loss += r.loss * scale;
    stats.tokens += mb.attention_mask.defined() ? mb.attention_mask.sum().item<int64_t>()
                                                : mb.input_ids.numel();
    stats.examples += mb.input_ids.size(0);
  }
  if (config.after_backward) config.after_backward(stats);
  stats.grad_norm = models::clip_grad_norm(model, config.max_grad_norm);
  if (!std::isfinite(stats.grad_norm) || !std::isfinite(stats.loss)) {
    std::ostringstream o;
    o << "training diverged: gradient norm " << stats.grad_norm << ", loss " << stats.loss
      << " (try a lower --lr or a --max-grad-norm)";
    throw Error(o.str());
  }
  models::set_learning_rate(optimizer, config.lr);
  optimizer.step();
  return stats;
}

std::map<std::string, at::Tensor> optimizer_state_tensors(const models::Model& model,
                                                          torch::optim::AdamW& optimizer) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, p] : model.named_parameters()) {
    auto m = models::adamw_moments(optimizer, p);
    if (!m.exp_avg.defined()) continue;
    out["exp_avg." + name] = m.exp_avg.detach().to(at::kCPU).contiguous();
    out["exp_avg_sq." + name] = m.exp_avg_sq.detach().to(at::kCPU).contiguous();
    out["step." + name] = at::full({1}, m.step, at::kLong);
  }
  return out;
}

void load_optimizer_state(models::Model& model, torch::optim::AdamW& optimizer,
                          const std::map<std::string, at::Tensor>& tensors,
                          const std::string& source) {
  std::vector<std::string> problems;
  auto get = [&](const std::string& key, const at::Tensor& like, bool moment) -> at::Tensor {
    auto it = tensors.find(key);
    if (it == tensors.end()) {
      problems.push_back("missing " + key);
      return {};
    }
    if (moment && it->second.sizes() != like.sizes()) {
      std::ostringstream o;
      o << key << " has shape " << it->second.sizes() << ", parameter has " << like.sizes();
      problems.push_back(o.str());
      return {};
    }
    return it->second;
  };
  struct Entry {
    at::Tensor param, exp_avg, exp_avg_sq;
    int64_t step;
  };
  std::vector<Entry> entries;
  for (const auto& [name, p] : model.named_parameters()) {
    if (!tensors.count("step." + name) && !tensors.count("exp_avg." + name)) continue;
    auto ea = get("exp_avg." + name, p, true);
    auto eas = get("exp_avg_sq." + name, p, true);
    auto st = get("step." + name, p, false);
    if (!ea.defined() || !eas.defined() || !st.defined()) continue;
    entries.push_back({p, ea.to(p.device(), p.scalar_type()).clone(),
                       eas.to(p.device(), p.scalar_type()).clone(), st.item<int64_t>()});
  }
  if (!problems.empty()) {
    std::string msg = source + ": optimizer state does not fit the model:";
    for (size_t i = 0; i < problems.size() && i < 10; ++i) msg += "\n  " + problems[i];
    if (problems.size() > 10) msg += "\n  ... (" + std::to_string(problems.size() - 10) + " more)";
    throw CheckpointError(msg);
  }
  for (auto& e : entries) set_adamw_state(optimizer, e.param, e.exp_avg, e.exp_avg_sq, e.step);
}

}  // namespace xlt::train
