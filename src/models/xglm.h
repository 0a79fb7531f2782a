// XGLM pieces that tests check on their own: the sinusoidal position table (a non-persistent
// buffer in HF, never in the checkpoint) and HF 4.40's causal-LM loss with its label shift.
#pragma once

#include <ATen/ATen.h>

namespace xlt::models {

// HF's XGLMSinusoidalPositionalEmbedding.get_embedding: [num, dim] = [sin | cos] with frequencies
// exp(-i * ln(10000) / (dim/2 - 1)), odd dim zero-padded, row padding_idx zeroed. float32.
at::Tensor xglm_sinusoidal_table(int64_t num_embeddings, int64_t dim, int64_t padding_idx);

// XGLM's position offset: position p uses table row p + 2.
constexpr int64_t kXglmPositionOffset = 2;

// XGLMForCausalLM's loss (transformers 4.40): targets = labels shifted left by one with the last
// position set to pad_token_id (which is NOT ignored), cross-entropy (ignore_index -100) averaged
// over the non-ignored targets. logits [B, T, V], labels int64 [B, T].
at::Tensor xglm_causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels,
                               int64_t pad_token_id);

}  // namespace xlt::models
