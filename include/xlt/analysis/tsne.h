// t-SNE (van der Maaten & Hinton 2008) for 2-D maps of sentence/token embeddings: exact t-SNE for
// small sets and Barnes-Hut t-SNE (van der Maaten 2014: vantage-point tree for the k nearest
// neighbours, quadtree for the repulsive forces) for large ones, with scikit-learn's optimisation
// schedule so maps look like those researchers get from sklearn.manifold.TSNE.
//
// Written here because no maintained C++ t-SNE library is packaged for Debian 12. Plain C++17 +
// std::thread, no libtorch, so it can move into a torch-free library.
//
// Determinism: for a given input, options and seed the output is bit-identical whatever
// `threads` is: work is split into fixed blocks of points whose partial sums are combined in
// block order, never in thread-completion order.
//
// Usage:
//   xlt::analysis::TsneOptions opt;
//   opt.perplexity = 30; opt.threads = 4;
//   auto result = xlt::analysis::tsne(embeddings.view(), opt);  // embeddings: [n, d]
//   // result.embedding: [n, 2] row-major; result.kl_divergence
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "xlt/analysis/matrix.h"

namespace xlt::analysis {

enum class TsneMethod { Auto, Exact, BarnesHut };
enum class TsneInit { Pca, Random };

// TsneMethod::Auto picks exact t-SNE for n <= kTsneExactMaxPoints and Barnes-Hut above: exact
// is O(n^2) per iteration and needs n^2 doubles for P, and measured on 768-D data Barnes-Hut
// becomes faster from about this size on (docs/analysis.md has the numbers).
inline constexpr int64_t kTsneExactMaxPoints = 1000;

struct TsneOptions {
  // Effective number of neighbours. Must be > 0. As scikit-learn: exact t-SNE calibrates against
  // all n - 1 other points; Barnes-Hut against the k = min(n - 1, floor(3 * perplexity + 1))
  // nearest. perplexity >= n (which scikit-learn refuses) is lowered to (n - 1) / 3 with a
  // warning (recorded, and printed to `warn`).
  double perplexity = 30.0;
  // Total gradient-descent iterations, early exaggeration included (sklearn's max_iter). >= 250.
  int max_iter = 1000;
  TsneInit init = TsneInit::Pca;
  uint64_t seed = 0;
  TsneMethod method = TsneMethod::Auto;
  // Barnes-Hut accuracy: a quadtree cell of width w at distance r is summarised when w/r < theta.
  double theta = 0.5;
  // Worker threads (>= 1). Does not change the result.
  int threads = 1;
  double early_exaggeration = 12.0;
  int exploration_iter = 250;  // iterations with early exaggeration and momentum 0.5
  // <= 0 means sklearn's learning_rate='auto': max(n / early_exaggeration / 4, 50).
  double learning_rate = 0.0;
  double min_grad_norm = 1e-7;
  int n_iter_without_progress = 300;
  // Called every `progress_every` iterations with (iteration, total iterations); may be empty.
  std::function<void(int, int)> on_progress;
  int progress_every = 10;
  // Where warnings (perplexity lowered) are printed; nullptr = only recorded in the result.
  std::function<void(const std::string&)> warn;
};

struct TsneResult {
  std::vector<double> embedding;  // [n, 2] row-major
  int64_t n = 0;
  int iterations = 0;          // gradient-descent iterations run (stops early on convergence)
  double kl_divergence = 0.0;  // KL(P || Q) of the final map (Barnes-Hut: with the tree's Z)
  TsneMethod method = TsneMethod::Exact;  // the method used (never Auto)
  double perplexity = 0.0;                // the perplexity used (after clamping)
  double learning_rate = 0.0;             // the learning rate used (after 'auto')
  int neighbors = 0;                      // Barnes-Hut: k of the kNN graph; exact: n - 1
  std::string knn;                        // Barnes-Hut: "vp-tree" or "all-pairs"; exact: empty
  double seconds = 0.0;                   // wall time of the whole run
  double affinity_seconds = 0.0;          // of which: kNN + perplexity calibration
  std::vector<std::string> warnings;

  double x(int64_t i) const { return embedding[static_cast<size_t>(2 * i)]; }
  double y(int64_t i) const { return embedding[static_cast<size_t>(2 * i + 1)]; }
};

// Runs t-SNE on `x` ([n, d], n >= 2, finite values). Throws DataError for bad input (too few
// points, NaN/Inf, naming the row) and UsageError for invalid options.
TsneResult tsne(MatrixView x, const TsneOptions& options);

std::string to_string(TsneMethod method);  // "auto", "exact", "barnes-hut"
std::string to_string(TsneInit init);      // "pca", "random"
// Parse the CLI spellings above; throw UsageError otherwise.
TsneMethod parse_tsne_method(const std::string& s);
TsneInit parse_tsne_init(const std::string& s);

// --- Building blocks, public for tests and for other analyses -------------------------------

// Per-point conditional probabilities p_{j|i} calibrated to a perplexity by binary search on the
// Gaussian precision beta_i (as sklearn's _binary_search_perplexity: natural-log entropy,
// tolerance 1e-5 nats, at most 100 steps).
struct PerplexityCalibration {
  std::vector<double> p;        // [n, k] row-major, each row sums to 1
  std::vector<double> beta;     // [n] precision 1 / (2 sigma_i^2)
  std::vector<double> entropy;  // [n] entropy (nats) reached for each row
};
inline constexpr double kPerplexityTolerance = 1e-5;
// `sq_distances` is [n, k] row-major: squared distances from point i to its k candidate
// neighbours (self excluded).
PerplexityCalibration calibrate_perplexity(const std::vector<double>& sq_distances, int64_t n,
                                           int64_t k, double perplexity, int threads = 1);

// Exact k nearest neighbours (Euclidean, self excluded, ties by lower index) of every row, via a
// vantage-point tree. Returns indices and squared distances, both [n, k] row-major, nearest first.
struct KnnGraph {
  int64_t n = 0, k = 0;
  std::vector<int64_t> index;
  std::vector<double> sq_distance;
};
KnnGraph knn_vptree(MatrixView x, int64_t k, uint64_t seed = 0, int threads = 1);
// The same graph (bit-identical distances) by a search over all pairs: a GEMM preselects
// candidates, squared_distance ranks them. Faster than the tree in high dimensions, where the
// tree cannot prune. Uses `threads` for the GEMM too (at::set_num_threads, restored after).
KnnGraph knn_bruteforce(MatrixView x, int64_t k, int threads = 1);
// What t-SNE uses: the vantage-point tree for inputs of at most kVpTreeMaxDim dimensions, the
// blocked search above that (docs/analysis.md has the measurements).
inline constexpr int64_t kVpTreeMaxDim = 16;
KnnGraph knn_exact(MatrixView x, int64_t k, uint64_t seed = 0, int threads = 1);

// The first `components` principal-component scores of `x` ([n, components] row-major), signs
// fixed so that the largest-magnitude loading of each component is positive.
std::vector<double> pca_scores(MatrixView x, int components, uint64_t seed = 0, int threads = 1);

// Trustworthiness (Venna & Kaski 2001) of a low-dimensional map `y` ([n, y_dim] row-major) of `x`,
// computed exactly as sklearn.manifold.trustworthiness (Euclidean): 1 - penalty for points that
// are among the k nearest neighbours in the map but not in the input. Requires k < n / 2.
double trustworthiness(MatrixView x, const std::vector<double>& y, int y_dim, int k = 5);

}  // namespace xlt::analysis
