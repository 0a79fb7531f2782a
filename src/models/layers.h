// Building blocks shared by every architecture: Linear / LayerNorm / Embedding modules whose
// parameters are named exactly as torch.nn's (`weight`, `bias`) but are allocated uninitialised
// (the loader or an explicit HF-style init fills them, so loading a 700 MB model does not first
// draw 178M random numbers), activation lookup, additive attention masks, the HF weight
// initialiser and the classification loss.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xlt/io/config.h"
#include "xlt/models/model.h"

namespace xlt::models {

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  at::Tensor forward(const at::Tensor& x) const { return at::linear(x, weight, bias); }
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
};
TORCH_MODULE(Linear);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor weight, bias;
  int64_t dim;
  double eps;
};
TORCH_MODULE(LayerNorm);

class EmbeddingImpl : public torch::nn::Module {
 public:
  // padding_idx < 0 = none. As torch.nn.Embedding, the padding row gets no gradient.
  EmbeddingImpl(int64_t num, int64_t dim, int64_t padding_idx = -1);
  at::Tensor forward(const at::Tensor& ids) const;
  at::Tensor weight;  // [num, dim]
  int64_t padding_idx;
};
TORCH_MODULE(Embedding);

// HF's ACT2FN for the names these configs use: gelu (erf), gelu_new / gelu_pytorch_tanh (tanh
// approximation), relu. Throws ConfigError for others.
enum class Activation { kGelu, kGeluTanh, kRelu };
Activation parse_activation(const std::string& name);
at::Tensor activate(const at::Tensor& x, Activation act);

// Inverted dropout (zero with probability p, survivors scaled by 1 / (1 - p)), identity unless
// `train`. On CPU the mask comes from a counter-based hash filled in parallel, seeded by one draw
// from libtorch's default CPU generator (so at::manual_seed still makes runs reproducible):
// ATen's CPU bernoulli_ draws one element at a time under a lock, which cost ~6% of a BERT-base
// training step. Other devices use at::dropout.
at::Tensor dropout(const at::Tensor& x, double p, bool train);

// How many distinct threads at::parallel_for uses for a large range when called from xlt's own
// library code, which is where the build flags matter (it is parallel only under OpenMP when
// libtorch uses OpenMP): 1 means xlt's parallel kernels run serially. For tests and diagnostics.
int parallel_for_threads();

// at::matmul(a, b) for a [..., m, k] and b [..., k, n] with the same batch dimensions, as
// attention multiplies queries by keys and probabilities by values. With libtorch 1.13 on the
// CPU in float32 (and a CBLAS in the process) the products run as one parallel loop of sgemm
// calls straight on the inputs' strides (transposed and head-permuted views included) instead of
// bmm's serial per-matrix dispatch; its backward is two such loops (at::matmul under
// create_graph, so second derivatives stay differentiable).
// Elsewhere, and for broadcasting or large matrices, it is at::matmul.
at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b);
// Whether batched_matmul takes its own loop for these operands (tests, benchmarks).
bool batched_matmul_loops(const at::Tensor& a, const at::Tensor& b);
// Turns the loop off (at::matmul everywhere) or back on, process-wide; returns the previous
// setting. For benchmarks that compare both in one run.
bool set_batched_matmul_loop(bool enabled);

// torch.finfo(dtype).min, the value HF adds for masked positions.
double finfo_min(c10::ScalarType dtype);

// HF's extended padding mask: (1 - mask[:, None, None, :]) * finfo(dtype).min, [B, 1, 1, T].
at::Tensor padding_mask_bias(const at::Tensor& attention_mask, c10::ScalarType dtype);

// HF's 4-d causal mask (AttentionMaskConverter.to_4d): 0 where query t may see key s (s <= t and
// key not padding), finfo.min elsewhere, [B, 1, T, T].
at::Tensor causal_mask_bias(const at::Tensor& attention_mask, int64_t batch, int64_t seq,
                            c10::ScalarType dtype, c10::Device device);

// _init_weights of HF's BERT/RoBERTa/XGLM: Linear weight ~ N(0, std), bias 0; Embedding ~
// N(0, std) with the padding row zeroed; LayerNorm weight 1, bias 0. Applied to `module` and all
// its descendants, in registration order, with draws from `gen`.
void hf_init(torch::nn::Module& module, double std, at::Generator& gen);

// Classification loss as HF's *ForSequenceClassification: problem_type from the config, or
// inferred (num_labels == 1 -> regression MSE; integer labels -> cross-entropy; else
// multi-label BCE with logits).
at::Tensor sequence_classification_loss(const at::Tensor& logits, const at::Tensor& labels,
                                        const io::ModelConfig& config);

// Checks class-id targets: integers in [0, classes) or -100 (cross-entropy's ignore_index), else
// DataError naming `what` ("labels") and the bad value. Host tensors are read in place (every
// value); device tensors by their minimum and maximum, in one copy.
void check_class_ids(const at::Tensor& ids, int64_t classes, const std::string& what);

// Checks input_ids is int64 [B, T] (T >= 1) with ids in [0, vocab) and the mask/token types (if
// given) match its shape, token types in [0, type_vocab_size); throws DataError otherwise. Called
// on the caller's tensors before they move to the model's device: host tensors are checked on the
// host, without a device round trip.
void check_inputs(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                  const at::Tensor& token_type_ids, int64_t vocab_size,
                  int64_t type_vocab_size = 0);

// "[2, 3]": a shape as messages show it.
std::string shape_str(at::IntArrayRef shape);

// The smallest and largest value of the non-empty integer tensor `t`: read in place where `t` is
// on the CPU, else with one device-to-host copy of both.
std::pair<int64_t, int64_t> value_range(const at::Tensor& t);

// `t` on `device`. A CPU tensor goes to a CUDA device through pinned memory and an asynchronous
// copy, ordered on the current stream before the kernels that read it, so that a forward queues
// its work without waiting for the device (a plain copy from pageable memory synchronises the
// stream, and a step does several). Undefined stays undefined; on `device` already: `t` itself.
// A tensor that is pinned already is read by the copy as it runs: the caller must not change it
// before the stream has reached the copy.
at::Tensor to_device(const at::Tensor& t, c10::Device device);

// How a packed batch's attention runs in one call over all its sequences: PyTorch's
// variable-length CUDA kernels (flash attention for 16-bit activations, memory-efficient for
// float32), or a per-sequence loop of the eager arithmetic that computes the same on any device
// (for tests: `--attention varlen` on the CPU). kNone: per length group (Packing::groups).
enum class VarlenKernel { kNone, kFlash, kEfficient, kReference };

// The real-token layout of a padded batch. Token-wise layers run on the N real tokens, [N, C];
// attention runs per group of sequences of similar length, each on its own compact padded
// layout, so that neither the projections nor the T x T scores compute on padding the batch's
// longest sequence forces on the rest (random batches pad ~2.3x; grouped, the scores pad <= 1.3x).
// `index` lists the flat positions b * T + t of the real tokens, rows ordered longest first
// (tokens in order within a row), so that each group is a contiguous slice of the packed rows.
struct Packing {
  struct Group {
    int64_t offset = 0, tokens = 0;  // the group's slice of the packed rows
    int64_t rows = 0, seq = 0;       // its compact layout [rows, seq], seq = its longest length
    at::Tensor slots;  // int64 [tokens]: positions r * seq + s of its tokens; undefined = dense
    at::Tensor mask;   // [rows, seq] 0/1 in the model's mask dtype: the compact attention mask
    at::Tensor bias;   // the additive attention bias the model derives from `mask`
  };
  at::Tensor index;  // int64 [N] on the model's device; undefined = run padded
  int64_t batch = 0, seq = 0;
  std::vector<Group> groups;  // empty when `varlen` attends over the whole stream at once
  // Sequence boundaries in the packed rows: sequence i is rows [offsets[i], offsets[i + 1]).
  std::vector<int64_t> offsets;
  int64_t max_seqlen = 0;
  at::Tensor cu_seqlens;  // int32 copy of `offsets` on the device (varlen kernels only)
  // Attention through scaled_dot_product_attention instead of the eager arithmetic (set by the
  // model's forward from ForwardOptions::attention, packed or not).
  bool sdpa = false;
  // Attention in one variable-length call per layer over the packed rows instead of per group.
  VarlenKernel varlen = VarlenKernel::kNone;
  bool active() const { return index.defined(); }
  at::Tensor pack(const at::Tensor& padded) const;  // [B, T, C] -> [N, C]
  at::Tensor pad(const at::Tensor& packed) const;   // [N, C] -> [B, T, C], zeros at padding
  // [N, C] -> [rows, seq, C] per group (zeros at its padding), and back: [rows, seq, C] per
  // group -> [N, C].
  std::vector<at::Tensor> pad_groups(const at::Tensor& packed) const;
  at::Tensor pack_groups(const std::vector<at::Tensor>& grouped) const;
};

// A Packing for `attention_mask` [B, T] when packed execution applies and saves work: the mask
// holds only 0/1, has padding and no row without a real token; with first_token_real, every
// row's first token must be real. Otherwise an inactive Packing (the caller runs padded). Reads
// the mask on the host: pass the caller's host mask, not its device copy, to avoid a device
// sync. The plan's tensors go to `device` (default: the mask's) in one asynchronous copy. With a
// `varlen` kernel the plan has no length groups (attention needs only the sequence offsets).
Packing plan_packing(const at::Tensor& attention_mask, bool first_token_real,
                     VarlenKernel varlen = VarlenKernel::kNone,
                     std::optional<c10::Device> device = std::nullopt);

// The variable-length kernel a packed forward with `opt` uses on `device` for activations of
// `dtype` (autocast's where it is on) and heads of `head_dim`: with kAuto or kVarlen on CUDA and
// PyTorch 2.x the first kernel that qualifies (head_dim a multiple of 8, at most 256) and passes
// a one-time check against the eager arithmetic on this device, dtype and head size (cached);
// kVarlen elsewhere: kReference. kNone where none applies (kVarlen on CUDA then warns once and
// runs per length group).
VarlenKernel choose_varlen(const ForwardOptions& opt, c10::Device device, c10::ScalarType dtype,
                           int64_t head_dim);
const char* varlen_kernel_name(VarlenKernel kernel);

// The dtype attention inputs have on `device` for weights of `weight_dtype`: autocast's on CUDA
// where it is enabled (--bf16 training), else the weights'.
c10::ScalarType activation_dtype(c10::ScalarType weight_dtype, c10::Device device);

// Context [N, A * D] from a fused projection `qkv` [N, 3 * A * D] (query, key, value side by side;
// rows of `p`'s sequences back to back) with A = `heads`, each sequence attending within itself
// only (`causal`: to itself and earlier positions), scale 1/sqrt(D), dropout on the
// probabilities; through p.varlen's kernel.
at::Tensor varlen_attention(const at::Tensor& qkv, int64_t heads, const Packing& p, double dropout,
                            bool causal);

// Whether a forward with these options on `device` computes attention through
// scaled_dot_product_attention.
bool use_sdpa(const ForwardOptions& opt, c10::Device device);

// `bias` with every query row that blocks all keys (finfo.min throughout) set to zero.
at::Tensor unmask_unattended(const at::Tensor& bias);

// Context [B, A, T, D] of q, k, v [B, A, T, D] through scaled_dot_product_attention with the
// default 1/sqrt(D) scale (HF's for every supported model): additive `bias` (undefined = none;
// broadcastable to [B, A, T, T], the query's dtype), dropout on the probabilities, `causal`
// only without a bias. PyTorch 2.x only (sdpa_available()).
at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                const at::Tensor& bias, double dropout, bool causal);

// Projects x with the concatenation of several Linear layers' weights in one GEMM (Q/K/V: one
// [N, 3H] product instead of three [N, H] ones); the outputs side by side in the last dimension.
// Gradients flow to each layer's own parameters, whose names stay HF's.
at::Tensor fused_linear(const at::Tensor& x, std::initializer_list<const LinearImpl*> layers);

// [B, T] mask of ones when `attention_mask` is undefined, else the mask on input_ids' device.
at::Tensor mask_or_ones(const at::Tensor& attention_mask, const at::Tensor& input_ids);

}  // namespace xlt::models
