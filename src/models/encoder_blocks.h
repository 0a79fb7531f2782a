// The BERT-family encoder shared by BERT and XLM-R (HF's BertModel / RobertaModel): embeddings,
// post-LayerNorm encoder layers, optional pooler. Module and parameter names are HF's, so that
// `bert.encoder.layer.0.attention.self.query.weight` is literally the path of that tensor here.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "models/layers.h"
#include "xlt/models/model.h"

namespace xlt::models {

enum class PositionScheme {
  kAbsolute,  // BERT: 0..T-1 for every row
  kRoberta,   // RoBERTa: padding_idx + 1 + rank among non-padding tokens; padding -> padding_idx
};

// The longest input (special tokens included) the position table covers: every row of it for
// BERT; for RoBERTa, the rows after padding_idx (positions start at padding_idx + 1).
int64_t encoder_max_length(const io::ModelConfig& config, PositionScheme scheme);

// HF's create_position_ids_from_input_ids: cumsum(ids != pad) * (ids != pad) + pad.
at::Tensor roberta_position_ids(const at::Tensor& input_ids, int64_t padding_idx);

class EncoderEmbeddingsImpl : public torch::nn::Module {
 public:
  EncoderEmbeddingsImpl(const io::ModelConfig& config, PositionScheme scheme);
  // [B, T, H]; with an active packing, [N, H] for the real tokens only (positions are still
  // those of the padded layout).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& token_type_ids,
                     const Packing& packing = {});

  Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  LayerNorm norm{nullptr};  // registered as HF's capitalised "LayerNorm" (the checkpoint key)

 private:
  PositionScheme scheme_;
  int64_t pad_, max_positions_, max_length_;
  double dropout_;
};
TORCH_MODULE(EncoderEmbeddings);

// One multi-head self-attention: HF's BertSelfAttention (eager path of transformers 4.40).
class EncoderSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit EncoderSelfAttentionImpl(const io::ModelConfig& config);
  // h [B, T, H] (or [N, H] with an active packing), mask_bias [B, 1, 1, T] additive. Returns
  // context shaped like h; fills `probs` [B, A, T, T] when need_probs.
  at::Tensor forward(const at::Tensor& h, const at::Tensor& mask_bias, bool need_probs,
                     at::Tensor* probs, const Packing& packing = {});

  Linear query{nullptr}, key{nullptr}, value{nullptr};

 private:
  // qkv [B, T, 3H] -> context [B, T, H] for additive mask_bias [B, 1, 1, T] (undefined: no
  // mask); `fused`: through sdpa() unless probabilities are needed.
  at::Tensor attend(const at::Tensor& qkv, const at::Tensor& mask_bias, bool need_probs,
                    at::Tensor* probs, bool fused);

  int64_t heads_, head_dim_;
  double dropout_;
};
TORCH_MODULE(EncoderSelfAttention);

// dense -> dropout -> LayerNorm(x + residual): HF's BertSelfOutput and BertOutput.
class ResidualOutputImpl : public torch::nn::Module {
 public:
  ResidualOutputImpl(int64_t in, int64_t out, double eps, double dropout);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& residual);
  Linear dense{nullptr};
  LayerNorm norm{nullptr};  // registered as "LayerNorm"

 private:
  double dropout_;
};
TORCH_MODULE(ResidualOutput);

class EncoderAttentionImpl : public torch::nn::Module {
 public:
  explicit EncoderAttentionImpl(const io::ModelConfig& config);
  EncoderSelfAttention self{nullptr};
  ResidualOutput output{nullptr};
};
TORCH_MODULE(EncoderAttention);

class IntermediateImpl : public torch::nn::Module {
 public:
  explicit IntermediateImpl(const io::ModelConfig& config);
  at::Tensor forward(const at::Tensor& x) { return activate(dense->forward(x), act_); }
  Linear dense{nullptr};

 private:
  Activation act_;
};
TORCH_MODULE(Intermediate);

class EncoderLayerImpl : public torch::nn::Module {
 public:
  explicit EncoderLayerImpl(const io::ModelConfig& config);
  at::Tensor forward(const at::Tensor& h, const at::Tensor& mask_bias, bool need_probs,
                     at::Tensor* probs, const Packing& packing = {});
  EncoderAttention attention{nullptr};
  Intermediate intermediate{nullptr};
  ResidualOutput output{nullptr};
};
TORCH_MODULE(EncoderLayer);

class EncoderStackImpl : public torch::nn::Module {
 public:
  explicit EncoderStackImpl(const io::ModelConfig& config);
  torch::nn::ModuleList layer{nullptr};
  std::vector<EncoderLayer> layers;  // the same modules, typed
};
TORCH_MODULE(EncoderStack);

class PoolerImpl : public torch::nn::Module {
 public:
  explicit PoolerImpl(const io::ModelConfig& config);
  at::Tensor forward(const at::Tensor& h) { return at::tanh(dense->forward(h.select(1, 0))); }
  Linear dense{nullptr};
};
TORCH_MODULE(Pooler);

// HF's BertModel / RobertaModel.
class TransformerEncoderImpl : public torch::nn::Module {
 public:
  TransformerEncoderImpl(const io::ModelConfig& config, PositionScheme scheme, bool add_pooler);
  // Fills last_hidden_state, pooler_output (when there is a pooler), hidden_states, attentions.
  ModelOutputs forward(const ModelInputs& inputs, const ForwardOptions& options);

  EncoderEmbeddings embeddings{nullptr};
  EncoderStack encoder{nullptr};
  Pooler pooler{nullptr};

 private:
  io::ModelConfig config_;
};
TORCH_MODULE(TransformerEncoder);

// Dropout probability of a classification head: classifier_dropout, else hidden_dropout_prob.
double classifier_dropout(const io::ModelConfig& config);

}  // namespace xlt::models
