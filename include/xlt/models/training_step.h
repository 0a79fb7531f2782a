// One optimisation step, shared by the parity tests and the finetune command: AdamW exactly as
// torch.optim.AdamW with a single parameter group (weight decay on every parameter, biases and
// LayerNorm included, as the HF reference was computed), gradient computation and clipping.
//
// Usage:
//   auto opt = xlt::models::make_adamw(*model);  // AdamWConfig: lr 2e-5, wd 0.01
//   model->train();
//   auto r = xlt::models::train_step(*model, *opt, batch);
#pragma once

#include <torch/optim/adamw.h>

#include <memory>
#include <vector>

#include "xlt/models/model.h"

namespace xlt::models {

struct AdamWConfig {
  double lr = 2e-5;
  double weight_decay = 0.01;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

// AdamW over model.parameters() in one group.
std::unique_ptr<torch::optim::AdamW> make_adamw(Model& model, const AdamWConfig& config = {});

// Sets the learning rate of every parameter group (for schedules).
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Forward (in the model's current mode) with labels, then backward of loss * loss_scale
// (gradients accumulate; scale 1/k for k accumulation steps). Returns the unscaled loss and the
// logits, both detached. Throws UsageError when inputs.labels is undefined.
// With read_loss = false the loss is not read on the host (which waits for the device): `loss`
// stays 0 and `loss_tensor` holds it, as it always does.
struct BackwardResult {
  double loss = 0;
  at::Tensor loss_tensor;  // the unscaled loss, detached, on the model's device
  at::Tensor logits;
};
BackwardResult forward_backward(Model& model, const ModelInputs& inputs, double loss_scale = 1.0,
                                const ForwardOptions& options = {}, bool read_loss = true);

// Clips the global L2 norm of all gradients to max_norm (as torch.nn.utils.clip_grad_norm_);
// returns the norm before clipping. max_norm <= 0 only measures.
double clip_grad_norm(Model& model, double max_norm);

// The gradients the last backward left on model's parameters (undefined ones skipped).
std::vector<at::Tensor> gradients(const Model& model);

// clip_grad_norm on the given gradients, returning the norm before clipping as a 0-dim float
// tensor on their device (undefined for none) without reading anything on the host unless
// `host_decides`: then the clipping coefficient is read to skip the multiplication when it is 1
// (what the CPU does, where the read costs nothing). Off the host the gradients are always
// multiplied by the clamped coefficient, which changes no bit when it is 1, so that a training
// step queues its clipping without waiting for the device.
at::Tensor clip_gradients(const std::vector<at::Tensor>& grads, double max_norm, bool host_decides);

// Drops every parameter's gradient (torch's zero_grad(set_to_none=True), what HF's Trainer
// does): the next backward stores its gradients instead of adding them to zeros, which saves
// writing and re-reading every gradient each step (~2.8 GB for mBERT). A parameter the next
// backward does not reach has no gradient, and AdamW leaves it alone, as torch's does.
void zero_grad(Model& model);

// AdamW's per-parameter state after at least one step (undefined tensors before): for tests and
// optimiser checkpoints. Works with libtorch 1.13 (string keys) and 2.x (pointer keys).
struct AdamWMoments {
  at::Tensor exp_avg, exp_avg_sq;
  int64_t step = 0;
};
AdamWMoments adamw_moments(torch::optim::AdamW& optimizer, const at::Tensor& param);

struct StepOptions {
  double max_grad_norm = 0;  // 0 = no clipping
};
struct StepResult {
  double loss = 0;
  double grad_norm = 0;  // before clipping
  at::Tensor logits;
};
// zero_grad + forward_backward + clip + optimizer.step().
StepResult train_step(Model& model, torch::optim::Optimizer& optimizer, const ModelInputs& inputs,
                      const StepOptions& options = {});

}  // namespace xlt::models
