// Plain row-major float matrices for the analysis code that needs no libtorch (t-SNE, alignment
// metrics): a non-owning view for inputs and a small owning type. Kept torch-free so these
// algorithms can move into a torch-free library and be used on embeddings read from disk.
#pragma once

#include <cstdint>
#include <vector>

namespace xlt::analysis {

// A read-only [rows, cols] row-major float matrix. Does not own `data`; the caller keeps it alive.
struct MatrixView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  const float* row(int64_t i) const { return data + i * cols; }
  float operator()(int64_t i, int64_t j) const { return data[i * cols + j]; }
};

// An owning [rows, cols] row-major float matrix.
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;

  Matrix() = default;
  Matrix(int64_t r, int64_t c, float fill = 0.0f)
      : rows(r), cols(c), data(static_cast<size_t>(r * c), fill) {}

  float* row(int64_t i) { return data.data() + i * cols; }
  const float* row(int64_t i) const { return data.data() + i * cols; }
  float& operator()(int64_t i, int64_t j) { return data[static_cast<size_t>(i * cols + j)]; }
  float operator()(int64_t i, int64_t j) const { return data[static_cast<size_t>(i * cols + j)]; }
  MatrixView view() const { return {data.data(), rows, cols}; }
  operator MatrixView() const { return view(); }
};

}  // namespace xlt::analysis
