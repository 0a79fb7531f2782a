// Private to the io module: the checkpoint names of the output heads transformers ties to the
// input embeddings (the MLM decoders and XGLM's lm_head), shared by `xlt convert` (which of two
// names for one tensor it drops) and the model summary (which tensors are not parameters of
// their own), so the two agree on what "tied" names.
#pragma once

#include <string_view>

#include "core/strings.h"

namespace xlt::io::detail {

// BERT's cls.predictions.decoder.weight, (XLM-)RoBERTa's lm_head.decoder.weight, XGLM's
// lm_head.weight.
inline bool is_output_projection(std::string_view name) {
  return name == "lm_head.weight" || xlt::detail::ends_with(name, "predictions.decoder.weight") ||
         xlt::detail::ends_with(name, "lm_head.decoder.weight");
}

// The decoders' biases, which are the heads' own bias (predictions.bias, lm_head.bias) again.
inline bool is_decoder_bias(std::string_view name) {
  return xlt::detail::ends_with(name, "predictions.decoder.bias") ||
         xlt::detail::ends_with(name, "lm_head.decoder.bias");
}

}  // namespace xlt::io::detail
