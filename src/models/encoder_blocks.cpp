// The BERT-family encoder shared by BERT and XLM-R (see encoder_blocks.h). The operation order
// follows transformers 4.40's eager BertSelfAttention / BertEmbeddings so that float32 results
// agree with HF to ~1e-6 and gradients to ~1e-6 relative.
#include "models/encoder_blocks.h"

#include <cmath>

#include "xlt/core/error.h"

namespace xlt::models {

at::Tensor roberta_position_ids(const at::Tensor& input_ids, int64_t padding_idx) {
  auto mask = input_ids.ne(padding_idx).to(at::kInt);
  auto incremental = at::cumsum(mask, 1).to(at::kInt) * mask;
  return incremental.to(at::kLong) + padding_idx;
}

double classifier_dropout(const io::ModelConfig& config) {
  return config.classifier_dropout >= 0 ? config.classifier_dropout : config.hidden_dropout_prob;
}

int64_t encoder_max_length(const io::ModelConfig& c, PositionScheme scheme) {
  return scheme == PositionScheme::kRoberta ? c.max_position_embeddings - c.pad_token_id - 1
                                            : c.max_position_embeddings;
}

EncoderEmbeddingsImpl::EncoderEmbeddingsImpl(const io::ModelConfig& c, PositionScheme scheme)
    : scheme_(scheme),
      pad_(c.pad_token_id),
      max_positions_(c.max_position_embeddings),
      max_length_(encoder_max_length(c, scheme)),
      dropout_(c.hidden_dropout_prob) {
  if (c.position_embedding_type != "absolute") {
    throw ConfigError("position_embedding_type '" + c.position_embedding_type +
                      "' is not supported (only 'absolute')");
  }
  word_embeddings =
      register_module("word_embeddings", Embedding(c.vocab_size, c.hidden_size, c.pad_token_id));
  // RoBERTa's position table has padding_idx too (its padding row gets no gradient).
  position_embeddings = register_module(
      "position_embeddings", Embedding(c.max_position_embeddings, c.hidden_size,
                                       scheme == PositionScheme::kRoberta ? c.pad_token_id : -1));
  token_type_embeddings =
      register_module("token_type_embeddings", Embedding(c.type_vocab_size, c.hidden_size));
  norm = register_module("LayerNorm", LayerNorm(c.hidden_size, c.layer_norm_eps));
}

at::Tensor EncoderEmbeddingsImpl::forward(const at::Tensor& input_ids,
                                          const at::Tensor& token_type_ids,
                                          const Packing& packing) {
  const int64_t seq = input_ids.size(1);
  if (seq > max_length_) {
    throw DataError("input_ids: sequence length " + std::to_string(seq) +
                    (scheme_ == PositionScheme::kRoberta
                         ? " exceeds what max_position_embeddings " +
                               std::to_string(max_positions_) + " allows (" +
                               std::to_string(max_length_) +
                               " tokens, positions start at pad_token_id + 1)"
                         : " exceeds max_position_embeddings " + std::to_string(max_positions_)));
  }
  at::Tensor positions;
  if (scheme_ == PositionScheme::kRoberta) {
    positions = roberta_position_ids(input_ids, pad_);
  } else {
    positions = at::arange(seq, input_ids.options().dtype(at::kLong)).unsqueeze(0);
  }
  at::Tensor types = token_type_ids;
  if (!types.defined()) types = at::zeros_like(input_ids, input_ids.options().dtype(at::kLong));
  at::Tensor ids = input_ids;
  types = types.to(at::kLong);
  if (packing.active()) {
    auto flat = [&](const at::Tensor& x) {
      return x.expand_as(input_ids).reshape({-1}).index_select(0, packing.index);
    };
    ids = flat(ids);
    types = flat(types);
    positions = flat(positions);
  }
  auto h = word_embeddings->forward(ids) + token_type_embeddings->forward(types);
  h = h + position_embeddings->forward(positions);
  h = norm->forward(h);
  return models::dropout(h, dropout_, is_training());
}

EncoderSelfAttentionImpl::EncoderSelfAttentionImpl(const io::ModelConfig& c)
    : heads_(c.num_attention_heads),
      head_dim_(c.hidden_size / c.num_attention_heads),
      dropout_(c.attention_probs_dropout_prob) {
  query = register_module("query", Linear(c.hidden_size, c.hidden_size));
  key = register_module("key", Linear(c.hidden_size, c.hidden_size));
  value = register_module("value", Linear(c.hidden_size, c.hidden_size));
}

at::Tensor EncoderSelfAttentionImpl::attend(const at::Tensor& qkv, const at::Tensor& mask_bias,
                                            bool need_probs, at::Tensor* probs, bool fused) {
  const int64_t b = qkv.size(0), t = qkv.size(1);
  auto parts = qkv.split(heads_ * head_dim_, -1);
  auto split = [&](const at::Tensor& x) {
    return x.reshape({b, t, heads_, head_dim_}).permute({0, 2, 1, 3});
  };
  auto q = split(parts[0]);
  auto k = split(parts[1]);
  auto v = split(parts[2]);
  if (fused && !need_probs) {
    const double p = is_training() ? dropout_ : 0.0;
    return sdpa(q, k, v, mask_bias, p, false)
        .permute({0, 2, 1, 3})
        .reshape({b, t, heads_ * head_dim_});
  }
  // HF divides the scores (not the query) by sqrt(head_dim), then adds the mask.
  auto scores = batched_matmul(q, k.transpose(-1, -2));
  scores.div_(std::sqrt(static_cast<double>(head_dim_)));
  if (mask_bias.defined()) scores.add_(mask_bias);
  auto p = at::softmax(scores, -1);
  if (need_probs && probs) *probs = p;
  auto ctx = batched_matmul(models::dropout(p, dropout_, is_training()), v);
  return ctx.permute({0, 2, 1, 3}).reshape({b, t, heads_ * head_dim_});
}

at::Tensor EncoderSelfAttentionImpl::forward(const at::Tensor& h, const at::Tensor& mask_bias,
                                             bool need_probs, at::Tensor* probs,
                                             const Packing& packing) {
  auto qkv = fused_linear(h, {query.get(), key.get(), value.get()});
  if (!packing.active()) return attend(qkv, mask_bias, need_probs, probs, packing.sdpa);
  if (packing.varlen != VarlenKernel::kNone) {
    return varlen_attention(qkv, heads_, packing, is_training() ? dropout_ : 0.0,
                            /*causal=*/false);
  }
  // Projections ran on the real tokens; attention per length group, on its compact layout,
  // whose masked scores make its padding contribute exactly zero.
  std::vector<at::Tensor> ctx;
  auto grouped = packing.pad_groups(qkv);
  for (size_t g = 0; g < packing.groups.size(); ++g) {
    const auto& gr = packing.groups[g];
    // A group without padding needs no mask (the fused kernels are fastest without one).
    const bool dense = packing.sdpa && !gr.slots.defined();
    ctx.push_back(attend(grouped[g], dense ? at::Tensor() : gr.bias, false, nullptr, packing.sdpa));
    grouped[g].reset();  // without autograd its padded copy is freed before the next group's
  }
  return packing.pack_groups(ctx);
}

ResidualOutputImpl::ResidualOutputImpl(int64_t in, int64_t out, double eps, double dropout)
    : dropout_(dropout) {
  dense = register_module("dense", Linear(in, out));
  norm = register_module("LayerNorm", LayerNorm(out, eps));
}

at::Tensor ResidualOutputImpl::forward(const at::Tensor& x, const at::Tensor& residual) {
  auto y = models::dropout(dense->forward(x), dropout_, is_training());
  return norm->forward(y + residual);
}

EncoderAttentionImpl::EncoderAttentionImpl(const io::ModelConfig& c) {
  self = register_module("self", EncoderSelfAttention(c));
  output = register_module("output", ResidualOutput(c.hidden_size, c.hidden_size, c.layer_norm_eps,
                                                    c.hidden_dropout_prob));
}

IntermediateImpl::IntermediateImpl(const io::ModelConfig& c)
    : act_(parse_activation(c.hidden_act)) {
  dense = register_module("dense", Linear(c.hidden_size, c.intermediate_size));
}

EncoderLayerImpl::EncoderLayerImpl(const io::ModelConfig& c) {
  attention = register_module("attention", EncoderAttention(c));
  intermediate = register_module("intermediate", Intermediate(c));
  output = register_module("output", ResidualOutput(c.intermediate_size, c.hidden_size,
                                                    c.layer_norm_eps, c.hidden_dropout_prob));
}

at::Tensor EncoderLayerImpl::forward(const at::Tensor& h, const at::Tensor& mask_bias,
                                     bool need_probs, at::Tensor* probs, const Packing& packing) {
  auto ctx = attention->self->forward(h, mask_bias, need_probs, probs, packing);
  auto a = attention->output->forward(ctx, h);
  return output->forward(intermediate->forward(a), a);
}

EncoderStackImpl::EncoderStackImpl(const io::ModelConfig& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers.emplace_back(c);
    layer->push_back(layers.back());
  }
}

PoolerImpl::PoolerImpl(const io::ModelConfig& c) {
  dense = register_module("dense", Linear(c.hidden_size, c.hidden_size));
}

TransformerEncoderImpl::TransformerEncoderImpl(const io::ModelConfig& c, PositionScheme scheme,
                                               bool add_pooler)
    : config_(c) {
  embeddings = register_module("embeddings", EncoderEmbeddings(c, scheme));
  encoder = register_module("encoder", EncoderStack(c));
  if (add_pooler) pooler = register_module("pooler", Pooler(c));
}

ModelOutputs TransformerEncoderImpl::forward(const ModelInputs& in, const ForwardOptions& opt) {
  const auto dev = embeddings->word_embeddings->weight.device();
  const auto dtype = embeddings->word_embeddings->weight.scalar_type();
  // Checked and planned on the caller's tensors, before they move: inputs collated on the host
  // are read there, and the forward queues its kernels without waiting for the device.
  // Checked before the cast: a float id would be truncated to an integer one.
  check_inputs(in.input_ids, in.attention_mask, in.token_type_ids, config_.vocab_size,
               config_.type_vocab_size);
  auto ids = in.input_ids.to(at::kLong);
  Packing packing;
  if (opt.packed && !opt.output_attentions) {
    const auto varlen = choose_varlen(opt, dev, activation_dtype(dtype, dev),
                                      config_.hidden_size / config_.num_attention_heads);
    packing = plan_packing(in.attention_mask, /*first_token_real=*/true, varlen, dev);
  }
  ids = to_device(ids, dev);
  const at::Tensor types = to_device(in.token_type_ids, dev);
  for (auto& g : packing.groups) g.bias = padding_mask_bias(g.mask, dtype);
  packing.sdpa = use_sdpa(opt, dev);
  // The padded layout's [B, 1, 1, T] bias only where the padded path runs.
  at::Tensor bias;
  if (!packing.active()) {
    bias = padding_mask_bias(mask_or_ones(in.attention_mask, ids), dtype);
    if (packing.sdpa) bias = unmask_unattended(bias);
  }
  auto unpack = [&](const at::Tensor& x) { return packing.active() ? packing.pad(x) : x; };

  ModelOutputs out;
  auto h = embeddings->forward(ids, types, packing);
  for (auto& layer : encoder->layers) {
    if (opt.output_hidden_states) out.hidden_states.push_back(unpack(h));
    at::Tensor probs;
    h = layer->forward(h, bias, opt.output_attentions, &probs, packing);
    if (opt.output_attentions) out.attentions.push_back(probs);
  }
  h = unpack(h);
  if (opt.output_hidden_states) out.hidden_states.push_back(h);
  out.last_hidden_state = h;
  if (!pooler.is_empty()) out.pooler_output = pooler->forward(h);
  return out;
}

}  // namespace xlt::models
