// Exact k-nearest-neighbour graph for Barnes-Hut t-SNE via a vantage-point tree (Yianilos 1993),
// the structure van der Maaten's bhtsne uses: it needs only the triangle inequality, so it works
// for any dimension (pruning weakens in high dimensions but never gives wrong neighbours).
#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <random>
#include <utility>

#include "analysis/parallel.h"
#include "analysis/tsne_internal.h"
#include "xlt/analysis/tsne.h"
#include "xlt/core/error.h"

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
      out_sq[r] = heap.top().first * heap.top().first;
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
  using Candidate = std::pair<double, int64_t>;  // (distance, index); max-heap keeps the worst
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

  static void offer(Heap& heap, int64_t k, double tau_dist, int64_t idx, double& tau) {
    const Candidate c{tau_dist, idx};
    if (static_cast<int64_t>(heap.size()) < k) {
      heap.push(c);
    } else if (c < heap.top()) {
      heap.pop();
      heap.push(c);
    }
    if (static_cast<int64_t>(heap.size()) == k) tau = heap.top().first;
  }

  void search(int32_t id, int64_t self, int64_t k, Heap& heap, double& tau) const {
    if (id < 0) return;
    const Node& node = nodes_[static_cast<size_t>(id)];
    if (node.leaf) {
      for (int64_t r = node.begin; r < node.end; ++r) {
        const int64_t it = items_[static_cast<size_t>(r)];
        if (it != self) offer(heap, k, distance(self, it), it, tau);
      }
      return;
    }
    const int64_t vp = items_[static_cast<size_t>(node.begin)];
    const double d = distance(self, vp);
    if (vp != self) offer(heap, k, d, vp, tau);
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

}  // namespace xlt::analysis
