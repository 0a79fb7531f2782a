// Cross-lingual alignment metrics on parallel sentence embeddings (plain float matrices; no
// libtorch in the interface): how well a layer's representations of a sentence and of its
// translation line up. Given languages A and B as [n, d] matrices where row i of B translates row i
// of A:
//   retrieval_a2b          fraction of i whose nearest B row by cosine is row i (top-1; ties go
//                          to the lower index); chance level is 1/n. retrieval_b2a likewise.
//   cos_pairs              mean cosine of the n translation pairs (a_i, b_i)
//   cos_random             mean cosine of all n(n-1) non-matching pairs (a_i, b_j), i != j
//   centered_retrieval_*   the same retrieval after subtracting each language's mean vector
//                          (removes a language-specific offset, Libovicky et al. 2020)
// A zero vector has cosine 0 with everything. All functions are deterministic; `threads` only
// changes speed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "xlt/analysis/matrix.h"

namespace xlt::analysis {

struct AlignmentMetrics {
  double retrieval_a2b = 0.0;
  double retrieval_b2a = 0.0;
  double cos_pairs = 0.0;
  double cos_random = 0.0;
  double centered_retrieval_a2b = 0.0;
  double centered_retrieval_b2a = 0.0;
};

// Top-1 cosine retrieval accuracy of queries[i] -> targets[i]. Shapes [n, d] each, n >= 1.
double retrieval_accuracy(MatrixView queries, MatrixView targets, int threads = 1);
// Both directions from one similarity matrix: a2b = retrieval_accuracy(a, b), b2a =
// retrieval_accuracy(b, a), at the cost of one.
struct RetrievalAccuracy {
  double a2b = 0.0;
  double b2a = 0.0;
};
RetrievalAccuracy retrieval_both_ways(MatrixView a, MatrixView b, int threads = 1);
// Mean cosine of the rows (a_i, b_i).
double mean_pair_cosine(MatrixView a, MatrixView b);
// Mean cosine over all (a_i, b_j) with i != j (n >= 2).
double mean_random_cosine(MatrixView a, MatrixView b);
// x minus its column means.
Matrix mean_centered(MatrixView x);

// All metrics for one language pair at one layer. Throws DataError on shape mismatch or n < 2.
AlignmentMetrics alignment_metrics(MatrixView a, MatrixView b, int threads = 1);

// One language's sentence embeddings per layer (layer 0 = the embedding layer, as Hugging Face
// hidden_states). Views must outlive the call.
struct LanguageLayers {
  std::string lang;
  std::vector<MatrixView> layers;
};

struct AlignmentRow {
  int layer = 0;
  std::string lang_a, lang_b;
  AlignmentMetrics metrics;
};

// Metrics for every layer and every unordered language pair (lang_a before lang_b in the given
// order), ordered by layer, then pair. All languages must have the same number of layers and
// rows. Throws DataError otherwise.
std::vector<AlignmentRow> alignment_by_layer(const std::vector<LanguageLayers>& languages,
                                             int threads = 1);

// The alignment.csv contract: this header, then one row per AlignmentRow (6 decimals).
inline constexpr const char* kAlignmentCsvHeader =
    "layer,lang_a,lang_b,retrieval_a2b,retrieval_b2a,cos_pairs,cos_random,"
    "centered_retrieval_a2b,centered_retrieval_b2a";
std::string alignment_csv(const std::vector<AlignmentRow>& rows);
// Writes alignment_csv(rows) atomically.
void write_alignment_csv(const std::filesystem::path& path, const std::vector<AlignmentRow>& rows);

}  // namespace xlt::analysis
