// Reading point sets for analyses such as `xlt tsne`: a [n, d] float matrix from a safetensors
// file (one 2-D F32/F64/F16/BF16 tensor, chosen by name or by rule) or from a TSV of vectors, and
// a metadata TSV (header row, one row per point: sentence, lang, ...) whose columns label the
// points. Errors name the file, the line or tensor, and what was expected. No libtorch.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "xlt/analysis/matrix.h"

namespace xlt::analysis {

struct LoadedMatrix {
  Matrix matrix;
  std::string tensor;  // the safetensors tensor read; empty for a TSV
};

// Picks the tensor to analyse from a safetensors file's 2-D tensors: the only one, else the
// `embeddings.layer{L}` with the largest L. Throws UsageError listing the candidates otherwise.
std::string default_embedding_tensor(const std::vector<std::string>& names_2d,
                                     const std::filesystem::path& file);

// Reads `path`: a safetensors file (by extension, or by its header when the extension is not
// .tsv/.txt) or a TSV of vectors (one row per point, tab-separated floats; blank lines skipped).
// `tensor` selects a safetensors tensor (empty = default_embedding_tensor). Throws DataError /
// CheckpointError / IoError naming the file.
LoadedMatrix load_embedding_matrix(const std::filesystem::path& path,
                                   const std::string& tensor = "");

// Just the TSV-of-vectors reader. Every row must have the same number of columns.
Matrix read_vector_tsv(const std::filesystem::path& path);

struct MetadataTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // rows[i][c]; every row has columns.size() fields

  // Index of `name` in columns, or -1.
  int column(const std::string& name) const;
};

// A TSV with a header row. Fields are split on tabs (no quoting); a trailing CR is dropped.
// Throws DataError (file:line) when a row's field count differs from the header's.
MetadataTable read_metadata_tsv(const std::filesystem::path& path);

}  // namespace xlt::analysis
