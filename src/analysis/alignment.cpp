// Cross-lingual alignment metrics (see include/xlt/analysis/alignment.h). Retrieval scores every
// query against every target with one double-precision GEMM (libtorch's BLAS) per block of
// queries; both directions come from the same similarity matrix. The rest is plain C++.
#include "xlt/analysis/alignment.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>

#include "analysis/intra_op_threads.h"
#include "analysis/parallel.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/csv.h"

namespace xlt::analysis {
namespace {

// Rows scaled to unit length (zero rows stay zero), in double so cosines of near-identical
// vectors are not blurred by float rounding.
std::vector<double> unit_rows(MatrixView x) {
  std::vector<double> u(static_cast<size_t>(x.rows * x.cols));
  for (int64_t i = 0; i < x.rows; ++i) {
    double norm = 0.0;
    for (int64_t j = 0; j < x.cols; ++j) norm += static_cast<double>(x(i, j)) * x(i, j);
    norm = std::sqrt(norm);
    const double inv = norm > 0.0 ? 1.0 / norm : 0.0;
    for (int64_t j = 0; j < x.cols; ++j) u[static_cast<size_t>(i * x.cols + j)] = x(i, j) * inv;
  }
  return u;
}

double dot(const double* a, const double* b, int64_t d) {
  double acc[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= d; j += 4) {
    for (int u = 0; u < 4; ++u) acc[u] += a[j + u] * b[j + u];
  }
  double s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  for (; j < d; ++j) s += a[j] * b[j];
  return s;
}

void check_pair(MatrixView a, MatrixView b, int64_t min_rows) {
  if (a.rows != b.rows || a.cols != b.cols) {
    throw DataError("alignment: parallel embeddings must have the same shape, got [" +
                    std::to_string(a.rows) + ", " + std::to_string(a.cols) + "] and [" +
                    std::to_string(b.rows) + ", " + std::to_string(b.cols) + "]");
  }
  if (a.rows < min_rows) {
    throw DataError("alignment: need at least " + std::to_string(min_rows) +
                    " sentence pairs, got " + std::to_string(a.rows));
  }
}

std::string fixed6(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

}  // namespace

RetrievalAccuracy retrieval_both_ways(MatrixView a, MatrixView b, int threads) {
  check_pair(a, b, 1);
  const int64_t n = a.rows, d = a.cols;
  std::vector<double> ua = unit_rows(a), ub = unit_rows(b);
  const detail::IntraOpThreads gemm_threads(std::max(1, threads));
  // from_blob does not copy; the tensors never outlive the vectors.
  const at::Tensor ta = at::from_blob(ua.data(), {n, d}, at::kDouble);
  const at::Tensor tb_t = at::from_blob(ub.data(), {n, d}, at::kDouble).t();
  // Rows of S = A B^T in blocks, so that memory stays O(block n) for any n. Row i of S ranks the
  // b rows for query a_i; column j ranks the a rows for query b_j, scanned in ascending i across
  // blocks. Strict comparisons: ties keep the lower index in both directions.
  const int64_t block = 512;
  std::vector<double> col_best(static_cast<size_t>(n), -2.0);
  std::vector<int64_t> col_arg(static_cast<size_t>(n), 0);
  std::vector<int64_t> row_hits(static_cast<size_t>(detail::block_count(n, 32)), 0);
  for (int64_t r0 = 0; r0 < n; r0 += block) {
    const int64_t nr = std::min(block, n - r0);
    const at::Tensor s = at::mm(ta.narrow(0, r0, nr), tb_t).contiguous();
    const double* sim = s.data_ptr<double>();
    detail::parallel_blocks(nr, 32, threads, [&](int64_t, int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const double* row = sim + r * n;
        int64_t best = 0;
        double best_cos = -2.0;
        for (int64_t j = 0; j < n; ++j) {
          if (row[j] > best_cos) {
            best_cos = row[j];
            best = j;
          }
        }
        if (best == r0 + r) ++row_hits[static_cast<size_t>((r0 + r) / 32)];
      }
    });
    detail::parallel_blocks(n, 256, threads, [&](int64_t, int64_t begin, int64_t end) {
      for (int64_t r = 0; r < nr; ++r) {
        const double* row = sim + r * n;
        for (int64_t j = begin; j < end; ++j) {
          if (row[j] > col_best[static_cast<size_t>(j)]) {
            col_best[static_cast<size_t>(j)] = row[j];
            col_arg[static_cast<size_t>(j)] = r0 + r;
          }
        }
      }
    });
  }
  int64_t hits_a2b = 0, hits_b2a = 0;
  for (int64_t h : row_hits) hits_a2b += h;
  for (int64_t j = 0; j < n; ++j) hits_b2a += col_arg[static_cast<size_t>(j)] == j;
  return {static_cast<double>(hits_a2b) / static_cast<double>(n),
          static_cast<double>(hits_b2a) / static_cast<double>(n)};
}

double retrieval_accuracy(MatrixView queries, MatrixView targets, int threads) {
  return retrieval_both_ways(queries, targets, threads).a2b;
}

double mean_pair_cosine(MatrixView a, MatrixView b) {
  check_pair(a, b, 1);
  const std::vector<double> ua = unit_rows(a), ub = unit_rows(b);
  double s = 0.0;
  for (int64_t i = 0; i < a.rows; ++i)
    s += dot(ua.data() + i * a.cols, ub.data() + i * a.cols, a.cols);
  return s / static_cast<double>(a.rows);
}

double mean_random_cosine(MatrixView a, MatrixView b) {
  check_pair(a, b, 2);
  const int64_t n = a.rows, d = a.cols;
  const std::vector<double> ua = unit_rows(a), ub = unit_rows(b);
  // sum_{i,j} cos(a_i, b_j) = (sum_i u_a,i) . (sum_j u_b,j): O(n d) instead of O(n^2 d).
  std::vector<double> sa(static_cast<size_t>(d), 0.0), sb(static_cast<size_t>(d), 0.0);
  double diagonal = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      sa[static_cast<size_t>(j)] += ua[static_cast<size_t>(i * d + j)];
      sb[static_cast<size_t>(j)] += ub[static_cast<size_t>(i * d + j)];
    }
    diagonal += dot(ua.data() + i * d, ub.data() + i * d, d);
  }
  const double all = dot(sa.data(), sb.data(), d);
  return (all - diagonal) / (static_cast<double>(n) * static_cast<double>(n - 1));
}

Matrix mean_centered(MatrixView x) {
  Matrix out(x.rows, x.cols);
  for (int64_t j = 0; j < x.cols; ++j) {
    double mean = 0.0;
    for (int64_t i = 0; i < x.rows; ++i) mean += x(i, j);
    mean /= static_cast<double>(std::max<int64_t>(x.rows, 1));
    for (int64_t i = 0; i < x.rows; ++i) out(i, j) = static_cast<float>(x(i, j) - mean);
  }
  return out;
}

AlignmentMetrics alignment_metrics(MatrixView a, MatrixView b, int threads) {
  check_pair(a, b, 2);
  AlignmentMetrics m;
  const RetrievalAccuracy plain = retrieval_both_ways(a, b, threads);
  m.retrieval_a2b = plain.a2b;
  m.retrieval_b2a = plain.b2a;
  m.cos_pairs = mean_pair_cosine(a, b);
  m.cos_random = mean_random_cosine(a, b);
  const Matrix ca = mean_centered(a), cb = mean_centered(b);
  const RetrievalAccuracy centered = retrieval_both_ways(ca, cb, threads);
  m.centered_retrieval_a2b = centered.a2b;
  m.centered_retrieval_b2a = centered.b2a;
  return m;
}

std::vector<AlignmentRow> alignment_by_layer(const std::vector<LanguageLayers>& languages,
                                             int threads) {
  if (languages.size() < 2) {
    throw DataError("alignment: need at least 2 languages, got " +
                    std::to_string(languages.size()));
  }
  const size_t layers = languages.front().layers.size();
  for (const auto& l : languages) {
    if (l.layers.size() != layers) {
      throw DataError("alignment: language '" + l.lang + "' has " +
                      std::to_string(l.layers.size()) + " layers, '" + languages.front().lang +
                      "' has " + std::to_string(layers));
    }
  }
  std::vector<AlignmentRow> rows;
  for (size_t layer = 0; layer < layers; ++layer) {
    for (size_t a = 0; a < languages.size(); ++a) {
      for (size_t b = a + 1; b < languages.size(); ++b) {
        AlignmentRow row;
        row.layer = static_cast<int>(layer);
        row.lang_a = languages[a].lang;
        row.lang_b = languages[b].lang;
        try {
          row.metrics =
              alignment_metrics(languages[a].layers[layer], languages[b].layers[layer], threads);
        } catch (const DataError& e) {
          throw DataError(std::string(e.what()) + " (layer " + std::to_string(layer) + ", " +
                          row.lang_a + "-" + row.lang_b + ")");
        }
        rows.push_back(std::move(row));
      }
    }
  }
  return rows;
}

std::string alignment_csv(const std::vector<AlignmentRow>& rows) {
  std::string out = std::string(kAlignmentCsvHeader) + "\n";
  for (const auto& r : rows) {
    const AlignmentMetrics& m = r.metrics;
    out += std::to_string(r.layer) + "," + data::csv_field(r.lang_a) + "," +
           data::csv_field(r.lang_b) + "," + fixed6(m.retrieval_a2b) + "," +
           fixed6(m.retrieval_b2a) + "," + fixed6(m.cos_pairs) + "," + fixed6(m.cos_random) + "," +
           fixed6(m.centered_retrieval_a2b) + "," + fixed6(m.centered_retrieval_b2a) + "\n";
  }
  return out;
}

void write_alignment_csv(const std::filesystem::path& path, const std::vector<AlignmentRow>& rows) {
  write_file_atomic(path, alignment_csv(rows));
}

}  // namespace xlt::analysis
