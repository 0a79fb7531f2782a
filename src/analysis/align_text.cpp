// Alignment metrics of a model on parallel text (see include/xlt/analysis/align_text.h).
#include "xlt/analysis/align_text.h"

#include <string>

#include "xlt/core/error.h"

namespace xlt::analysis {

std::vector<AlignmentRow> align_parallel_text(models::Model& model,
                                              const text::Tokenizer& tokenizer,
                                              const ParallelText& text, EmbeddingOptions options,
                                              int threads) {
  if (text.rows() < 2) {
    throw DataError("parallel input: " + std::to_string(text.rows()) +
                    " rows; alignment metrics need at least 2 parallel sentences");
  }
  std::vector<SentenceEmbeddings> per_lang;
  for (size_t i = 0; i < text.langs.size(); ++i) {
    options.progress_label = "embed " + text.langs[i];
    per_lang.push_back(sentence_embeddings(model, tokenizer, text.columns[i], options));
  }
  std::vector<LanguageLayers> languages;
  for (size_t i = 0; i < text.langs.size(); ++i) {
    LanguageLayers x;
    x.lang = text.langs[i];
    for (const auto& m : per_lang[i].matrices) x.layers.push_back(m.view());
    languages.push_back(std::move(x));
  }
  auto rows = alignment_by_layer(languages, threads);
  // alignment_by_layer numbers the layers it was given 0, 1, ...; map back to hidden_states.
  const std::vector<int>& layers = per_lang.front().layers;
  for (auto& r : rows) r.layer = layers.at(static_cast<size_t>(r.layer));
  return rows;
}

}  // namespace xlt::analysis
