// Gradients of the t-SNE objective KL(P || Q) for a 2-D map: exact (all pairs, O(n^2)) and
// Barnes-Hut (sparse attractive forces over the kNN graph + quadtree-approximated repulsive
// forces, O(n log n)). Both follow sklearn's _kl_divergence / _kl_divergence_bh (Student-t with
// one degree of freedom, gradient factor 4) so maps and KL values are comparable with sklearn's.
// Per-point work is parallel; every sum over points is taken per fixed block and the block sums
// combined in order, so results are identical for any thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "analysis/parallel.h"
#include "analysis/tsne_internal.h"

namespace xlt::analysis::detail {
namespace {

constexpr double kMachineEpsilon = std::numeric_limits<double>::epsilon();
// sklearn's FLOAT32_TINY guard in the Barnes-Hut KL.
constexpr double kFloat32Tiny = 1.1754943508222875e-38;

double ordered_sum(const std::vector<double>& block_sums) {
  double s = 0.0;
  for (double v : block_sums) s += v;
  return s;
}

// A quadtree over the map, rebuilt every iteration, stored in depth-first preorder with a skip
// link per node (the index just past its subtree). A traversal is then a forward scan that either
// descends (next node) or skips the subtree: no stack, memory read mostly forwards, the same
// cells visited in the same order as a recursive descent.
class QuadTree {
 public:
  // 32 bytes, so two nodes share a cache line.
  struct Node {
    double com_x = 0, com_y = 0;  // centre of mass
    float width2 = 0;             // squared side length of the cell
    int32_t count = 0;            // points in the cell
    int32_t first = 0;            // one-point leaf: the point; other leaf: its start in order_
    int32_t next = 0;             // index after this node's subtree; a leaf's is its own + 1
  };

  explicit QuadTree(const std::vector<double>& y) : y_(y) {
    const int64_t n = static_cast<int64_t>(y.size() / 2);
    order_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order_[static_cast<size_t>(i)] = i;
    scratch_.resize(order_.size());
    double min_x = y[0], max_x = y[0], min_y = y[1], max_y = y[1];
    for (int64_t i = 1; i < n; ++i) {
      min_x = std::min(min_x, y[2 * i]);
      max_x = std::max(max_x, y[2 * i]);
      min_y = std::min(min_y, y[2 * i + 1]);
      max_y = std::max(max_y, y[2 * i + 1]);
    }
    const double half = 0.5 * std::max(max_x - min_x, max_y - min_y) * (1.0 + 1e-6) + 1e-12;
    nodes_.reserve(static_cast<size_t>(2 * n + 1));
    build(0.5 * (min_x + max_x), 0.5 * (min_y + max_y), half, 0, n, 0);
  }

  const std::vector<Node>& nodes() const { return nodes_; }
  int64_t point(int64_t r) const { return order_[static_cast<size_t>(r)]; }
  // The points in leaf order: neighbours in the map are neighbours here, so consecutive
  // traversals walk nearly the same cells.
  const std::vector<int64_t>& order() const { return order_; }

 private:
  static constexpr int kMaxDepth = 50;

  void build(double cx, double cy, double half, int64_t begin, int64_t end, int depth) {
    const auto id = static_cast<size_t>(nodes_.size());
    nodes_.push_back(Node{});
    double sx = 0, sy = 0;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = order_[static_cast<size_t>(r)];
      sx += y_[static_cast<size_t>(2 * i)];
      sy += y_[static_cast<size_t>(2 * i + 1)];
    }
    {
      Node& node = nodes_[id];
      node.count = static_cast<int32_t>(end - begin);
      node.com_x = sx / static_cast<double>(node.count);
      node.com_y = sy / static_cast<double>(node.count);
      node.width2 = static_cast<float>(4.0 * half * half);
      node.first =
          static_cast<int32_t>(end - begin == 1 ? order_[static_cast<size_t>(begin)] : begin);
      node.next = static_cast<int32_t>(id + 1);
    }
    // Cells of one point are leaves; so are cells at the depth limit (duplicate points).
    if (end - begin <= 1 || depth >= kMaxDepth) return;

    // Stable counting sort of the points into quadrants q = (x >= cx) + 2 (y >= cy).
    int64_t counts[4] = {0, 0, 0, 0};
    auto quadrant = [&](int64_t i) {
      return (y_[static_cast<size_t>(2 * i)] >= cx ? 1 : 0) +
             (y_[static_cast<size_t>(2 * i + 1)] >= cy ? 2 : 0);
    };
    for (int64_t r = begin; r < end; ++r) ++counts[quadrant(order_[static_cast<size_t>(r)])];
    int64_t start[4];
    start[0] = begin;
    for (int q = 1; q < 4; ++q) start[q] = start[q - 1] + counts[q - 1];
    int64_t fill[4] = {start[0], start[1], start[2], start[3]};
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = order_[static_cast<size_t>(r)];
      scratch_[static_cast<size_t>(fill[quadrant(i)]++)] = i;
    }
    std::copy(scratch_.begin() + begin, scratch_.begin() + end, order_.begin() + begin);

    const double h = 0.5 * half;
    for (int q = 0; q < 4; ++q) {
      if (counts[q] == 0) continue;
      const double ccx = cx + ((q & 1) ? h : -h);
      const double ccy = cy + ((q & 2) ? h : -h);
      build(ccx, ccy, h, start[q], start[q] + counts[q], depth + 1);
    }
    nodes_[id].next = static_cast<int32_t>(nodes_.size());
  }

  const std::vector<double>& y_;
  std::vector<int64_t> order_, scratch_;
  std::vector<Node> nodes_;
};

// Repulsive force on point i: sum over cells of count * q^2 * (y_i - com), and the cell's share
// of the normalisation Z = sum_{j != i} q_ij, with q = 1 / (1 + |y_i - y_j|^2).
void repulsion(const QuadTree& tree, const std::vector<double>& y, int64_t i, double theta2,
               double& fx, double& fy, double& z) {
  const double xi = y[static_cast<size_t>(2 * i)], yi = y[static_cast<size_t>(2 * i + 1)];
  const std::vector<QuadTree::Node>& all = tree.nodes();
  const QuadTree::Node* nodes = all.data();
  const auto end = static_cast<int32_t>(all.size());
  fx = fy = z = 0.0;
  int32_t id = 0;
  while (id < end) {
    const QuadTree::Node& node = nodes[id];
    const double dx = xi - node.com_x, dy = yi - node.com_y;
    const double d2 = dx * dx + dy * dy;
    if (node.next == id + 1) {  // a leaf
      id = node.next;
      if (node.count == 1) {  // the common leaf: its centre of mass is the point itself
        if (node.first == i) continue;
        const double q = 1.0 / (1.0 + d2);
        z += q;
        fx += q * q * dx;
        fy += q * q * dy;
        continue;
      }
      // Several identical points (depth limit). Skip i itself.
      for (int64_t r = node.first; r < node.first + node.count; ++r) {
        const int64_t j = tree.point(r);
        if (j == i) continue;
        const double ex = xi - y[static_cast<size_t>(2 * j)];
        const double ey = yi - y[static_cast<size_t>(2 * j + 1)];
        const double q = 1.0 / (1.0 + ex * ex + ey * ey);
        z += q;
        fx += q * q * ex;
        fy += q * q * ey;
      }
      continue;
    }
    if (static_cast<double>(node.width2) < theta2 * d2) {
      const double q = 1.0 / (1.0 + d2);
      const double c = static_cast<double>(node.count);
      z += c * q;
      fx += c * q * q * dx;
      fy += c * q * q * dy;
      id = node.next;
      continue;
    }
    ++id;
  }
}

}  // namespace

void exact_gradient(const std::vector<double>& p, int64_t n, const std::vector<double>& y,
                    double exaggeration, int threads, std::vector<double>& grad, double* kl) {
  const int64_t blocks = block_count(n, kPointBlock);
  std::vector<double> z_block(static_cast<size_t>(blocks), 0.0);
  // The loops run over j == i too, without a branch, so they vectorise: the self term has
  // q-numerator 1 (subtracted from Z below) and p_ii = 0 with y_i - y_i = 0, so it adds nothing
  // to the gradient or the KL.
  parallel_blocks(n, kPointBlock, threads, [&](int64_t b, int64_t begin, int64_t end) {
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      const double xi = y[static_cast<size_t>(2 * i)], yi = y[static_cast<size_t>(2 * i + 1)];
      double row = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        const double dx = xi - y[static_cast<size_t>(2 * j)];
        const double dy = yi - y[static_cast<size_t>(2 * j + 1)];
        row += 1.0 / (1.0 + dx * dx + dy * dy);
      }
      s += row - 1.0;
    }
    z_block[static_cast<size_t>(b)] = s;
  });
  const double z = ordered_sum(z_block);
  const double inv_z = 1.0 / z;
  std::vector<double> kl_block(static_cast<size_t>(blocks), 0.0);
  grad.assign(static_cast<size_t>(2 * n), 0.0);
  parallel_blocks(n, kPointBlock, threads, [&](int64_t b, int64_t begin, int64_t end) {
    double kl_sum = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      const double xi = y[static_cast<size_t>(2 * i)], yi = y[static_cast<size_t>(2 * i + 1)];
      const double* prow = p.data() + i * n;
      double gx = 0.0, gy = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        const double dx = xi - y[static_cast<size_t>(2 * j)];
        const double dy = yi - y[static_cast<size_t>(2 * j + 1)];
        const double w = 1.0 / (1.0 + dx * dx + dy * dy);
        const double q = std::max(w * inv_z, kMachineEpsilon);
        const double mult = (exaggeration * prow[j] - q) * w;
        gx += mult * dx;
        gy += mult * dy;
      }
      grad[static_cast<size_t>(2 * i)] = 4.0 * gx;
      grad[static_cast<size_t>(2 * i + 1)] = 4.0 * gy;
      if (!kl) continue;
      for (int64_t j = 0; j < n; ++j) {
        if (j == i) continue;
        const double dx = xi - y[static_cast<size_t>(2 * j)];
        const double dy = yi - y[static_cast<size_t>(2 * j + 1)];
        const double q = std::max(inv_z / (1.0 + dx * dx + dy * dy), kMachineEpsilon);
        const double pij = exaggeration * prow[j];
        kl_sum += pij * std::log(std::max(pij, kMachineEpsilon) / q);
      }
    }
    kl_block[static_cast<size_t>(b)] = kl_sum;
  });
  if (kl) *kl = ordered_sum(kl_block);
}

void barnes_hut_gradient(const SparseP& p, const std::vector<double>& y, double theta,
                         double exaggeration, int threads, std::vector<double>& grad, double* kl) {
  const int64_t n = p.n;
  const QuadTree tree(y);
  const double theta2 = theta * theta;
  const int64_t blocks = block_count(n, kPointBlock);
  std::vector<double> z_block(static_cast<size_t>(blocks), 0.0);
  std::vector<double> pos(static_cast<size_t>(2 * n)), neg(static_cast<size_t>(2 * n));
  // Repulsion in leaf order: consecutive points are neighbours in the map, so their traversals
  // walk nearly the same cells. The fixed blocks of that order keep Z's summation order
  // independent of the thread count.
  const std::vector<int64_t>& order = tree.order();
  parallel_blocks(n, kPointBlock, threads, [&](int64_t b, int64_t begin, int64_t end) {
    double zs = 0.0;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = order[static_cast<size_t>(r)];
      double fx, fy, zi;
      repulsion(tree, y, i, theta2, fx, fy, zi);
      neg[static_cast<size_t>(2 * i)] = fx;
      neg[static_cast<size_t>(2 * i + 1)] = fy;
      zs += zi;
    }
    z_block[static_cast<size_t>(b)] = zs;
  });
  // Attractive forces in float32, as sklearn computes them: the loop is bound by the division
  // and by streaming P, and both halve. The per-point sums stay in a fixed order.
  std::vector<float> yf(y.begin(), y.end());
  const auto exag = static_cast<float>(exaggeration);
  parallel_blocks(n, kPointBlock, threads, [&](int64_t, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float xi = yf[static_cast<size_t>(2 * i)], yi = yf[static_cast<size_t>(2 * i + 1)];
      float ax = 0.0f, ay = 0.0f;
      for (int64_t e = p.row_ptr[static_cast<size_t>(i)]; e < p.row_ptr[static_cast<size_t>(i + 1)];
           ++e) {
        const int32_t j = p.col[static_cast<size_t>(e)];
        const float dx = xi - yf[static_cast<size_t>(2 * j)];
        const float dy = yi - yf[static_cast<size_t>(2 * j + 1)];
        const float w = exag * p.val32[static_cast<size_t>(e)] / (1.0f + dx * dx + dy * dy);
        ax += w * dx;
        ay += w * dy;
      }
      pos[static_cast<size_t>(2 * i)] = ax;
      pos[static_cast<size_t>(2 * i + 1)] = ay;
    }
  });
  const double z = ordered_sum(z_block);
  grad.resize(static_cast<size_t>(2 * n));
  for (size_t c = 0; c < grad.size(); ++c) grad[c] = 4.0 * (pos[c] - neg[c] / z);
  if (!kl) return;
  std::vector<double> kl_block(static_cast<size_t>(blocks), 0.0);
  parallel_blocks(n, kPointBlock, threads, [&](int64_t b, int64_t begin, int64_t end) {
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t e = p.row_ptr[static_cast<size_t>(i)]; e < p.row_ptr[static_cast<size_t>(i + 1)];
           ++e) {
        const int64_t j = p.col[static_cast<size_t>(e)];
        const double dx = y[static_cast<size_t>(2 * i)] - y[static_cast<size_t>(2 * j)];
        const double dy = y[static_cast<size_t>(2 * i + 1)] - y[static_cast<size_t>(2 * j + 1)];
        const double q = 1.0 / (1.0 + dx * dx + dy * dy) / z;
        const double pij = exaggeration * p.val[static_cast<size_t>(e)];
        s += pij * std::log(std::max(pij, kFloat32Tiny) / std::max(q, kFloat32Tiny));
      }
    }
    kl_block[static_cast<size_t>(b)] = s;
  });
  *kl = ordered_sum(kl_block);
}

}  // namespace xlt::analysis::detail
