// XGLM causal LM (HF's XGLMForCausalLM, transformers 4.40): scaled token embeddings + sinusoidal
// positions (offset 2, positions 0..T-1 whatever the padding), pre-LayerNorm decoder layers, a
// final LayerNorm, and logits through the input embedding matrix (lm_head is tied and therefore
// not a separate parameter: the optimiser sees the shared tensor once, as in HF), or through a
// lm_head.weight of its own where config.json says tie_word_embeddings: false.
#include "models/xglm.h"

#include <cmath>

#include "models/arch.h"
#include "models/layers.h"
#include "xlt/core/error.h"

namespace xlt::models {

at::Tensor xglm_sinusoidal_table(int64_t num_embeddings, int64_t dim, int64_t padding_idx) {
  const int64_t half = dim / 2;
  const double step = std::log(10000.0) / static_cast<double>(half - 1);
  auto freq = at::exp(at::arange(half, at::kLong).to(at::kFloat) * -step);
  auto angles =
      at::arange(num_embeddings, at::kLong).to(at::kFloat).unsqueeze(1) * freq.unsqueeze(0);
  auto table = at::cat({at::sin(angles), at::cos(angles)}, 1).view({num_embeddings, -1});
  if (dim % 2 == 1) table = at::cat({table, at::zeros({num_embeddings, 1})}, 1);
  if (padding_idx >= 0 && padding_idx < num_embeddings) table[padding_idx].zero_();
  return table;
}

at::Tensor xglm_causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels,
                               int64_t pad_token_id) {
  auto target = to_device(labels.to(at::kLong), logits.device());
  auto shifted = at::zeros_like(target);
  const int64_t t = target.size(1);
  if (t > 1) shifted.narrow(1, 0, t - 1).copy_(target.narrow(1, 1, t - 1));
  shifted.select(1, t - 1).fill_(pad_token_id);
  const int64_t vocab = logits.size(-1);
  return at::cross_entropy_loss(logits.reshape({-1, vocab}), shifted.view(-1));
}

namespace {

// XGLM's eps is nn.LayerNorm's default, not a config field.
constexpr double kXglmLayerNormEps = 1e-5;

class XGLMAttentionImpl : public torch::nn::Module {
 public:
  explicit XGLMAttentionImpl(const io::ModelConfig& c)
      : heads_(c.num_attention_heads),
        head_dim_(c.hidden_size / c.num_attention_heads),
        scaling_(std::pow(static_cast<double>(c.hidden_size / c.num_attention_heads), -0.5)),
        dropout_(c.attention_probs_dropout_prob) {
    const int64_t h = c.hidden_size;
    // HF's registration order (k, v, q, out) keeps named_parameters() in state-dict order.
    k_proj = register_module("k_proj", Linear(h, h));
    v_proj = register_module("v_proj", Linear(h, h));
    q_proj = register_module("q_proj", Linear(h, h));
    out_proj = register_module("out_proj", Linear(h, h));
  }

  // h [B, T, H], or [N, H] with an active packing (projections on real tokens only; attention
  // per length group on its compact layout).
  at::Tensor forward(const at::Tensor& h, const at::Tensor& mask_bias, bool need_probs,
                     at::Tensor* probs, const Packing& packing) {
    auto qkv = fused_linear(h, {q_proj.get(), k_proj.get(), v_proj.get()});
    if (!packing.active()) {
      return out_proj->forward(attend(qkv, mask_bias, need_probs, probs, packing.sdpa));
    }
    if (packing.varlen != VarlenKernel::kNone) {
      // The kernels scale by 1/sqrt(head_dim), which is HF's scaling_.
      return out_proj->forward(
          varlen_attention(qkv, heads_, packing, is_training() ? dropout_ : 0.0, /*causal=*/true));
    }
    std::vector<at::Tensor> ctx;
    auto grouped = packing.pad_groups(qkv);
    for (size_t g = 0; g < packing.groups.size(); ++g) {
      const auto& gr = packing.groups[g];
      // A group without padding is plain causal attention: no mask, the fused kernels' best case.
      const bool dense = packing.sdpa && !gr.slots.defined();
      ctx.push_back(
          attend(grouped[g], dense ? at::Tensor() : gr.bias, false, nullptr, packing.sdpa));
      grouped[g].reset();  // without autograd its padded copy is freed before the next group's
    }
    return out_proj->forward(packing.pack_groups(ctx));
  }

  Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};

 private:
  // qkv [B, T, 3H] (q, k, v side by side) -> context [B, T, H] for additive mask_bias
  // [B, 1, T, T] (causal and padding; undefined: causal only); `fused`: through sdpa() unless
  // probabilities are needed.
  at::Tensor attend(const at::Tensor& qkv, const at::Tensor& mask_bias, bool need_probs,
                    at::Tensor* probs, bool fused) {
    const int64_t b = qkv.size(0), t = qkv.size(1);
    auto parts = qkv.split(heads_ * head_dim_, -1);
    if (fused && !need_probs) {
      // scaled_dot_product_attention scales by 1/sqrt(head_dim), which is HF's scaling_.
      auto split = [&](const at::Tensor& x) {
        return x.reshape({b, t, heads_, head_dim_}).transpose(1, 2);
      };
      const double p = is_training() ? dropout_ : 0.0;
      auto ctx = sdpa(split(parts[0]), split(parts[1]), split(parts[2]), mask_bias, p,
                      !mask_bias.defined());
      return ctx.transpose(1, 2).reshape({b, t, heads_ * head_dim_});
    }
    auto heads = [&](const at::Tensor& x) {
      return x.reshape({b, t, heads_, head_dim_})
          .transpose(1, 2)
          .reshape({b * heads_, t, head_dim_});
    };
    auto q = heads(parts[0] * scaling_);  // HF scales the query, not the scores
    auto k = heads(parts[1]);
    auto v = heads(parts[2]);
    auto w = batched_matmul(q, k.transpose(1, 2)).view({b, heads_, t, t}) + mask_bias;
    w = at::clamp_min(w, finfo_min(w.scalar_type()));
    auto p = at::softmax(w, -1);
    if (need_probs && probs) *probs = p;
    auto ctx =
        batched_matmul(models::dropout(p, dropout_, is_training()).view({b * heads_, t, t}), v);
    return ctx.view({b, heads_, t, head_dim_}).transpose(1, 2).reshape({b, t, heads_ * head_dim_});
  }

  int64_t heads_, head_dim_;
  double scaling_, dropout_;
};
TORCH_MODULE(XGLMAttention);

class XGLMDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit XGLMDecoderLayerImpl(const io::ModelConfig& c)
      : act_(parse_activation(c.hidden_act)),
        dropout_(c.hidden_dropout_prob),
        activation_dropout_(c.activation_dropout) {
    self_attn = register_module("self_attn", XGLMAttention(c));
    self_attn_layer_norm =
        register_module("self_attn_layer_norm", LayerNorm(c.hidden_size, kXglmLayerNormEps));
    fc1 = register_module("fc1", Linear(c.hidden_size, c.intermediate_size));
    fc2 = register_module("fc2", Linear(c.intermediate_size, c.hidden_size));
    final_layer_norm =
        register_module("final_layer_norm", LayerNorm(c.hidden_size, kXglmLayerNormEps));
  }

  at::Tensor forward(const at::Tensor& h, const at::Tensor& mask_bias, bool need_probs,
                     at::Tensor* probs, const Packing& packing) {
    const bool train = is_training();
    auto x =
        self_attn->forward(self_attn_layer_norm->forward(h), mask_bias, need_probs, probs, packing);
    auto r = h + models::dropout(x, dropout_, train);
    auto y = activate(fc1->forward(final_layer_norm->forward(r)), act_);
    y = fc2->forward(models::dropout(y, activation_dropout_, train));
    return r + models::dropout(y, dropout_, train);
  }

  XGLMAttention self_attn{nullptr};
  LayerNorm self_attn_layer_norm{nullptr};
  Linear fc1{nullptr}, fc2{nullptr};
  LayerNorm final_layer_norm{nullptr};

 private:
  Activation act_;
  double dropout_, activation_dropout_;
};
TORCH_MODULE(XGLMDecoderLayer);

class XGLMModelImpl : public torch::nn::Module {
 public:
  explicit XGLMModelImpl(const io::ModelConfig& c) : config_(c) {
    embed_tokens =
        register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, c.pad_token_id));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      typed_layers.emplace_back(c);
      layers->push_back(typed_layers.back());
    }
    layer_norm = register_module("layer_norm", LayerNorm(c.hidden_size, kXglmLayerNormEps));
  }

  // Rows [2, T + 2) of the sinusoidal table on the weights' device/dtype; the table grows past
  // max_position_embeddings + 2 on demand, as HF's make_weights does.
  at::Tensor positions(int64_t seq, const at::Tensor& like) {
    const int64_t needed = std::max(config_.max_position_embeddings, seq) + kXglmPositionOffset;
    if (!table_.defined() || table_.size(0) < needed || table_.device() != like.device() ||
        table_.scalar_type() != like.scalar_type()) {
      table_ = xglm_sinusoidal_table(needed, config_.hidden_size, config_.pad_token_id)
                   .to(like.device(), like.scalar_type());
    }
    return table_.narrow(0, kXglmPositionOffset, seq);
  }

  ModelOutputs forward(const ModelInputs& in, const ForwardOptions& opt) {
    const auto& weight = embed_tokens->weight;
    const auto dev = weight.device();
    // Checked and planned on the caller's tensors before they move (see the encoders' forward).
    // Checked before the cast: a float id would be truncated to an integer one.
    check_inputs(in.input_ids, in.attention_mask, at::Tensor(), config_.vocab_size);
    auto ids = in.input_ids.to(at::kLong);
    const int64_t b = ids.size(0), t = ids.size(1);

    // HF's loss reads the last position even where it is padding: labels keep the padded path.
    Packing packing;
    if (opt.packed && !opt.output_attentions && !in.labels.defined()) {
      const auto varlen = choose_varlen(opt, dev, activation_dtype(weight.scalar_type(), dev),
                                        config_.hidden_size / config_.num_attention_heads);
      packing = plan_packing(in.attention_mask, /*first_token_real=*/false, varlen, dev);
    }
    ids = to_device(ids, dev);
    for (auto& g : packing.groups) {
      g.bias = causal_mask_bias(g.mask, g.rows, g.seq, weight.scalar_type(), weight.device());
    }
    packing.sdpa = use_sdpa(opt, weight.device());
    // The padded layout's [B, 1, T, T] bias only where the padded path runs.
    at::Tensor bias;
    if (!packing.active()) {
      const at::Tensor mask = to_device(in.attention_mask, dev);
      bias = causal_mask_bias(mask, b, t, weight.scalar_type(), weight.device());
      if (packing.sdpa && mask.defined()) bias = unmask_unattended(bias);
    }
    auto unpack = [&](const at::Tensor& x) { return packing.active() ? packing.pad(x) : x; };

    const double scale =
        config_.scale_embedding ? std::sqrt(static_cast<double>(config_.hidden_size)) : 1.0;
    at::Tensor h;
    if (packing.active()) {
      // Position of a real token = its column in the padded layout, as in the padded run.
      auto column = at::remainder(packing.index, t);
      h = embed_tokens->forward(ids.reshape({-1}).index_select(0, packing.index)) * scale +
          positions(t, weight).index_select(0, column);
    } else {
      h = embed_tokens->forward(ids) * scale + positions(t, weight).unsqueeze(0);
    }
    h = models::dropout(h, config_.hidden_dropout_prob, is_training());

    ModelOutputs out;
    for (auto& layer : typed_layers) {
      if (opt.output_hidden_states) out.hidden_states.push_back(unpack(h));
      at::Tensor probs;
      h = layer->forward(h, bias, opt.output_attentions, &probs, packing);
      if (opt.output_attentions) out.attentions.push_back(probs);
      if (opt.output_hidden_states) out.layer_outputs.push_back(unpack(h));
    }
    h = unpack(layer_norm->forward(h));
    if (opt.output_hidden_states) out.hidden_states.push_back(h);
    out.last_hidden_state = h;
    return out;
  }

  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  std::vector<XGLMDecoderLayer> typed_layers;
  LayerNorm layer_norm{nullptr};

 private:
  io::ModelConfig config_;
  at::Tensor table_;
};
TORCH_MODULE(XGLMModel);

class XGLMForCausalLMImpl : public torch::nn::Module {
 public:
  explicit XGLMForCausalLMImpl(const io::ModelConfig& c) {
    model = register_module("model", XGLMModel(c));
    // Tied (HF's default, every released XGLM): logits use embed_tokens, and the checkpoint's
    // lm_head.weight is the same matrix. Untied: a parameter of its own, as nn.Linear(no bias).
    if (!c.tie_word_embeddings) {
      lm_head = register_module("lm_head", Linear(c.hidden_size, c.vocab_size, /*bias=*/false));
    }
  }
  // The [vocab, H] matrix the logits are computed with.
  const at::Tensor& output_weight() const {
    return lm_head ? lm_head->weight : model->embed_tokens->weight;
  }
  XGLMModel model{nullptr};
  Linear lm_head{nullptr};
};
TORCH_MODULE(XGLMForCausalLM);

class XglmCausalLM final : public ArchModel {
 public:
  XglmCausalLM(const io::ModelConfig& c, XGLMForCausalLM m)
      : ArchModel(ModelKind::kCausalLM, c, m.ptr()), net_(std::move(m)) {}

  ModelOutputs forward(const ModelInputs& in, const ForwardOptions& opt) override {
    auto out = net_->model->forward(in, opt);
    if (!opt.compute_logits) return out;
    out.logits = at::linear(out.last_hidden_state, net_->output_weight());
    if (in.labels.defined()) {
      if (in.labels.sizes() != in.input_ids.sizes()) {
        throw DataError("labels: a causal LM needs labels shaped like input_ids [batch, seq]");
      }
      check_class_ids(in.labels, config().vocab_size, "labels");
      out.loss = xglm_causal_lm_loss(out.logits, in.labels, config().pad_token_id);
    }
    return out;
  }

  at::Tensor output_embeddings() const override { return net_->output_weight(); }

  std::string hf_class() const override { return "XGLMForCausalLM"; }
  std::string base_prefix() const override { return "model."; }
  bool ignorable(const std::string& name) const override {
    // The tied copy of the embeddings, and fairseq-era position buffers.
    return (name == "lm_head.weight" && !net_->lm_head) ||
           name.rfind("model.embed_positions.", 0) == 0;
  }

 private:
  XGLMForCausalLM net_;
};

}  // namespace

std::unique_ptr<ArchModel> make_xglm(const io::ModelConfig& config) {
  return std::make_unique<XglmCausalLM>(config, XGLMForCausalLM(config));
}

}  // namespace xlt::models
