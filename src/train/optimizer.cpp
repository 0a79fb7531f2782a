// AdamW parameter groups, the linear schedule, the gradient-accumulated optimisation step and the
// optimiser state as named tensors (see optimizer.h). Forward/backward, clipping and zeroing are
// xlt::models' training-step pieces; this file adds what Hugging Face's Trainer puts around them.
#include "xlt/train/optimizer.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "libtorch parallelises with OpenMP: compile with -fopenmp or at::parallel_for runs serially"
#endif
#include <torch/version.h>
#if TORCH_VERSION_MAJOR >= 2
#include <ATen/ops/_fused_adamw.h>
#endif

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <numeric>
#include <sstream>
#include <tuple>
#include <type_traits>

#include "core/strings.h"
#include "xlt/core/error.h"
#include "xlt/models/training_step.h"

namespace xlt::train {
using xlt::detail::ascii_lower;

namespace {

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

// torch::optim::AdamW with the same arithmetic in one pass per parameter on the CPU. libtorch's
// step runs six tensor ops per parameter (mul_, add_, mul_, addcmul_, sqrt + div + add_ into a
// temporary, addcdiv_): ~14 passes over memory and a temporary as large as the parameter; the
// 4 x 178M floats of mBERT's weights, gradients and moments make that the largest memory-bound
// cost of a CPU step after the GEMMs. Here each element is read and written once, in the same
// float operations and order, in parallel. State (AdamWParamState under libtorch's key) and
// serialisation are the base class's, so checkpoints and resume are unchanged. Parameters that
// are not contiguous float32 CPU tensors, and amsgrad, take the base class's path.
class FusedAdamW : public torch::optim::AdamW {
 public:
  FusedAdamW(std::vector<torch::optim::OptimizerParamGroup> groups,
             torch::optim::AdamWOptions defaults, bool multi_tensor_on_cpu)
      : torch::optim::AdamW(std::move(groups), std::move(defaults)),
        multi_tensor_on_cpu_(multi_tensor_on_cpu) {}

  at::Tensor step(LossClosure closure = nullptr) override {
    const Kernel kernel = choose_kernel();
    if (kernel == Kernel::kLibtorch) return torch::optim::AdamW::step(std::move(closure));
    at::NoGradGuard no_grad;
    at::Tensor loss;
    if (closure) {
      at::AutoGradMode enable(true);
      loss = closure();
    }
    for (auto& group : param_groups()) {
      const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
      if (kernel == Kernel::kMultiTensor) {
        multi_tensor_update(group, o);
        continue;
      }
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        auto& s = state_of(p);
        s.step(s.step() + 1);
        update(p, p.grad(), s.exp_avg(), s.exp_avg_sq(), o, s.step());
      }
    }
    return loss;
  }

 private:
  enum class Kernel { kLibtorch, kPerElement, kMultiTensor };

  Kernel choose_kernel() {
    bool all_cpu_float = true, any_cpu = false, multi_tensor = TORCH_VERSION_MAJOR >= 2;
    for (auto& group : param_groups()) {
      if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad()) {
        return Kernel::kLibtorch;
      }
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        const auto& g = p.grad();
        any_cpu = any_cpu || p.device().is_cpu();
        if (!p.device().is_cpu() || p.scalar_type() != at::kFloat || !p.is_contiguous() ||
            g.scalar_type() != at::kFloat || !g.is_contiguous() || g.is_sparse()) {
          all_cpu_float = false;
        }
        // PyTorch's kernel takes floating parameters with gradients of their own dtype, dense,
        // on one device per call (grouped below).
        if (!at::isFloatingType(p.scalar_type()) || g.scalar_type() != p.scalar_type() ||
            g.is_sparse() || g.device() != p.device()) {
          multi_tensor = false;
        }
      }
    }
    // PyTorch's CPU kernel (2.4 and later) only when asked for: the per-element pass is the
    // tested CPU default and older 2.x wheels have none.
    if (multi_tensor && (multi_tensor_on_cpu_ || !any_cpu)) return Kernel::kMultiTensor;
    return all_cpu_float ? Kernel::kPerElement : Kernel::kLibtorch;
  }

  torch::optim::AdamWParamState& state_of(const at::Tensor& p) {
    auto& st = state();
    using Key = typename std::decay_t<decltype(st)>::key_type;
    auto key = state_key<Key>(p);
    auto it = st.find(key);
    if (it == st.end()) {
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
      s->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
      it = st.emplace(key, std::move(s)).first;
    }
    return static_cast<torch::optim::AdamWParamState&>(*it->second);
  }

  // One _fused_adamw_ call per (device, dtype, step count) of the group. PyTorch keeps each
  // parameter's step as a float tensor on its device, incremented before the kernel reads it;
  // here the integer step of libtorch's state stays the truth and parameters on the same step
  // share one such tensor.
  void multi_tensor_update(torch::optim::OptimizerParamGroup& group,
                           const torch::optim::AdamWOptions& o) {
#if TORCH_VERSION_MAJOR >= 2
    struct Batch {
      std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs;
    };
    std::map<std::tuple<std::string, int, int64_t>, Batch> batches;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& s = state_of(p);
      s.step(s.step() + 1);
      auto& b = batches[{p.device().str(), static_cast<int>(p.scalar_type()), s.step()}];
      b.params.push_back(p);
      b.grads.push_back(p.grad());
      b.exp_avgs.push_back(s.exp_avg());
      b.exp_avg_sqs.push_back(s.exp_avg_sq());
    }
    for (auto& [key, b] : batches) {
      const at::Tensor step = at::full({}, static_cast<double>(std::get<2>(key)),
                                       b.params[0].options().dtype(at::kFloat));
      const std::vector<at::Tensor> steps(b.params.size(), step);
      at::_fused_adamw_(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, {}, steps, o.lr(),
                        std::get<0>(o.betas()), std::get<1>(o.betas()), o.weight_decay(), o.eps(),
                        /*amsgrad=*/false, /*maximize=*/false);
    }
#else
    (void)group;
    (void)o;
#endif
  }

  static void update(at::Tensor& p, const at::Tensor& grad, at::Tensor& exp_avg,
                     at::Tensor& exp_avg_sq, const torch::optim::AdamWOptions& o, int64_t step) {
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    // The scalars as ATen's float kernels see them (double arguments cast to float).
    Scalars k;
    k.decayed = o.weight_decay() != 0;
    k.decay = static_cast<float>(1 - o.lr() * o.weight_decay());
    k.b1 = static_cast<float>(beta1);
    k.one_minus_b1 = static_cast<float>(1 - beta1);
    k.b2 = static_cast<float>(beta2);
    k.one_minus_b2 = static_cast<float>(1 - beta2);
    k.bc2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(beta2, static_cast<double>(step))));
    k.eps = static_cast<float>(o.eps());
    k.neg_step_size =
        static_cast<float>(-(o.lr() / (1 - std::pow(beta1, static_cast<double>(step)))));
    float* pw = p.data_ptr<float>();
    const float* gw = grad.data_ptr<float>();
    float* m = exp_avg.data_ptr<float>();
    float* v = exp_avg_sq.data_ptr<float>();
    at::parallel_for(0, p.numel(), 1 << 15, [=](int64_t begin, int64_t end) {
      update_range(pw + begin, gw + begin, m + begin, v + begin, end - begin, k);
    });
  }

  struct Scalars {
    float decay, b1, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, neg_step_size;
    bool decayed;
  };

  // Scalars by value and restrict pointers, so that the compiler may keep them in registers and
  // vectorise (with -fno-math-errno, see src/CMakeLists.txt); the same operations per element.
  static void update_range(float* __restrict pw, const float* __restrict gw, float* __restrict m,
                           float* __restrict v, int64_t n, const Scalars k) {
    for (int64_t i = 0; i < n; ++i) {
      const float g = gw[i];
      float w = pw[i];
      if (k.decayed) w = w * k.decay;
      const float mi = m[i] * k.b1 + k.one_minus_b1 * g;
      const float vi = v[i] * k.b2 + k.one_minus_b2 * g * g;
      const float denom = std::sqrt(vi) / k.bc2_sqrt + k.eps;
      m[i] = mi;
      v[i] = vi;
      pw[i] = w + k.neg_step_size * mi / denom;
    }
  }

  bool multi_tensor_on_cpu_;
};

}  // namespace

bool is_no_decay(const std::string& name) {
  if (name.find("bias") != std::string::npos) return true;
  // The module owning the parameter is the second-to-last path component.
  const auto last = name.rfind('.');
  if (last == std::string::npos) return false;
  const auto prev = name.rfind('.', last - 1);
  const std::string module = ascii_lower(name.substr(
      prev == std::string::npos ? 0 : prev + 1, last - (prev == std::string::npos ? 0 : prev + 1)));
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
  if (!c.fused) {
    return std::make_unique<torch::optim::AdamW>(std::move(groups), options(c.weight_decay));
  }
  return std::make_unique<FusedAdamW>(std::move(groups), options(c.weight_decay), c.multi_tensor);
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

namespace {

// The attention-mask tokens of a micro-batch: counted on the host for a host mask (collated
// batches), so that nothing waits for the device.
int64_t real_tokens(const models::ModelInputs& mb) {
  if (!mb.attention_mask.defined()) return mb.input_ids.numel();
  if (!mb.attention_mask.is_cpu()) return mb.attention_mask.sum().item<int64_t>();
  const auto m = mb.attention_mask.to(at::kDouble).contiguous();
  const double* p = m.data_ptr<double>();
  return static_cast<int64_t>(std::accumulate(p, p + m.numel(), 0.0));
}

}  // namespace

StepStats optimization_step(models::Model& model, torch::optim::AdamW& optimizer,
                            const std::vector<models::ModelInputs>& micro_batches,
                            const StepConfig& config) {
  if (micro_batches.empty()) throw std::invalid_argument("optimization_step: no micro-batches");
  model.train(config.train_mode);
  if (config.dropout_seed) at::manual_seed(*config.dropout_seed);
  models::zero_grad(model);
  StepStats stats;
  const double scale = 1.0 / static_cast<double>(micro_batches.size());
  // The losses stay on the device until the step has queued its backward passes and clipping,
  // then come to the host in one copy with the gradient norm: the step's only wait for the
  // device (under data parallelism, the statistics' all-reduce adds one).
  std::vector<at::Tensor> pending;
  for (size_t i = 0; i < micro_batches.size(); ++i) {
    const auto& mb = micro_batches[i];
    if (config.before_micro_batch) config.before_micro_batch(i, micro_batches.size());
    models::ForwardOptions fo;
    fo.packed = config.packed;
    fo.attention = config.attention;
    RECORD_USER_SCOPE("xlt::forward_backward");
    auto r = models::forward_backward(model, mb, scale, fo, /*read_loss=*/false);
    pending.push_back(r.loss_tensor.to(at::kDouble));
    stats.tokens += real_tokens(mb);
    stats.examples += mb.input_ids.size(0);
  }
  // Adds the pending losses in micro-batch order, as each was read before.
  auto add_losses = [&](const double* losses) {
    for (size_t i = 0; i < micro_batches.size(); ++i) stats.loss += losses[i] * scale;
  };
  if (config.after_backward) {
    add_losses(at::stack(pending).to(at::kCPU).data_ptr<double>());
    pending.clear();
    RECORD_USER_SCOPE("xlt::after_backward");  // gradient all-reduce under data parallelism
    config.after_backward(stats);
  }
  {
    RECORD_USER_SCOPE("xlt::clip_grad_norm");
    const auto grads = models::gradients(model);
    const bool on_host = grads.empty() || grads.front().is_cpu();
    auto norm = models::clip_gradients(grads, config.max_grad_norm, on_host);
    if (norm.defined()) pending.push_back(norm.to(at::kDouble));
    if (!pending.empty()) {
      const auto host = at::stack(pending).to(at::kCPU);
      const double* v = host.data_ptr<double>();
      if (!config.after_backward) add_losses(v);
      if (norm.defined()) stats.grad_norm = v[host.size(0) - 1];
    }
  }
  if (!std::isfinite(stats.grad_norm) || !std::isfinite(stats.loss)) {
    std::ostringstream o;
    o << "training diverged: gradient norm " << stats.grad_norm << ", loss " << stats.loss
      << " (try a lower --lr or a --max-grad-norm)";
    throw Error(o.str());
  }
  models::set_learning_rate(optimizer, config.lr);
  RECORD_USER_SCOPE("xlt::optimizer_step");
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
