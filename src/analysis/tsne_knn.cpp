// Exact k-nearest-neighbour graphs for Barnes-Hut t-SNE: a vantage-point tree (Yianilos 1993),
// the structure van der Maaten's bhtsne uses, and a cache-blocked all-pairs search. The tree
// needs only the triangle inequality, but in high dimensions it cannot prune (on 5,000 points of
// 768-D Gaussian-mixture data it computed more distances than all pairs: 14.1 s vs 9.7 s CPU), so
// knn_exact() uses it only for low-dimensional inputs. Both compute every distance with the same
// arithmetic (squared_distance's lane order), so they return the same neighbours.
#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <random>
#include <utility>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define XLT_KNN_AVX2 1
#endif

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

// ----- Blocked all-pairs search ---------------------------------------------------------------

constexpr int64_t kTargetTile = 64;

// Squared distances between rows q[0, nq) and t[0, nt) of dimension d into out[nq][nt].
void distance_tile_generic(const float* q, int64_t nq, const float* t, int64_t nt, int64_t d,
                           double* out) {
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t j = 0; j < nt; ++j) out[i * nt + j] = squared_distance(q + i * d, t + j * d, d);
}

#ifdef XLT_KNN_AVX2
// Same arithmetic as squared_distance (8 float lanes, lane u sums elements j + u with separate
// multiply and add, then the same double reduction), so results are bit-identical to the generic
// path; 2 queries x 4 targets per register block reuse each load.
__attribute__((target("avx2"))) double reduce_lanes(__m256 acc, const float* a, const float* b,
                                                    int64_t from, int64_t d) {
  alignas(32) float l[8];
  _mm256_store_ps(l, acc);
  double s = ((static_cast<double>(l[0]) + l[1]) + (l[2] + l[3])) +
             ((static_cast<double>(l[4]) + l[5]) + (l[6] + l[7]));
  for (int64_t j = from; j < d; ++j) {
    const double t = static_cast<double>(a[j]) - b[j];
    s += t * t;
  }
  return s;
}

__attribute__((target("avx2"))) void distance_tile_avx2(const float* q, int64_t nq, const float* t,
                                                        int64_t nt, int64_t d, double* out) {
  const int64_t d8 = d - d % 8;
  int64_t i = 0;
  for (; i + 2 <= nq; i += 2) {
    const float* q0 = q + i * d;
    const float* q1 = q0 + d;
    int64_t j = 0;
    for (; j + 4 <= nt; j += 4) {
      const float* t0 = t + j * d;
      __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
      __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
      for (int64_t k = 0; k < d8; k += 8) {
        const __m256 x0 = _mm256_loadu_ps(q0 + k), x1 = _mm256_loadu_ps(q1 + k);
#define XLT_KNN_STEP(c, acc0, acc1)                                    \
  {                                                                    \
    const __m256 y = _mm256_loadu_ps(t0 + (c)*d + k);                  \
    const __m256 e0 = _mm256_sub_ps(x0, y), e1 = _mm256_sub_ps(x1, y); \
    acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(e0, e0));                 \
    acc1 = _mm256_add_ps(acc1, _mm256_mul_ps(e1, e1));                 \
  }
        XLT_KNN_STEP(0, a00, a10)
        XLT_KNN_STEP(1, a01, a11)
        XLT_KNN_STEP(2, a02, a12)
        XLT_KNN_STEP(3, a03, a13)
#undef XLT_KNN_STEP
      }
      const __m256 acc0[4] = {a00, a01, a02, a03}, acc1[4] = {a10, a11, a12, a13};
      for (int c = 0; c < 4; ++c) {
        out[i * nt + j + c] = reduce_lanes(acc0[c], q0, t0 + c * d, d8, d);
        out[(i + 1) * nt + j + c] = reduce_lanes(acc1[c], q1, t0 + c * d, d8, d);
      }
    }
    for (; j < nt; ++j) {
      out[i * nt + j] = squared_distance(q0, t + j * d, d);
      out[(i + 1) * nt + j] = squared_distance(q1, t + j * d, d);
    }
  }
  for (; i < nq; ++i)
    for (int64_t j = 0; j < nt; ++j) out[i * nt + j] = squared_distance(q + i * d, t + j * d, d);
}
#endif

void distance_tile(const float* q, int64_t nq, const float* t, int64_t nt, int64_t d, double* out) {
#ifdef XLT_KNN_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) {
    distance_tile_avx2(q, nq, t, nt, d, out);
    return;
  }
#endif
  distance_tile_generic(q, nq, t, nt, d, out);
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
  const int64_t n = x.rows, d = x.cols;
  KnnGraph g;
  g.n = n;
  g.k = k;
  g.index.assign(static_cast<size_t>(n * k), 0);
  g.sq_distance.assign(static_cast<size_t>(n * k), 0.0);
  // Each block of queries sweeps all targets tile by tile, so a target tile is read from memory
  // once per block; a max-heap per query keeps the k best (distance, index) pairs.
  detail::parallel_blocks(
      n, detail::kPointBlock, threads, [&](int64_t, int64_t begin, int64_t end) {
        const int64_t nq = end - begin;
        std::vector<double> tile(static_cast<size_t>(nq * kTargetTile));
        std::vector<std::vector<std::pair<double, int64_t>>> heaps(static_cast<size_t>(nq));
        for (auto& h : heaps) h.reserve(static_cast<size_t>(k));
        for (int64_t t0 = 0; t0 < n; t0 += kTargetTile) {
          const int64_t nt = std::min(kTargetTile, n - t0);
          distance_tile(x.row(begin), nq, x.row(t0), nt, d, tile.data());
          for (int64_t qi = 0; qi < nq; ++qi) {
            auto& heap = heaps[static_cast<size_t>(qi)];
            for (int64_t tj = 0; tj < nt; ++tj) {
              const int64_t j = t0 + tj;
              if (j == begin + qi) continue;
              const std::pair<double, int64_t> c{tile[static_cast<size_t>(qi * nt + tj)], j};
              if (static_cast<int64_t>(heap.size()) < k) {
                heap.push_back(c);
                std::push_heap(heap.begin(), heap.end());
              } else if (c < heap.front()) {
                std::pop_heap(heap.begin(), heap.end());
                heap.back() = c;
                std::push_heap(heap.begin(), heap.end());
              }
            }
          }
        }
        for (int64_t qi = 0; qi < nq; ++qi) {
          auto& heap = heaps[static_cast<size_t>(qi)];
          std::sort_heap(heap.begin(), heap.end());
          for (int64_t m = 0; m < k; ++m) {
            g.index[static_cast<size_t>((begin + qi) * k + m)] =
                heap[static_cast<size_t>(m)].second;
            g.sq_distance[static_cast<size_t>((begin + qi) * k + m)] =
                heap[static_cast<size_t>(m)].first;
          }
        }
      });
  return g;
}

KnnGraph knn_exact(MatrixView x, int64_t k, uint64_t seed, int threads) {
  return x.cols <= kVpTreeMaxDim ? knn_vptree(x, k, seed, threads) : knn_bruteforce(x, k, threads);
}

}  // namespace xlt::analysis
