// Cross-lingual alignment of a model on parallel text, as `xlt align MODEL --input ...` computes
// it: sentence embeddings of every language column at the requested layers, then the metrics of
// xlt/analysis/alignment.h for every layer and language pair. The CLI and the Python package
// (xlt.align) both call it.
#pragma once

#include <vector>

#include "xlt/analysis/alignment.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/analysis/parallel_text.h"

namespace xlt::analysis {

// Rows ordered by layer, then language pair; `layer` is the hidden_states index (options.layers,
// which must be resolved: non-empty). Embedding progress is labelled "embed LANG". Throws
// DataError for fewer than 2 parallel rows.
std::vector<AlignmentRow> align_parallel_text(models::Model& model,
                                              const text::Tokenizer& tokenizer,
                                              const ParallelText& text, EmbeddingOptions options,
                                              int threads = 1);

}  // namespace xlt::analysis
