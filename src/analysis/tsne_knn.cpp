// Exact k-nearest-neighbour graphs for Barnes-Hut t-SNE: a vantage-point tree (Yianilos 1993),
// the structure van der Maaten's bhtsne uses, and an all-pairs search. The tree needs only the
// triangle inequality, but in high dimensions it cannot prune (on 5,000 points of 768-D
// Gaussian-mixture data it computed more distances than all pairs: 14.1 s vs 9.7 s CPU), so
// knn_exact() uses it only for low-dimensional inputs. The all-pairs search preselects
// candidates with one BLAS GEMM per query block (ATen's at::mm, so it follows the thread count
// and runs on whatever BLAS libtorch uses) and ranks them with squared_distance, the arithmetic
// the tree uses, so both return the same neighbours and distances bit for bit.
#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <random>
#include <utility>

#include <ATen/ATen.h>

#include "analysis/intra_op_threads.h"
#include "analysis/parallel.h"
#include "analysis/tsne_internal.h"
#include "xlt/analysis/tsne.h"
#include "xlt/core/error.h"
#include "xlt/models/model.h"

namespace xlt::analysis {
namespace {

using detail::squared_distance;

// Ranges at most this large are scanned linearly instead of being split further.
constexpr int64_t kLeafSize = 8;

class VpTree {
 public:
  VpTree(MatrixView x, uint64_t seed) : x_(x), items_(static_cast<size_t>(x.rows)), rng_(seed) {
    for (int64_t i = 0; i < x.rows; ++i) items_[static_cast<size_t>(i)] = i;
    nodes_.reserve(static_cast<size_t>(2 * x.rows / kLeafSize + 2));
    root_ = build(0, x.rows);
  }

  // The k nearest neighbours of row `self` (excluded), nearest first, ties by lower index.
  void query(int64_t self, int64_t k, int64_t* out_index, double* out_sq) const {
    Heap heap;
    double tau = std::numeric_limits<double>::infinity();
    search(root_, self, k, heap, tau);
    for (int64_t r = static_cast<int64_t>(heap.size()) - 1; r >= 0; --r) {
      out_index[r] = heap.top().second;
      out_sq[r] = heap.top().first;
      heap.pop();
    }
  }

 private:
  struct Node {
    int64_t begin = 0, end = 0;  // leaf: items_[begin, end); inner: items_[begin] is the vantage
    double threshold = 0.0;      // inner: median distance from the vantage point
    int32_t left = -1, right = -1;
    bool leaf = false;
  };
  // (squared distance, index); the max-heap keeps the worst on top. Keyed on the squared
  // distance so ties and order match the all-pairs search exactly.
  using Candidate = std::pair<double, int64_t>;
  using Heap = std::priority_queue<Candidate>;

  double distance(int64_t a, int64_t b) const {
    return std::sqrt(squared_distance(x_.row(a), x_.row(b), x_.cols));
  }

  int32_t build(int64_t begin, int64_t end) {
    if (begin >= end) return -1;
    const auto id = static_cast<int32_t>(nodes_.size());
    nodes_.push_back(Node{});
    Node node;
    node.begin = begin;
    node.end = end;
    if (end - begin <= kLeafSize) {
      node.leaf = true;
      nodes_[static_cast<size_t>(id)] = node;
      return id;
    }
    // A random vantage point (seeded) avoids the worst case on sorted or duplicated inputs.
    std::uniform_int_distribution<int64_t> pick(begin, end - 1);
    std::swap(items_[static_cast<size_t>(begin)], items_[static_cast<size_t>(pick(rng_))]);
    const int64_t vp = items_[static_cast<size_t>(begin)];
    std::vector<Candidate> rest;
    rest.reserve(static_cast<size_t>(end - begin - 1));
    for (int64_t r = begin + 1; r < end; ++r) {
      const int64_t it = items_[static_cast<size_t>(r)];
      rest.emplace_back(distance(vp, it), it);
    }
    const auto median = static_cast<int64_t>(rest.size() / 2);
    std::nth_element(rest.begin(), rest.begin() + median, rest.end());
    for (size_t r = 0; r < rest.size(); ++r) {
      items_[static_cast<size_t>(begin + 1) + r] = rest[r].second;
    }
    node.threshold = rest[static_cast<size_t>(median)].first;
    const int64_t mid = begin + 1 + median;
    node.left = build(begin + 1, mid);  // distance <= threshold
    node.right = build(mid, end);       // distance >= threshold
    nodes_[static_cast<size_t>(id)] = node;
    return id;
  }

  double sq_distance(int64_t a, int64_t b) const {
    return squared_distance(x_.row(a), x_.row(b), x_.cols);
  }

  // `tau` is the Euclidean distance of the current k-th neighbour (for pruning).
  static void offer(Heap& heap, int64_t k, double sq, int64_t idx, double& tau) {
    const Candidate c{sq, idx};
    if (static_cast<int64_t>(heap.size()) < k) {
      heap.push(c);
    } else if (c < heap.top()) {
      heap.pop();
      heap.push(c);
    }
    if (static_cast<int64_t>(heap.size()) == k) tau = std::sqrt(heap.top().first);
  }

  void search(int32_t id, int64_t self, int64_t k, Heap& heap, double& tau) const {
    if (id < 0) return;
    const Node& node = nodes_[static_cast<size_t>(id)];
    if (node.leaf) {
      for (int64_t r = node.begin; r < node.end; ++r) {
        const int64_t it = items_[static_cast<size_t>(r)];
        if (it != self) offer(heap, k, sq_distance(self, it), it, tau);
      }
      return;
    }
    const int64_t vp = items_[static_cast<size_t>(node.begin)];
    const double sq = sq_distance(self, vp), d = std::sqrt(sq);
    if (vp != self) offer(heap, k, sq, vp, tau);
    // Slack for rounding in the float distance kernel, so ties and near-ties are never pruned.
    auto slack = [&] { return 1e-6 * (tau + d + node.threshold); };
    if (d < node.threshold) {
      if (d - tau <= node.threshold + slack()) search(node.left, self, k, heap, tau);
      if (d + tau >= node.threshold - slack()) search(node.right, self, k, heap, tau);
    } else {
      if (d + tau >= node.threshold - slack()) search(node.right, self, k, heap, tau);
      if (d - tau <= node.threshold + slack()) search(node.left, self, k, heap, tau);
    }
  }

  MatrixView x_;
  std::vector<int64_t> items_;
  std::vector<Node> nodes_;
  std::mt19937_64 rng_;
  int32_t root_ = -1;
};

// ----- All-pairs search through one GEMM per query block -------------------------------------

constexpr int64_t kQueryBlock = 256;

// |a - b|^2 = |a|^2 + |b|^2 - 2 a.b puts the O(n^2 d) work into a float GEMM (BLAS runs it ~6x
// faster than a distance kernel: it may use FMA and any summation order), but that form is not
// the arithmetic of squared_distance and cancels digits. So it only preselects: with a bound B
// on |expanded - squared_distance| for a query, every true neighbour j satisfies
// expanded_j <= (k-th smallest expanded) + 2B (each of the k best by the exact value is within B
// of its expansion, so the exact k-th distance is <= expanded k-th + B). The candidates are then
// ranked by squared_distance itself, so the result is exactly the tree's, for any thread count
// and any BLAS. B is a worst-case bound (d u |a||b| for the dot product, d/8 u |a-b|^2 for
// squared_distance's lane sums, u = 2^-24), generous on purpose: a few extra candidates cost
// microseconds, a missed one would change the map.
double error_bound(double norm2_q, double max_norm2, int64_t d) {
  const double u = std::ldexp(1.0, -24);
  const double dots = static_cast<double>(d) * u * (norm2_q + max_norm2);
  const double lanes = static_cast<double>(d / 8 + 2) * u * 2.0 * (norm2_q + max_norm2);
  return 1.5 * (dots + lanes) + 1e-12;
}

}  // namespace

KnnGraph knn_vptree(MatrixView x, int64_t k, uint64_t seed, int threads) {
  if (x.rows < 2) throw DataError("knn: need at least 2 points, got " + std::to_string(x.rows));
  if (k < 1 || k > x.rows - 1) {
    throw UsageError("knn: k must be in [1, n-1] = [1, " + std::to_string(x.rows - 1) + "], got " +
                     std::to_string(k));
  }
  VpTree tree(x, seed);
  KnnGraph g;
  g.n = x.rows;
  g.k = k;
  g.index.assign(static_cast<size_t>(x.rows * k), 0);
  g.sq_distance.assign(static_cast<size_t>(x.rows * k), 0.0);
  detail::parallel_blocks(
      x.rows, detail::kPointBlock, threads, [&](int64_t, int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          tree.query(i, k, g.index.data() + i * k, g.sq_distance.data() + i * k);
        }
      });
  return g;
}

KnnGraph knn_bruteforce(MatrixView x, int64_t k, int threads) {
  if (x.rows < 2) throw DataError("knn: need at least 2 points, got " + std::to_string(x.rows));
  if (k < 1 || k > x.rows - 1) {
    throw UsageError("knn: k must be in [1, n-1] = [1, " + std::to_string(x.rows - 1) + "], got " +
                     std::to_string(k));
  }
  models::ensure_fast_blas();
  const int64_t n = x.rows, d = x.cols;
  KnnGraph g;
  g.n = n;
  g.k = k;
  g.index.assign(static_cast<size_t>(n * k), 0);
  g.sq_distance.assign(static_cast<size_t>(n * k), 0.0);

  std::vector<double> norm2(static_cast<size_t>(n));
  detail::parallel_blocks(n, detail::kPointBlock, threads,
                          [&](int64_t, int64_t begin, int64_t end) {
                            for (int64_t i = begin; i < end; ++i) {
                              double s = 0.0;
                              for (int64_t j = 0; j < d; ++j)
                                s += static_cast<double>(x(i, j)) * x(i, j);
                              norm2[static_cast<size_t>(i)] = s;
                            }
                          });
  const double max_norm2 = *std::max_element(norm2.begin(), norm2.end());

  const detail::IntraOpThreads gemm_threads(std::max(1, threads));
  // from_blob does not copy; the tensor never outlives `x`.
  const at::Tensor all = at::from_blob(const_cast<float*>(x.data), {n, d}, at::kFloat);
  const at::Tensor all_t = all.t();
  for (int64_t q0 = 0; q0 < n; q0 += kQueryBlock) {
    const int64_t nq = std::min(kQueryBlock, n - q0);
    const at::Tensor dots = at::mm(all.narrow(0, q0, nq), all_t).contiguous();
    const float* dot = dots.data_ptr<float>();
    detail::parallel_blocks(nq, 16, threads, [&](int64_t, int64_t begin, int64_t end) {
      std::vector<double> expanded(static_cast<size_t>(n));
      std::vector<double> heap;  // max-heap of the k smallest expanded distances
      std::vector<std::pair<double, int64_t>> candidates;
      for (int64_t qi = begin; qi < end; ++qi) {
        const int64_t i = q0 + qi;
        const double ni = norm2[static_cast<size_t>(i)];
        const float* row = dot + qi * n;
        heap.clear();
        for (int64_t j = 0; j < n; ++j) {
          const double e = j == i ? std::numeric_limits<double>::infinity()
                                  : ni + norm2[static_cast<size_t>(j)] - 2.0 * row[j];
          expanded[static_cast<size_t>(j)] = e;
          if (static_cast<int64_t>(heap.size()) < k) {
            heap.push_back(e);
            std::push_heap(heap.begin(), heap.end());
          } else if (e < heap.front()) {
            std::pop_heap(heap.begin(), heap.end());
            heap.back() = e;
            std::push_heap(heap.begin(), heap.end());
          }
        }
        const double limit = heap.front() + 2.0 * error_bound(ni, max_norm2, d);
        candidates.clear();
        for (int64_t j = 0; j < n; ++j) {
          if (j != i && expanded[static_cast<size_t>(j)] <= limit) {
            candidates.emplace_back(squared_distance(x.row(i), x.row(j), d), j);
          }
        }
        std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end());
        for (int64_t m = 0; m < k; ++m) {
          g.index[static_cast<size_t>(i * k + m)] = candidates[static_cast<size_t>(m)].second;
          g.sq_distance[static_cast<size_t>(i * k + m)] = candidates[static_cast<size_t>(m)].first;
        }
      }
    });
  }
  return g;
}

KnnGraph knn_exact(MatrixView x, int64_t k, uint64_t seed, int threads) {
  return x.cols <= kVpTreeMaxDim ? knn_vptree(x, k, seed, threads) : knn_bruteforce(x, k, threads);
}

}  // namespace xlt::analysis
