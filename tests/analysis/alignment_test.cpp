// Tests of the cross-lingual alignment metrics with known answers: identical embeddings retrieve
// perfectly, shuffled pairs retrieve exactly their fixed points, unrelated embeddings sit near
// chance 1/n, mean-centering removes a language offset, hand-computed cosines, tie-breaking, and
// the alignment.csv contract.
#include "xlt/analysis/alignment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <tuple>

#include "common/test_env.h"
#include "xlt/core/error.h"

namespace xlt::analysis {
namespace {

Matrix random_matrix(int64_t n, int64_t d, uint32_t seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  Matrix m(n, d);
  for (float& v : m.data) v = static_cast<float>(scale * normal(rng));
  return m;
}

Matrix from_rows(const std::vector<std::vector<float>>& rows) {
  Matrix m(static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size()));
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j)
      m(static_cast<int64_t>(i), static_cast<int64_t>(j)) = rows[i][j];
  return m;
}

TEST(Alignment, IdenticalEmbeddingsRetrievePerfectly) {
  const Matrix a = random_matrix(150, 64, 1);
  const AlignmentMetrics m = alignment_metrics(a, a, 2);
  EXPECT_DOUBLE_EQ(m.retrieval_a2b, 1.0);
  EXPECT_DOUBLE_EQ(m.retrieval_b2a, 1.0);
  EXPECT_NEAR(m.cos_pairs, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(m.centered_retrieval_a2b, 1.0);
  EXPECT_DOUBLE_EQ(m.centered_retrieval_b2a, 1.0);
  EXPECT_LT(std::fabs(m.cos_random), 0.05);  // independent 64-D Gaussians: cosine ~ N(0, 1/64)
}

TEST(Alignment, ShuffledPairsRetrieveOnlyFixedPoints) {
  const int64_t n = 200;
  const Matrix a = random_matrix(n, 64, 2);
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937 rng(4);
  std::shuffle(perm.begin(), perm.end(), rng);
  Matrix b(n, 64);
  int fixed = 0;
  for (int64_t i = 0; i < n; ++i) {
    fixed += perm[static_cast<size_t>(i)] == i;
    std::copy(a.row(perm[static_cast<size_t>(i)]), a.row(perm[static_cast<size_t>(i)]) + 64,
              b.row(i));
  }
  // b_i = a_perm(i): a_i's nearest b row is the one holding a copy of a_i, correct iff perm(i) = i.
  EXPECT_DOUBLE_EQ(retrieval_accuracy(a, b), fixed / static_cast<double>(n));
  EXPECT_LE(retrieval_accuracy(a, b), 0.05);  // near chance 1/n = 0.005
}

TEST(Alignment, UnrelatedEmbeddingsAreNearChance) {
  const int64_t n = 300;
  const AlignmentMetrics m = alignment_metrics(random_matrix(n, 32, 5), random_matrix(n, 32, 6), 2);
  // Chance is 1/n; a hit count of 5 or more has probability < 0.4% under independence.
  EXPECT_LE(m.retrieval_a2b, 5.0 / n);
  EXPECT_LE(m.retrieval_b2a, 5.0 / n);
  EXPECT_LT(std::fabs(m.cos_pairs - m.cos_random), 0.05);
}

TEST(Alignment, MeanCenteringRemovesALanguageOffset) {
  const int64_t n = 120, d = 48;
  const Matrix a = random_matrix(n, d, 7);
  const Matrix noise = random_matrix(n, d, 8, 0.3);
  const Matrix offset = random_matrix(1, d, 9, 20.0);  // norm ~ 140 vs rows of norm ~ 7
  Matrix b(n, d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) b(i, j) = a(i, j) + noise(i, j) + offset(0, j);
  const AlignmentMetrics m = alignment_metrics(a, b, 2);
  // The offset dominates every b row. Queries from b then mostly score a_j . offset, which does
  // not depend on the query, so b->a retrieval collapses; a->b survives (a_i . offset is the same
  // for every candidate b_j). Centering restores both.
  EXPECT_LT(m.retrieval_b2a, 0.2);
  EXPECT_LT(m.cos_pairs, 0.2);
  EXPECT_DOUBLE_EQ(m.centered_retrieval_a2b, 1.0);
  EXPECT_DOUBLE_EQ(m.centered_retrieval_b2a, 1.0);
  const Matrix c = mean_centered(b);
  for (int64_t j = 0; j < d; ++j) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += c(i, j);
    EXPECT_NEAR(s / n, 0.0, 1e-5);
  }
}

TEST(Alignment, HandComputedCosines) {
  // a = (1,0), (0,1), (1,1); b = (1,0), (1,1), (-1,0).
  const Matrix a = from_rows({{1, 0}, {0, 1}, {1, 1}});
  const Matrix b = from_rows({{1, 0}, {1, 1}, {-1, 0}});
  const double r = 1.0 / std::sqrt(2.0);
  // Pairs: cos(a0,b0) = 1, cos(a1,b1) = r, cos(a2,b2) = -r.
  EXPECT_NEAR(mean_pair_cosine(a, b), (1 + r - r) / 3.0, 1e-12);
  // Off-diagonal: (a0,b1) r, (a0,b2) -1, (a1,b0) 0, (a1,b2) 0, (a2,b0) r, (a2,b1) 1.
  EXPECT_NEAR(mean_random_cosine(a, b), (r - 1 + 0 + 0 + r + 1) / 6.0, 1e-12);
  // Retrieval a->b: a0 -> b0 (1) ok; a1 -> b1 (r) ok; a2 -> b1 (1) wrong. b->a: b0 -> a0 ok;
  // b1 -> a2 wrong; b2 -> a1 (0 > -r, -1) wrong.
  EXPECT_NEAR(retrieval_accuracy(a, b), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(retrieval_accuracy(b, a), 1.0 / 3.0, 1e-12);
  // A zero vector has cosine 0 with everything.
  const Matrix z = from_rows({{0, 0}, {0, 1}});
  EXPECT_NEAR(mean_pair_cosine(z, from_rows({{1, 0}, {0, 1}})), 0.5, 1e-12);
}

TEST(Alignment, RandomPairCosineMatchesBruteForce) {
  const Matrix a = random_matrix(40, 16, 10), b = random_matrix(40, 16, 11);
  double s = 0;
  for (int64_t i = 0; i < 40; ++i) {
    for (int64_t j = 0; j < 40; ++j) {
      if (i == j) continue;
      double dot = 0, na = 0, nb = 0;
      for (int64_t k = 0; k < 16; ++k) {
        dot += double(a(i, k)) * b(j, k);
        na += double(a(i, k)) * a(i, k);
        nb += double(b(j, k)) * b(j, k);
      }
      s += dot / std::sqrt(na * nb);
    }
  }
  EXPECT_NEAR(mean_random_cosine(a, b), s / (40.0 * 39.0), 1e-12);
}

TEST(Alignment, TiesGoToTheLowerIndex) {
  const Matrix a = from_rows({{1, 0}, {1, 0}});
  EXPECT_DOUBLE_EQ(retrieval_accuracy(a, a), 0.5);  // query 1 retrieves target 0
}

TEST(Alignment, ThreadCountDoesNotChangeResults) {
  const Matrix a = random_matrix(130, 24, 12), b = random_matrix(130, 24, 13);
  Matrix c(130, 24);
  for (size_t k = 0; k < c.data.size(); ++k) c.data[k] = a.data[k] + 0.9f * b.data[k];
  const AlignmentMetrics one = alignment_metrics(a, c, 1), three = alignment_metrics(a, c, 3);
  EXPECT_EQ(one.retrieval_a2b, three.retrieval_a2b);
  EXPECT_EQ(one.centered_retrieval_b2a, three.centered_retrieval_b2a);
  EXPECT_GT(one.retrieval_a2b, 0.5);
}

// Brute-force top-1 retrieval (double dot products over unit rows, first maximum wins): the
// reference the GEMM-based retrieval must reproduce exactly.
double brute_force_retrieval(const Matrix& q, const Matrix& t) {
  auto unit = [](const Matrix& m) {
    std::vector<double> u(m.data.size());
    for (int64_t i = 0; i < m.rows; ++i) {
      double n2 = 0;
      for (int64_t k = 0; k < m.cols; ++k) n2 += double(m(i, k)) * m(i, k);
      const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
      for (int64_t k = 0; k < m.cols; ++k) u[size_t(i * m.cols + k)] = m(i, k) * inv;
    }
    return u;
  };
  const std::vector<double> uq = unit(q), ut = unit(t);
  int64_t hits = 0;
  for (int64_t i = 0; i < q.rows; ++i) {
    int64_t best = 0;
    double best_cos = -2.0;
    for (int64_t j = 0; j < t.rows; ++j) {
      double c = 0;
      for (int64_t k = 0; k < q.cols; ++k)
        c += uq[size_t(i * q.cols + k)] * ut[size_t(j * q.cols + k)];
      if (c > best_cos) {
        best_cos = c;
        best = j;
      }
    }
    hits += best == i;
  }
  return double(hits) / double(q.rows);
}

TEST(Alignment, BothDirectionsMatchBruteForceAcrossBlocks) {
  // n > the 512-row GEMM block, so column maxima are carried across blocks; noisy pairs put the
  // accuracy strictly between 0 and 1 in both directions, with different values.
  for (const auto& [n, d, noise] : std::vector<std::tuple<int64_t, int64_t, double>>{
           {700, 24, 1.6}, {37, 5, 0.8}, {1, 3, 1.0}}) {
    const Matrix a = random_matrix(n, d, 20), e = random_matrix(n, d, 21, noise);
    Matrix b(n, d);
    for (size_t k = 0; k < b.data.size(); ++k) b.data[k] = a.data[k] + e.data[k];
    b.data[0] *= 3.0f;  // unequal norms: b2a differs from a2b
    for (int threads : {1, 3}) {
      const RetrievalAccuracy r = retrieval_both_ways(a, b, threads);
      EXPECT_EQ(r.a2b, brute_force_retrieval(a, b)) << n << " " << threads;
      EXPECT_EQ(r.b2a, brute_force_retrieval(b, a)) << n << " " << threads;
      EXPECT_EQ(retrieval_accuracy(b, a, threads), r.b2a);
    }
  }
  const Matrix a = random_matrix(700, 24, 20), e = random_matrix(700, 24, 21, 1.6);
  Matrix b(700, 24);
  for (size_t k = 0; k < b.data.size(); ++k) b.data[k] = a.data[k] + e.data[k];
  const RetrievalAccuracy r = retrieval_both_ways(a, b, 2);
  EXPECT_GT(r.a2b, 0.05);
  EXPECT_LT(r.a2b, 0.95);
}

TEST(Alignment, TiesGoToTheLowerIndexInBothDirections) {
  // b rows 1 and 2 are equal: a1 and a2 both retrieve b1. a rows 0 and 3 are equal: b0 and b3
  // both retrieve a0. A zero query has cosine 0 with every target and retrieves index 0.
  const Matrix a = from_rows({{1, 0, 0}, {0, 1, 0}, {0, 1, 0.1f}, {1, 0, 0}, {0, 0, 0}});
  const Matrix b = from_rows({{1, 0, 0}, {0, 1, 0}, {0, 1, 0}, {1, 0, 0}, {0, 0, 1}});
  const RetrievalAccuracy r = retrieval_both_ways(a, b);
  EXPECT_DOUBLE_EQ(r.a2b, 2.0 / 5.0);  // a0 -> b0, a1 -> b1 hit; a2 -> b1, a3 -> b0, a4 -> b0 miss
  // b0 -> a0 hit; b1 -> a1 hit; b2 -> a1 miss; b3 -> a0 miss; b4 -> a2 (0.1/|a2|) miss.
  EXPECT_DOUBLE_EQ(r.b2a, 2.0 / 5.0);
  EXPECT_EQ(r.a2b, brute_force_retrieval(a, b));
  EXPECT_EQ(r.b2a, brute_force_retrieval(b, a));
}

TEST(Alignment, ByLayerRowsAndCsvContract) {
  const int64_t n = 30, d = 8;
  std::vector<Matrix> store;
  for (int l = 0; l < 3 * 2; ++l) store.push_back(random_matrix(n, d, 100 + l));
  // en and de identical at layer 1; fr unrelated.
  store[3] = store[1];
  std::vector<LanguageLayers> langs = {
      {"en", {store[0], store[1]}}, {"de", {store[2], store[3]}}, {"fr,x", {store[4], store[5]}}};
  const std::vector<AlignmentRow> rows = alignment_by_layer(langs, 2);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0].layer, 0);
  EXPECT_EQ(rows[0].lang_a, "en");
  EXPECT_EQ(rows[0].lang_b, "de");
  EXPECT_EQ(rows[2].lang_a, "de");
  EXPECT_EQ(rows[2].lang_b, "fr,x");
  EXPECT_EQ(rows[3].layer, 1);
  EXPECT_DOUBLE_EQ(rows[3].metrics.retrieval_a2b, 1.0);
  const std::string csv = alignment_csv(rows);
  const std::string header =
      "layer,lang_a,lang_b,retrieval_a2b,retrieval_b2a,cos_pairs,cos_random,"
      "centered_retrieval_a2b,centered_retrieval_b2a\n";
  ASSERT_EQ(csv.substr(0, header.size()), header);
  EXPECT_NE(csv.find("\n1,en,de,1.000000,1.000000,1.000000,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",\"fr,x\","), std::string::npos);  // CSV quoting of odd names
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  test::TempDir tmp;
  write_alignment_csv(tmp / "alignment.csv", rows);
  EXPECT_EQ(test::read_text(tmp / "alignment.csv"), csv);

  langs[1].layers.pop_back();
  EXPECT_THROW(alignment_by_layer(langs), DataError);
  EXPECT_THROW(alignment_by_layer({langs[0]}), DataError);
  EXPECT_THROW(alignment_metrics(random_matrix(5, 3, 1), random_matrix(6, 3, 1)), DataError);
  EXPECT_THROW(alignment_metrics(random_matrix(1, 3, 1), random_matrix(1, 3, 1)), DataError);
}

}  // namespace
}  // namespace xlt::analysis
