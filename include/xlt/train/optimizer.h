// The optimisation pieces of fine-tuning with Hugging Face Trainer semantics: AdamW parameter
// groups (no weight decay on biases and LayerNorm parameters), the linear warm-up/decay learning
// rate schedule (get_linear_schedule_with_warmup), one optimisation step over gradient-accumulated
// micro-batches, and AdamW state as named tensors (for resumable checkpoints).
//
// Usage:
//   xlt::train::OptimizerConfig oc;                      // lr 2e-5, wd 0.01, HF grouping
//   auto opt = xlt::train::make_optimizer(*model, oc);
//   xlt::train::StepConfig sc;
//   sc.lr = 2e-5 * xlt::train::linear_schedule_factor(step, warmup, total);
//   auto stats = xlt::train::optimization_step(*model, *opt, {batch}, sc);
//
// `xlt finetune` and the AdamW parity test both go through optimization_step; the test selects a
// single parameter group, no clipping and eval mode through the same configuration structs.
#pragma once

#include <torch/optim/adamw.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xlt/models/model.h"

namespace xlt::train {

enum class ParamGrouping {
  // Hugging Face Trainer: weight decay on every parameter except biases and LayerNorm parameters.
  kHfNoDecay,
  // One group, weight decay on all parameters (plain torch.optim.AdamW(model.parameters())).
  kSingleGroup,
};

// True for parameters Hugging Face's Trainer excludes from weight decay: names containing "bias",
// and parameters of LayerNorm modules ("...LayerNorm.weight", "...layer_norm.weight",
// "...layernorm.weight"; HF decides by module type, xlt's module names carry the same information).
bool is_no_decay(const std::string& name);

struct OptimizerConfig {
  double lr = 2e-5;
  double weight_decay = 0.01;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  ParamGrouping grouping = ParamGrouping::kHfNoDecay;
  // Fused steps with libtorch's AdamW state and checkpoints; false = libtorch's per-op step.
  // CPU float32: one pass per parameter in torch::optim::AdamW's arithmetic. Other devices with
  // PyTorch 2.x: PyTorch's multi-tensor kernel (_fused_adamw_, what torch.optim.AdamW(fused=True)
  // runs): one launch per group where libtorch's step launches ~6 kernels per parameter; its
  // rounding differs from libtorch's by ~1e-7 relative. libtorch 1.13 there: libtorch's step.
  bool fused = true;
  // The multi-tensor kernel on CPU tensors too (PyTorch >= 2.4 has a CPU one): how the GPU
  // path's arithmetic is tested on a machine without a GPU. Ignored on libtorch 1.13.
  bool multi_tensor = false;
};

// AdamW over the model's parameters. kHfNoDecay: group 0 = decayed parameters, group 1 = the
// no-decay ones (weight_decay 0), each in model order; a group left empty is not created.
std::unique_ptr<torch::optim::AdamW> make_optimizer(models::Model& model,
                                                    const OptimizerConfig& config);

// Hugging Face get_linear_schedule_with_warmup's multiplier for the learning rate used by the
// optimizer step with 0-based index `step`: step / max(1, warmup) during warm-up, then
// max(0, (total - step) / max(1, total - warmup)).
double linear_schedule_factor(int64_t step, int64_t warmup_steps, int64_t total_steps);

// HF TrainingArguments.get_warmup_steps: warmup_steps when > 0, else ceil(total * ratio).
int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps);

struct StepStats;

struct StepConfig {
  double lr = 2e-5;          // learning rate for this step (schedule already applied)
  double max_grad_norm = 1;  // global L2 clipping; <= 0 = none (the norm is still measured)
  bool train_mode = true;    // dropout on (model.train()); false = eval mode
  bool packed = true;        // unpadded execution (models::ForwardOptions::packed)
  models::ForwardOptions::Attention attention = models::ForwardOptions::Attention::kAuto;
  // Seeds libtorch's default generator before the forward passes so that dropout masks depend
  // only on this value (resume reproduces them). Unset = generator left as it is.
  std::optional<uint64_t> dropout_seed;
  // Called after the backward passes and before clipping (data-parallel training averages the
  // gradients and the step statistics over ranks here). Unset = nothing.
  std::function<void(StepStats&)> after_backward;
  // Called before each micro-batch's forward/backward with its index and the number of
  // micro-batches (data-parallel training arms its gradient hooks for the last one). Unset =
  // nothing.
  std::function<void(size_t index, size_t count)> before_micro_batch;
};

struct StepStats {
  double loss = 0;       // mean over micro-batches of each micro-batch's mean loss
  double grad_norm = 0;  // before clipping
  int64_t tokens = 0;    // real (attention-mask) tokens in all micro-batches
  int64_t examples = 0;
};

// zero_grad; for each micro-batch forward + backward of loss / micro_batches.size(); clip the
// global gradient norm; set the learning rate; AdamW step. Inputs need labels. Throws
// xlt::Error when the gradient norm is not finite (divergence), before the weights change.
StepStats optimization_step(models::Model& model, torch::optim::AdamW& optimizer,
                            const std::vector<models::ModelInputs>& micro_batches,
                            const StepConfig& config);

// AdamW state as named CPU tensors: "exp_avg.<param>", "exp_avg_sq.<param>" (float32) and
// "step.<param>" (int64 [1]) for every parameter that has state.
std::map<std::string, at::Tensor> optimizer_state_tensors(const models::Model& model,
                                                          torch::optim::AdamW& optimizer);
// Restores what optimizer_state_tensors returned (copied, moved to each parameter's device).
// Throws CheckpointError naming missing or misshapen entries; `source` names the file.
void load_optimizer_state(models::Model& model, torch::optim::AdamW& optimizer,
                          const std::map<std::string, at::Tensor>& tensors,
                          const std::string& source);

}  // namespace xlt::train
