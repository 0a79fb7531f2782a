// One optimisation step (see training_step.h). torch::optim::AdamW performs the same arithmetic
// as torch.optim.AdamW's single-tensor path (decoupled decay p *= 1 - lr*wd, bias-corrected
// moments), which the BERT fixture's adamw_* tensors check.
#include "xlt/models/training_step.h"

#include <torch/version.h>

#include <cmath>
#include <sstream>
#include <type_traits>

#include "xlt/core/error.h"

namespace xlt::models {

std::unique_ptr<torch::optim::AdamW> make_adamw(Model& model, const AdamWConfig& c) {
  torch::optim::AdamWOptions o(c.lr);
  o.betas(std::make_tuple(c.beta1, c.beta2)).eps(c.eps).weight_decay(c.weight_decay);
  return std::make_unique<torch::optim::AdamW>(model.parameters(), o);
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }
}

BackwardResult forward_backward(Model& model, const ModelInputs& inputs, double loss_scale,
                                const ForwardOptions& options, bool read_loss) {
  if (!inputs.labels.defined()) throw UsageError("forward_backward: inputs.labels is required");
  auto out = model.forward(inputs, options);
  auto loss = out.loss;
  if (loss_scale != 1.0) loss = loss * loss_scale;
  loss.backward();
  BackwardResult r;
  r.loss_tensor = out.loss.detach();
  if (read_loss) r.loss = r.loss_tensor.item<double>();
  r.logits = out.logits.detach();
  return r;
}

at::Tensor clip_gradients(const std::vector<at::Tensor>& grads, double max_norm,
                          bool host_decides) {
  at::NoGradGuard no_grad;
  if (grads.empty()) return {};
  // As torch.nn.utils.clip_grad_norm_: norm of the per-tensor norms, coefficient clamped to 1.
  // The foreach ops are one multi-tensor kernel per device on CUDA, the per-tensor loop on the
  // CPU.
  auto total = at::stack(at::_foreach_norm(grads, 2)).norm(2);
  if (max_norm <= 0) return total;
  // The float32 coefficient torch computes.
  const auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  if (host_decides) {
    const double c = coef.item<double>();
    if (c < 1.0) at::_foreach_mul_(grads, c);  // x * 1 = x: an unclipped step skips the pass
    return total;
  }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  at::_foreach_mul_(grads, coef);  // torch's own call (clip_grad_norm_'s foreach path)
#else  // no Tensor overload before 2.1 (a tensor would convert to a one-element list)
  for (const auto& g : grads) g.mul_(coef);  // the same products, one tensor at a time
#endif
  return total;
}

std::vector<at::Tensor> gradients(const Model& model) {
  std::vector<at::Tensor> grads;
  for (const auto& p : model.parameters()) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  return grads;
}

double clip_grad_norm(Model& model, double max_norm) {
  const auto total = clip_gradients(gradients(model), max_norm, /*host_decides=*/true);
  return total.defined() ? total.item<double>() : 0.0;
}

namespace {

// libtorch 1.13 keys optimiser state by the printed TensorImpl address, 2.x by the pointer.
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

}  // namespace

AdamWMoments adamw_moments(torch::optim::AdamW& optimizer, const at::Tensor& param) {
  auto& state = optimizer.state();
  using Key = typename std::decay_t<decltype(state)>::key_type;
  auto it = state.find(state_key<Key>(param));
  AdamWMoments m;
  if (it == state.end()) return m;
  auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
  m.exp_avg = s.exp_avg();
  m.exp_avg_sq = s.exp_avg_sq();
  m.step = s.step();
  return m;
}

void zero_grad(Model& model) {
  for (auto& p : model.parameters()) p.mutable_grad().reset();
}

StepResult train_step(Model& model, torch::optim::Optimizer& optimizer, const ModelInputs& inputs,
                      const StepOptions& options) {
  zero_grad(model);
  auto fb = forward_backward(model, inputs);
  StepResult r;
  r.loss = fb.loss;
  r.logits = fb.logits;
  r.grad_norm = clip_grad_norm(model, options.max_grad_norm);
  if (!std::isfinite(r.grad_norm)) {
    throw Error("training diverged: gradient norm is " + std::to_string(r.grad_norm) + " (loss " +
                std::to_string(r.loss) + ")");
  }
  optimizer.step();
  return r;
}

}  // namespace xlt::models
