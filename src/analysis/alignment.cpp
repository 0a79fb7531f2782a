// Cross-lingual alignment metrics (see include/xlt/analysis/alignment.h). Plain C++, no libtorch.
#include "xlt/analysis/alignment.h"

#include <cmath>
#include <cstdio>

#include "analysis/parallel.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"

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

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string fixed6(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

}  // namespace

double retrieval_accuracy(MatrixView queries, MatrixView targets, int threads) {
  check_pair(queries, targets, 1);
  const int64_t n = queries.rows, d = queries.cols;
  const std::vector<double> q = unit_rows(queries), t = unit_rows(targets);
  // Each block of queries sweeps all targets with the target row outermost, so a target row is
  // read from memory once per block rather than once per query.
  const int64_t block = 32;
  std::vector<int64_t> hits(static_cast<size_t>(detail::block_count(n, block)), 0);
  detail::parallel_blocks(n, block, threads, [&](int64_t b, int64_t begin, int64_t end) {
    std::vector<int64_t> best(static_cast<size_t>(end - begin), 0);
    std::vector<double> best_cos(static_cast<size_t>(end - begin), -2.0);
    for (int64_t j = 0; j < n; ++j) {
      const double* tj = t.data() + j * d;
      for (int64_t i = begin; i < end; ++i) {
        const double c = dot(q.data() + i * d, tj, d);
        const auto r = static_cast<size_t>(i - begin);
        if (c > best_cos[r]) {  // strict: ties keep the lower index
          best_cos[r] = c;
          best[r] = j;
        }
      }
    }
    for (int64_t i = begin; i < end; ++i) {
      if (best[static_cast<size_t>(i - begin)] == i) ++hits[static_cast<size_t>(b)];
    }
  });
  int64_t total = 0;
  for (int64_t h : hits) total += h;
  return static_cast<double>(total) / static_cast<double>(n);
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
  m.retrieval_a2b = retrieval_accuracy(a, b, threads);
  m.retrieval_b2a = retrieval_accuracy(b, a, threads);
  m.cos_pairs = mean_pair_cosine(a, b);
  m.cos_random = mean_random_cosine(a, b);
  const Matrix ca = mean_centered(a), cb = mean_centered(b);
  m.centered_retrieval_a2b = retrieval_accuracy(ca, cb, threads);
  m.centered_retrieval_b2a = retrieval_accuracy(cb, ca, threads);
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
    out += std::to_string(r.layer) + "," + csv_field(r.lang_a) + "," + csv_field(r.lang_b) + "," +
           fixed6(m.retrieval_a2b) + "," + fixed6(m.retrieval_b2a) + "," + fixed6(m.cos_pairs) +
           "," + fixed6(m.cos_random) + "," + fixed6(m.centered_retrieval_a2b) + "," +
           fixed6(m.centered_retrieval_b2a) + "\n";
  }
  return out;
}

void write_alignment_csv(const std::filesystem::path& path, const std::vector<AlignmentRow>& rows) {
  write_file_atomic(path, alignment_csv(rows));
}

}  // namespace xlt::analysis
