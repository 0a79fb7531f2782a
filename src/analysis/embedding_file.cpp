// Point-set readers for analyses (see include/xlt/analysis/embedding_file.h).
#include "xlt/analysis/embedding_file.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>

#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/io/safetensors.h"

namespace xlt::analysis {
namespace fs = std::filesystem;
namespace {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal half: normalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float element(const io::TensorView& t, int64_t i) {
  const std::byte* p = t.data + i * static_cast<int64_t>(io::dtype_size(t.dtype));
  switch (t.dtype) {
    case io::DType::F32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case io::DType::F64: {
      double d;
      std::memcpy(&d, p, 8);
      return static_cast<float>(d);
    }
    case io::DType::F16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return half_to_float(h);
    }
    case io::DType::BF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      const uint32_t bits = static_cast<uint32_t>(h) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    default:
      return 0.0f;
  }
}

bool is_float(io::DType d) {
  return d == io::DType::F32 || d == io::DType::F64 || d == io::DType::F16 || d == io::DType::BF16;
}

bool looks_like_safetensors(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char head[9] = {};
  if (!in.read(head, 9)) return false;
  return head[8] == '{';
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return out;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::string text = read_file(path);
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a byte-order mark is not data
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = nl + 1;
  }
  return lines;
}

}  // namespace

std::string default_embedding_tensor(const std::vector<std::string>& names, const fs::path& file) {
  if (names.size() == 1) return names.front();
  const std::string prefix = "embeddings.layer";
  std::string best;
  long best_layer = -1;
  for (const auto& n : names) {
    if (n.rfind(prefix, 0) != 0 || n.size() == prefix.size()) continue;
    const std::string digits = n.substr(prefix.size());
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    const long layer = std::stol(digits);
    if (layer > best_layer) {
      best_layer = layer;
      best = n;
    }
  }
  if (!best.empty()) return best;
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  throw UsageError(
      file.string() + ": " +
      (names.empty() ? std::string("has no 2-D tensor")
                     : "holds several 2-D tensors (" + list + "); choose one with --tensor NAME"));
}

LoadedMatrix load_embedding_matrix(const fs::path& path, const std::string& tensor) {
  if (!fs::exists(path)) throw FileNotFound(path.string() + ": no such file");
  const std::string ext = path.extension().string();
  const bool tsv = ext == ".tsv" || ext == ".txt";
  if (tsv || (ext != ".safetensors" && !looks_like_safetensors(path))) {
    if (!tensor.empty()) {
      throw UsageError("--tensor " + tensor + " applies to safetensors inputs; " + path.string() +
                       " is read as a TSV of vectors");
    }
    return {read_vector_tsv(path), ""};
  }
  const auto file = io::SafetensorsFile::open(path);
  std::vector<std::string> two_d;
  for (const auto& n : file->names()) {
    if (file->tensor(n).shape.size() == 2) two_d.push_back(n);
  }
  const std::string name = tensor.empty() ? default_embedding_tensor(two_d, path) : tensor;
  const io::TensorView* t = file->find(name);
  if (!t) {
    std::string list;
    for (const auto& n : file->names()) list += (list.empty() ? "" : ", ") + n;
    throw DataError(path.string() + ": no tensor '" + name + "' (has: " + list + ")");
  }
  if (t->shape.size() != 2) {
    throw DataError(path.string() + ": tensor '" + name + "' must be 2-D [points, dim], has " +
                    std::to_string(t->shape.size()) + " dimensions");
  }
  if (!is_float(t->dtype)) {
    throw DataError(path.string() + ": tensor '" + name + "' has dtype " +
                    std::string(io::dtype_name(t->dtype)) + ", expected F32, F64, F16 or BF16");
  }
  LoadedMatrix out;
  out.tensor = name;
  out.matrix = Matrix(t->shape[0], t->shape[1]);
  for (int64_t i = 0; i < t->numel(); ++i) {
    const float v = element(*t, i);
    if (!std::isfinite(v)) {
      throw DataError(path.string() + ": " + name + "[" + std::to_string(i / t->shape[1]) + ", " +
                      std::to_string(i % t->shape[1]) + "] is " +
                      (std::isnan(v) ? "NaN" : "infinite") + " (expected finite embeddings)");
    }
    out.matrix.data[static_cast<size_t>(i)] = v;
  }
  return out;
}

Matrix read_vector_tsv(const fs::path& path) {
  const std::vector<std::string> lines = read_lines(path);
  Matrix m;
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    const std::string& line = lines[ln];
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::vector<std::string> fields = split_tabs(line);
    const std::string where = path.string() + ":" + std::to_string(ln + 1);
    if (m.rows == 0) m.cols = static_cast<int64_t>(fields.size());
    if (static_cast<int64_t>(fields.size()) != m.cols) {
      throw DataError(where + ": expected " + std::to_string(m.cols) + " tab-separated values " +
                      "(as on the first row), got " + std::to_string(fields.size()));
    }
    for (size_t c = 0; c < fields.size(); ++c) {
      const std::string& f = fields[c];
      const size_t b = f.find_first_not_of(' '), e = f.find_last_not_of(' ');
      float v = 0.0f;
      const char* first = b == std::string::npos ? f.data() : f.data() + b;
      const char* last = b == std::string::npos ? f.data() : f.data() + e + 1;
      if (*first == '+') ++first;
      const auto [ptr, ec] = std::from_chars(first, last, v);
      if (ec != std::errc() || ptr != last || first == last) {
        throw DataError(where + ": column " + std::to_string(c + 1) + ": expected a number, got '" +
                        f + "'");
      }
      // from_chars reads "nan" and "inf"; one such value poisons every distance it enters.
      if (!std::isfinite(v)) {
        throw DataError(where + ": column " + std::to_string(c + 1) +
                        ": expected a finite number, got '" + f + "'");
      }
      m.data.push_back(v);
    }
    ++m.rows;
  }
  if (m.rows == 0) throw DataError(path.string() + ": no vectors (empty file)");
  return m;
}

int MetadataTable::column(const std::string& name) const {
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c] == name) return static_cast<int>(c);
  }
  return -1;
}

MetadataTable read_metadata_tsv(const fs::path& path) {
  std::vector<std::string> lines = read_lines(path);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty())
    throw DataError(path.string() + ": empty metadata file (expected a header row)");
  MetadataTable t;
  t.columns = split_tabs(lines[0]);
  for (size_t ln = 1; ln < lines.size(); ++ln) {
    std::vector<std::string> fields = split_tabs(lines[ln]);
    if (fields.size() != t.columns.size()) {
      throw DataError(path.string() + ":" + std::to_string(ln + 1) + ": expected " +
                      std::to_string(t.columns.size()) + " tab-separated fields (as in the " +
                      "header), got " + std::to_string(fields.size()));
    }
    t.rows.push_back(std::move(fields));
  }
  return t;
}

}  // namespace xlt::analysis
