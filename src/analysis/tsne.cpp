// t-SNE driver: input checks, perplexity calibration, joint probabilities (dense or kNN-sparse),
// PCA/random initialisation and sklearn's two-phase gradient descent (early exaggeration with
// momentum 0.5, then momentum 0.8; delta-bar-delta gains). Written here because no maintained
// C++ t-SNE library is packaged for Debian 12; plain C++17 + std::thread, no libtorch.
#include "xlt/analysis/tsne.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <tuple>

#include "analysis/parallel.h"
#include "analysis/tsne_internal.h"
#include "xlt/core/error.h"

namespace xlt::analysis {
namespace {

using detail::kPointBlock;
using detail::parallel_blocks;
using detail::squared_distance;

constexpr double kMachineEpsilon = std::numeric_limits<double>::epsilon();
constexpr int kPerplexitySteps = 100;
constexpr int kCheckEvery = 50;  // sklearn's n_iter_check

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

void check_input(MatrixView x) {
  if (x.rows < 2) {
    throw DataError("t-SNE needs at least 2 points, got " + std::to_string(x.rows));
  }
  if (x.cols < 1)
    throw DataError("t-SNE input has no columns (shape [" + std::to_string(x.rows) + ", 0])");
  for (int64_t i = 0; i < x.rows; ++i) {
    const float* r = x.row(i);
    for (int64_t j = 0; j < x.cols; ++j) {
      if (!std::isfinite(r[j])) {
        throw DataError("t-SNE input has a non-finite value at row " + std::to_string(i) +
                        ", column " + std::to_string(j));
      }
    }
  }
}

void check_options(const TsneOptions& o) {
  if (!(o.perplexity > 0.0) || !std::isfinite(o.perplexity)) {
    throw UsageError("t-SNE perplexity must be > 0, got " + fmt(o.perplexity));
  }
  if (o.max_iter < 1)
    throw UsageError("t-SNE iterations must be >= 1, got " + std::to_string(o.max_iter));
  if (!(o.theta >= 0.0 && o.theta <= 1.0)) {
    throw UsageError("t-SNE theta must be in [0, 1], got " + fmt(o.theta));
  }
  if (o.threads < 1)
    throw UsageError("t-SNE threads must be >= 1, got " + std::to_string(o.threads));
  if (!(o.early_exaggeration >= 1.0)) {
    throw UsageError("t-SNE early exaggeration must be >= 1, got " + fmt(o.early_exaggeration));
  }
  if (o.exploration_iter < 0) throw UsageError("t-SNE exploration iterations must be >= 0");
}

// Standard normal deviates from a 64-bit Mersenne Twister via Box-Muller, written out so the
// sequence is the same with every standard library (std::normal_distribution is not specified).
class Normal {
 public:
  explicit Normal(uint64_t seed) : rng_(seed) {}
  double operator()() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1;
    do {
      u1 = uniform();
    } while (u1 <= 0.0);
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * M_PI * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * M_PI * u2);
  }

 private:
  double uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
  std::mt19937_64 rng_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// Eigen-decomposition of a small symmetric matrix (cyclic Jacobi). Returns eigenvalues
// descending and the matching eigenvectors as columns of `vecs` ([k, k] row-major).
void symmetric_eigen(std::vector<double> a, int k, std::vector<double>& vals,
                     std::vector<double>& vecs) {
  std::vector<double> v(static_cast<size_t>(k * k), 0.0);
  for (int i = 0; i < k; ++i) v[static_cast<size_t>(i * k + i)] = 1.0;
  auto at = [k](std::vector<double>& m, int r, int c) -> double& {
    return m[static_cast<size_t>(r * k + c)];
  };
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int r = 0; r < k; ++r)
      for (int c = r + 1; c < k; ++c) off += at(a, r, c) * at(a, r, c);
    if (off < 1e-30) break;
    for (int p = 0; p < k; ++p) {
      for (int q = p + 1; q < k; ++q) {
        const double apq = at(a, p, q);
        if (std::fabs(apq) < 1e-300) continue;
        const double tau = (at(a, q, q) - at(a, p, p)) / (2.0 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::fabs(tau) + std::sqrt(1.0 + tau * tau));
        const double c = 1.0 / std::sqrt(1.0 + t * t), s = t * c;
        for (int r = 0; r < k; ++r) {  // A <- A J
          const double arp = at(a, r, p), arq = at(a, r, q);
          at(a, r, p) = c * arp - s * arq;
          at(a, r, q) = s * arp + c * arq;
        }
        for (int r = 0; r < k; ++r) {  // A <- J^T A
          const double apr = at(a, p, r), aqr = at(a, q, r);
          at(a, p, r) = c * apr - s * aqr;
          at(a, q, r) = s * apr + c * aqr;
        }
        for (int r = 0; r < k; ++r) {
          const double vrp = at(v, r, p), vrq = at(v, r, q);
          at(v, r, p) = c * vrp - s * vrq;
          at(v, r, q) = s * vrp + c * vrq;
        }
      }
    }
  }
  std::vector<int> order(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) order[static_cast<size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int x, int y) { return at(a, x, x) > at(a, y, y); });
  vals.resize(static_cast<size_t>(k));
  vecs.assign(static_cast<size_t>(k * k), 0.0);
  for (int c = 0; c < k; ++c) {
    const int src = order[static_cast<size_t>(c)];
    vals[static_cast<size_t>(c)] = at(a, src, src);
    for (int r = 0; r < k; ++r) vecs[static_cast<size_t>(r * k + c)] = at(v, r, src);
  }
}

// Orthonormalises the k columns of q ([d, k] row-major) in place (modified Gram-Schmidt, run
// twice for stability). Columns that vanish are left at zero.
void orthonormalise(std::vector<double>& q, int64_t d, int k) {
  for (int pass = 0; pass < 2; ++pass) {
    for (int c = 0; c < k; ++c) {
      for (int prev = 0; prev < c; ++prev) {
        double dot = 0.0;
        for (int64_t r = 0; r < d; ++r)
          dot += q[static_cast<size_t>(r * k + c)] * q[static_cast<size_t>(r * k + prev)];
        for (int64_t r = 0; r < d; ++r)
          q[static_cast<size_t>(r * k + c)] -= dot * q[static_cast<size_t>(r * k + prev)];
      }
      double norm = 0.0;
      for (int64_t r = 0; r < d; ++r)
        norm += q[static_cast<size_t>(r * k + c)] * q[static_cast<size_t>(r * k + c)];
      norm = std::sqrt(norm);
      const double inv = norm > 1e-300 ? 1.0 / norm : 0.0;
      for (int64_t r = 0; r < d; ++r) q[static_cast<size_t>(r * k + c)] *= inv;
    }
  }
}

// y = (x - mean) q: [n, k] from x [n, d] and q [d, k].
std::vector<double> project(MatrixView x, const std::vector<double>& mean,
                            const std::vector<double>& q, int k, int threads) {
  std::vector<double> y(static_cast<size_t>(x.rows * k), 0.0);
  parallel_blocks(x.rows, kPointBlock, threads, [&](int64_t, int64_t begin, int64_t end) {
    std::vector<double> centred(static_cast<size_t>(x.cols));
    for (int64_t i = begin; i < end; ++i) {
      const float* r = x.row(i);
      for (int64_t j = 0; j < x.cols; ++j)
        centred[static_cast<size_t>(j)] = r[j] - mean[static_cast<size_t>(j)];
      double* out = y.data() + i * k;
      for (int64_t j = 0; j < x.cols; ++j) {
        const double cj = centred[static_cast<size_t>(j)];
        const double* qr = q.data() + j * k;
        for (int c = 0; c < k; ++c) out[c] += cj * qr[c];
      }
    }
  });
  return y;
}

// Symmetric, normalised sparse P = (C + C^T) / sum from the kNN graph's conditional
// probabilities (sklearn's _joint_probabilities_nn).
detail::SparseP sparse_joint(const KnnGraph& g, const std::vector<double>& cond) {
  struct Entry {
    int64_t row, col;
    double val;
  };
  std::vector<Entry> entries;
  entries.reserve(static_cast<size_t>(2 * g.n * g.k));
  for (int64_t i = 0; i < g.n; ++i) {
    for (int64_t e = 0; e < g.k; ++e) {
      const size_t at = static_cast<size_t>(i * g.k + e);
      entries.push_back({i, g.index[at], cond[at]});
      entries.push_back({g.index[at], i, cond[at]});
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.row, a.col, a.val) < std::tie(b.row, b.col, b.val);
  });
  detail::SparseP p;
  p.n = g.n;
  p.row_ptr.assign(static_cast<size_t>(g.n + 1), 0);
  double total = 0.0;
  for (size_t e = 0; e < entries.size();) {
    size_t f = e;
    double v = 0.0;
    while (f < entries.size() && entries[f].row == entries[e].row &&
           entries[f].col == entries[e].col) {
      v += entries[f].val;
      ++f;
    }
    p.col.push_back(static_cast<int32_t>(entries[e].col));
    p.val.push_back(v);
    ++p.row_ptr[static_cast<size_t>(entries[e].row + 1)];
    total += v;
    e = f;
  }
  for (int64_t i = 0; i < g.n; ++i)
    p.row_ptr[static_cast<size_t>(i + 1)] += p.row_ptr[static_cast<size_t>(i)];
  const double inv = 1.0 / std::max(total, kMachineEpsilon);
  for (double& v : p.val) v *= inv;
  return p;
}

// A breadth-first order of the kNN graph (Cuthill-McKee without its degree sort): neighbours get
// nearby positions. Barnes-Hut runs on the points renumbered this way, so the attractive forces
// read neighbours' coordinates from cache instead of from all over the map (P streams through
// the cache every iteration and evicts them otherwise): 20,000 points ran 1.09x faster. Sequential
// and seed-free, so results stay identical for every thread count.
std::vector<int64_t> locality_order(const detail::SparseP& p) {
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(p.n));
  std::vector<char> seen(static_cast<size_t>(p.n), 0);
  for (int64_t s = 0; s < p.n; ++s) {
    if (seen[static_cast<size_t>(s)]) continue;
    seen[static_cast<size_t>(s)] = 1;
    order.push_back(s);
    for (size_t h = order.size() - 1; h < order.size(); ++h) {
      const int64_t i = order[h];
      for (int64_t e = p.row_ptr[static_cast<size_t>(i)]; e < p.row_ptr[static_cast<size_t>(i + 1)];
           ++e) {
        const int64_t j = p.col[static_cast<size_t>(e)];
        if (seen[static_cast<size_t>(j)]) continue;
        seen[static_cast<size_t>(j)] = 1;
        order.push_back(j);
      }
    }
  }
  return order;
}

// P with point order[r] renumbered r (columns sorted within each row).
detail::SparseP renumber(const detail::SparseP& p, const std::vector<int64_t>& order) {
  std::vector<int64_t> new_index(static_cast<size_t>(p.n));
  for (int64_t r = 0; r < p.n; ++r)
    new_index[static_cast<size_t>(order[static_cast<size_t>(r)])] = r;
  detail::SparseP out;
  out.n = p.n;
  out.row_ptr.assign(static_cast<size_t>(p.n + 1), 0);
  out.col.reserve(p.col.size());
  out.val.reserve(p.val.size());
  std::vector<std::pair<int64_t, double>> row;
  for (int64_t r = 0; r < p.n; ++r) {
    const int64_t i = order[static_cast<size_t>(r)];
    row.clear();
    for (int64_t e = p.row_ptr[static_cast<size_t>(i)]; e < p.row_ptr[static_cast<size_t>(i + 1)];
         ++e) {
      row.emplace_back(new_index[static_cast<size_t>(p.col[static_cast<size_t>(e)])],
                       p.val[static_cast<size_t>(e)]);
    }
    std::sort(row.begin(), row.end());
    for (const auto& [c, v] : row) {
      out.col.push_back(static_cast<int32_t>(c));
      out.val.push_back(v);
    }
    out.row_ptr[static_cast<size_t>(r + 1)] = static_cast<int64_t>(out.col.size());
  }
  return out;
}

// Dense symmetric P with zero diagonal, entries floored at machine epsilon (sklearn's
// _joint_probabilities) from all pairwise squared distances.
std::vector<double> dense_joint(MatrixView x, double perplexity, int threads) {
  const int64_t n = x.rows, k = n - 1;
  std::vector<double> sq(static_cast<size_t>(n * k));
  parallel_blocks(n, kPointBlock, threads, [&](int64_t, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double* out = sq.data() + i * k;
      for (int64_t j = 0, c = 0; j < n; ++j) {
        if (j != i) out[c++] = squared_distance(x.row(i), x.row(j), x.cols);
      }
    }
  });
  const PerplexityCalibration cal = calibrate_perplexity(sq, n, k, perplexity, threads);
  std::vector<double> p(static_cast<size_t>(n * n), 0.0);
  auto cond = [&](int64_t i, int64_t j) {  // p_{j|i}
    return cal.p[static_cast<size_t>(i * k + (j < i ? j : j - 1))];
  };
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const double v = cond(i, j) + cond(j, i);
      p[static_cast<size_t>(i * n + j)] = v;
      total += v;
    }
  }
  const double inv = 1.0 / std::max(total, kMachineEpsilon);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (j != i) {
        double& v = p[static_cast<size_t>(i * n + j)];
        v = std::max(v * inv, kMachineEpsilon);
      }
    }
  }
  return p;
}

std::vector<double> initial_map(MatrixView x, const TsneOptions& o, TsneResult& result) {
  const int64_t n = x.rows;
  std::vector<double> y(static_cast<size_t>(2 * n));
  if (o.init == TsneInit::Pca && std::min(n, x.cols) >= 2) {
    y = pca_scores(x, 2, o.seed, o.threads);
    double mean = 0.0;
    for (int64_t i = 0; i < n; ++i) mean += y[static_cast<size_t>(2 * i)];
    mean /= static_cast<double>(n);
    double var = 0.0;
    for (int64_t i = 0; i < n; ++i) var += std::pow(y[static_cast<size_t>(2 * i)] - mean, 2);
    const double sd = std::sqrt(var / static_cast<double>(n));
    // sklearn: PCA scores / std of the first component * 1e-4.
    const double scale = 1e-4 / (sd > 0.0 ? sd : 1.0);
    for (double& v : y) v *= scale;
    return y;
  }
  if (o.init == TsneInit::Pca) {
    result.warnings.push_back(
        "PCA initialisation needs at least 2 points and 2 dimensions; "
        "using random initialisation");
  }
  Normal normal(o.seed);
  for (double& v : y) v = 1e-4 * normal();
  return y;
}

}  // namespace

PerplexityCalibration calibrate_perplexity(const std::vector<double>& sq, int64_t n, int64_t k,
                                           double perplexity, int threads) {
  if (static_cast<int64_t>(sq.size()) != n * k) {
    throw UsageError("calibrate_perplexity: expected " + std::to_string(n * k) +
                     " distances, got " + std::to_string(sq.size()));
  }
  PerplexityCalibration cal;
  cal.p.assign(static_cast<size_t>(n * k), 0.0);
  cal.beta.assign(static_cast<size_t>(n), 1.0);
  cal.entropy.assign(static_cast<size_t>(n), 0.0);
  const double target = std::log(perplexity);
  parallel_blocks(n, kPointBlock, threads, [&](int64_t, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double* d = sq.data() + i * k;
      double* p = cal.p.data() + i * k;
      // Shifting by the nearest distance changes no probability but keeps exp() from
      // underflowing for far-apart points (sklearn divides by an epsilon there instead).
      const double d_min = k > 0 ? *std::min_element(d, d + k) : 0.0;
      double beta = 1.0, beta_min = -std::numeric_limits<double>::infinity(),
             beta_max = std::numeric_limits<double>::infinity(), entropy = 0.0;
      for (int step = 0; step < kPerplexitySteps; ++step) {
        double sum = 0.0;
        for (int64_t j = 0; j < k; ++j) sum += (p[j] = std::exp(-(d[j] - d_min) * beta));
        double weighted = 0.0;
        for (int64_t j = 0; j < k; ++j) {
          p[j] /= sum;
          weighted += (d[j] - d_min) * p[j];
        }
        entropy = std::log(sum) + beta * weighted;
        const double diff = entropy - target;
        if (std::fabs(diff) <= kPerplexityTolerance) break;
        if (diff > 0.0) {
          beta_min = beta;
          beta = std::isinf(beta_max) ? beta * 2.0 : 0.5 * (beta + beta_max);
        } else {
          beta_max = beta;
          beta = std::isinf(beta_min) ? beta / 2.0 : 0.5 * (beta + beta_min);
        }
      }
      cal.beta[static_cast<size_t>(i)] = beta;
      cal.entropy[static_cast<size_t>(i)] = entropy;
    }
  });
  return cal;
}

std::vector<double> pca_scores(MatrixView x, int components, uint64_t seed, int threads) {
  const int64_t n = x.rows, d = x.cols;
  if (components < 1 || components > std::min(n, d)) {
    throw UsageError("PCA: components must be in [1, min(n, d)] = [1, " +
                     std::to_string(std::min(n, d)) + "], got " + std::to_string(components));
  }
  // Mean by fixed blocks, combined in order.
  const int64_t blocks = detail::block_count(n, kPointBlock);
  std::vector<double> partial(static_cast<size_t>(blocks * d), 0.0);
  parallel_blocks(n, kPointBlock, threads, [&](int64_t b, int64_t begin, int64_t end) {
    double* s = partial.data() + b * d;
    for (int64_t i = begin; i < end; ++i)
      for (int64_t j = 0; j < d; ++j) s[j] += x.row(i)[j];
  });
  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t j = 0; j < d; ++j)
      mean[static_cast<size_t>(j)] += partial[static_cast<size_t>(b * d + j)];
  for (double& m : mean) m /= static_cast<double>(n);

  // Randomised subspace iteration (Halko et al. 2011, as sklearn's randomized PCA): 8 extra
  // directions and 10 power iterations, then Rayleigh-Ritz on the small projected matrix.
  const int k = static_cast<int>(std::min<int64_t>(components + 8, std::min(n, d)));
  std::vector<double> q(static_cast<size_t>(d * k));
  Normal normal(seed ^ 0x9e3779b97f4a7c15ULL);
  for (double& v : q) v = normal();
  orthonormalise(q, d, k);
  for (int it = 0; it < 10; ++it) {
    const std::vector<double> y = project(x, mean, q, k, threads);
    // q <- orth((x - mean)^T y), summed per block then in block order.
    std::fill(partial.begin(), partial.end(), 0.0);
    partial.resize(static_cast<size_t>(blocks * d * k), 0.0);
    parallel_blocks(n, kPointBlock, threads, [&](int64_t b, int64_t begin, int64_t end) {
      double* s = partial.data() + b * d * k;
      for (int64_t i = begin; i < end; ++i) {
        const double* yr = y.data() + i * k;
        for (int64_t j = 0; j < d; ++j) {
          const double cj = x.row(i)[j] - mean[static_cast<size_t>(j)];
          for (int c = 0; c < k; ++c) s[j * k + c] += cj * yr[c];
        }
      }
    });
    std::fill(q.begin(), q.end(), 0.0);
    for (int64_t b = 0; b < blocks; ++b)
      for (size_t e = 0; e < q.size(); ++e) q[e] += partial[static_cast<size_t>(b * d * k) + e];
    orthonormalise(q, d, k);
  }
  const std::vector<double> y = project(x, mean, q, k, threads);
  std::vector<double> gram(static_cast<size_t>(k * k), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b)
        gram[static_cast<size_t>(a * k + b)] +=
            y[static_cast<size_t>(i * k + a)] * y[static_cast<size_t>(i * k + b)];
  std::vector<double> vals, vecs;
  symmetric_eigen(gram, k, vals, vecs);
  std::vector<double> scores(static_cast<size_t>(n * components), 0.0);
  for (int c = 0; c < components; ++c) {
    // Loading of input dimension j on component c is sum_a q[j, a] vecs[a, c]; make the
    // largest-magnitude loading positive (sklearn's svd_flip convention on components).
    double best = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      double l = 0.0;
      for (int a = 0; a < k; ++a)
        l += q[static_cast<size_t>(j * k + a)] * vecs[static_cast<size_t>(a * k + c)];
      if (std::fabs(l) > std::fabs(best)) best = l;
    }
    const double sign = best < 0.0 ? -1.0 : 1.0;
    for (int64_t i = 0; i < n; ++i) {
      double s = 0.0;
      for (int a = 0; a < k; ++a)
        s += y[static_cast<size_t>(i * k + a)] * vecs[static_cast<size_t>(a * k + c)];
      scores[static_cast<size_t>(i * components + c)] = sign * s;
    }
  }
  return scores;
}

TsneResult tsne(MatrixView x, const TsneOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  check_input(x);
  check_options(options);
  TsneOptions o = options;
  TsneResult result;
  const int64_t n = x.rows;
  result.n = n;
  result.perplexity = o.perplexity;
  // scikit-learn's rule: perplexity < n. It raises otherwise; xlt still draws the map (a study's
  // few sentences with the default 30) at bhtsne's (n - 1) / 3, whose 3 * perplexity neighbours
  // fit in the other points (n - 1 itself would make every affinity nearly uniform).
  if (o.perplexity >= static_cast<double>(n)) {
    result.perplexity = static_cast<double>(n - 1) / 3.0;
    result.warnings.push_back("perplexity " + fmt(o.perplexity) + " is too large for " +
                              std::to_string(n) + " points (scikit-learn requires perplexity < " +
                              "n); using " + fmt(result.perplexity));
  }
  result.method = o.method;
  if (o.method == TsneMethod::Auto) {
    result.method = n <= kTsneExactMaxPoints ? TsneMethod::Exact : TsneMethod::BarnesHut;
  }
  result.learning_rate = o.learning_rate > 0.0
                             ? o.learning_rate
                             : std::max(static_cast<double>(n) / o.early_exaggeration / 4.0, 50.0);

  // Affinities.
  std::vector<double> p_dense;
  detail::SparseP p_sparse;
  if (result.method == TsneMethod::Exact) {
    result.neighbors = static_cast<int>(n - 1);
    p_dense = dense_joint(x, result.perplexity, o.threads);
  } else {
    const int64_t k = std::min<int64_t>(n - 1, static_cast<int64_t>(3.0 * result.perplexity + 1.0));
    result.neighbors = static_cast<int>(k);
    const KnnGraph g = knn_exact(x, k, o.seed, o.threads);
    result.knn = x.cols <= kVpTreeMaxDim ? "vp-tree" : "all-pairs";
    const PerplexityCalibration cal =
        calibrate_perplexity(g.sq_distance, n, k, result.perplexity, o.threads);
    p_sparse = sparse_joint(g, cal.p);
  }
  result.affinity_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::vector<double> y = initial_map(x, o, result);
  std::vector<int64_t> order;  // Barnes-Hut works on renumbered points; order[r] = original
  if (result.method != TsneMethod::Exact) {
    order = locality_order(p_sparse);
    p_sparse = renumber(p_sparse, order);
    p_sparse.finish_compact();
    std::vector<double> renumbered(y.size());
    for (size_t r = 0; r < order.size(); ++r) {
      renumbered[2 * r] = y[static_cast<size_t>(2 * order[r])];
      renumbered[2 * r + 1] = y[static_cast<size_t>(2 * order[r] + 1)];
    }
    y.swap(renumbered);
  }
  for (const auto& w : result.warnings) {
    if (o.warn) o.warn(w);
  }
  auto objective = [&](double exaggeration, std::vector<double>& grad, double* kl) {
    if (result.method == TsneMethod::Exact) {
      detail::exact_gradient(p_dense, n, y, exaggeration, o.threads, grad, kl);
    } else {
      detail::barnes_hut_gradient(p_sparse, y, o.theta, exaggeration, o.threads, grad, kl);
    }
  };

  // sklearn's _gradient_descent: one call per phase, each starting with zero update and unit
  // gains; the error is checked every 50 iterations to stop on stagnation or a tiny gradient.
  std::vector<double> grad, update(y.size()), gains(y.size());
  auto phase = [&](int first, int last, double momentum, double exaggeration, int patience) {
    std::fill(update.begin(), update.end(), 0.0);
    std::fill(gains.begin(), gains.end(), 1.0);
    double best_error = std::numeric_limits<double>::max();
    int best_iter = first, it = first;
    for (int i = first; i < last; ++i) {
      it = i;
      const bool check = (i + 1) % kCheckEvery == 0;
      double error = 0.0;
      objective(exaggeration, grad, check ? &error : nullptr);
      double norm2 = 0.0;
      for (size_t c = 0; c < y.size(); ++c) {
        const bool same_sign = update[c] * grad[c] >= 0.0;  // sklearn's `dec`
        gains[c] = same_sign ? gains[c] * 0.8 : gains[c] + 0.2;
        gains[c] = std::max(gains[c], 0.01);
        grad[c] *= gains[c];
        update[c] = momentum * update[c] - result.learning_rate * grad[c];
        y[c] += update[c];
        norm2 += grad[c] * grad[c];
      }
      result.iterations = i + 1;
      if (o.on_progress && (i + 1) % std::max(1, o.progress_every) == 0) {
        o.on_progress(i + 1, o.max_iter);
      }
      if (check) {
        if (error < best_error) {
          best_error = error;
          best_iter = i;
        } else if (i - best_iter > patience) {
          break;
        }
        if (std::sqrt(norm2) <= o.min_grad_norm) break;
      }
    }
    return it;
  };
  const int explore = std::min(o.exploration_iter, o.max_iter);
  int it = explore > 0 ? phase(0, explore, 0.5, o.early_exaggeration, explore) : -1;
  if (it + 1 < o.max_iter) phase(it + 1, o.max_iter, 0.8, 1.0, o.n_iter_without_progress);

  objective(1.0, grad, &result.kl_divergence);
  if (!order.empty()) {
    result.embedding.resize(y.size());
    for (size_t r = 0; r < order.size(); ++r) {
      result.embedding[static_cast<size_t>(2 * order[r])] = y[2 * r];
      result.embedding[static_cast<size_t>(2 * order[r] + 1)] = y[2 * r + 1];
    }
  } else {
    result.embedding = std::move(y);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

double trustworthiness(MatrixView x, const std::vector<double>& y, int y_dim, int k) {
  const int64_t n = x.rows;
  if (static_cast<int64_t>(y.size()) != n * y_dim) {
    throw UsageError("trustworthiness: map has " + std::to_string(y.size()) + " values, expected " +
                     std::to_string(n * y_dim));
  }
  if (k < 1 || 2 * static_cast<int64_t>(k) >= n) {
    throw UsageError("trustworthiness: k must be in [1, n/2), got " + std::to_string(k) +
                     " for n = " + std::to_string(n));
  }
  const int64_t blocks = detail::block_count(n, kPointBlock);
  std::vector<double> penalty(static_cast<size_t>(blocks), 0.0);
  parallel_blocks(n, kPointBlock, 1, [&](int64_t b, int64_t begin, int64_t end) {
    std::vector<std::pair<double, int64_t>> order(static_cast<size_t>(n));
    std::vector<int64_t> rank(static_cast<size_t>(n));
    for (int64_t i = begin; i < end; ++i) {
      // Rank (1 = nearest) of every other point in the input space.
      for (int64_t j = 0; j < n; ++j) {
        order[static_cast<size_t>(j)] = {j == i ? std::numeric_limits<double>::infinity()
                                                : squared_distance(x.row(i), x.row(j), x.cols),
                                         j};
      }
      std::sort(order.begin(), order.end());
      for (int64_t r = 0; r < n; ++r)
        rank[static_cast<size_t>(order[static_cast<size_t>(r)].second)] = r + 1;
      // The k nearest neighbours in the map.
      for (int64_t j = 0; j < n; ++j) {
        double d2 = 0.0;
        for (int c = 0; c < y_dim; ++c) {
          d2 += std::pow(
              y[static_cast<size_t>(i * y_dim + c)] - y[static_cast<size_t>(j * y_dim + c)], 2);
        }
        order[static_cast<size_t>(j)] = {j == i ? std::numeric_limits<double>::infinity() : d2, j};
      }
      std::partial_sort(order.begin(), order.begin() + k, order.end());
      for (int r = 0; r < k; ++r) {
        const int64_t excess = rank[static_cast<size_t>(order[static_cast<size_t>(r)].second)] - k;
        if (excess > 0) penalty[static_cast<size_t>(b)] += static_cast<double>(excess);
      }
    }
  });
  double t = 0.0;
  for (double v : penalty) t += v;
  const double nd = static_cast<double>(n), kd = k;
  return 1.0 - t * (2.0 / (nd * kd * (2.0 * nd - 3.0 * kd - 1.0)));
}

std::string to_string(TsneMethod method) {
  switch (method) {
    case TsneMethod::Auto:
      return "auto";
    case TsneMethod::Exact:
      return "exact";
    case TsneMethod::BarnesHut:
      return "barnes-hut";
  }
  return "auto";
}

std::string to_string(TsneInit init) {
  return init == TsneInit::Pca ? "pca" : "random";
}

TsneMethod parse_tsne_method(const std::string& s) {
  if (s == "auto") return TsneMethod::Auto;
  if (s == "exact") return TsneMethod::Exact;
  if (s == "barnes-hut" || s == "barnes_hut") return TsneMethod::BarnesHut;
  throw UsageError("t-SNE method must be auto, exact or barnes-hut, got '" + s + "'");
}

TsneInit parse_tsne_init(const std::string& s) {
  if (s == "pca") return TsneInit::Pca;
  if (s == "random") return TsneInit::Random;
  throw UsageError("t-SNE init must be pca or random, got '" + s + "'");
}

}  // namespace xlt::analysis
