// Helpers for the data-driven parity tests: fixture discovery (every folder under fixtures_dir()
// holding ref.safetensors), reading reference tensors, and element-wise comparison with a stated
// tolerance that reports the worst element. Header-only: the suite globs only *_test.cpp.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/test_env.h"
#include "xlt/core/file.h"
#include "xlt/io/safetensors.h"
#include "xlt/models/tensor_io.h"

namespace xlt::test {
namespace fs = std::filesystem;

// Model fixture folders (holding ref.safetensors), sorted; empty when the fixtures are absent.
inline std::vector<std::filesystem::path> model_fixture_dirs();

struct Reference {
  std::filesystem::path dir;
  std::shared_ptr<io::SafetensorsFile> file;
  nlohmann::json manifest;
  bool has(const std::string& name) const { return file->contains(name); }
  // A copy (the mapping may go away before the tensor).
  at::Tensor get(const std::string& name) const;
};
inline Reference load_reference(const std::filesystem::path& dir);

// |got - ref| <= atol + rtol * |ref| element-wise (as torch.allclose). Returns the max abs diff
// and adds a gtest failure naming `what`, the worst index and both values when violated.
inline double expect_close(const at::Tensor& got, const at::Tensor& ref, double atol, double rtol,
                           const std::string& what);

// A readable gtest name from a fixture folder ("bert_tiny").
inline std::string fixture_name(const std::filesystem::path& dir);

inline std::vector<fs::path> model_fixture_dirs() {
  std::vector<fs::path> dirs;
  std::error_code ec;
  const fs::path root = fixtures_dir();
  if (!fs::is_directory(root, ec)) return dirs;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file() && it->path().filename() == "ref.safetensors") {
      dirs.push_back(it->path().parent_path());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

inline at::Tensor Reference::get(const std::string& name) const {
  return models::tensor_from_view(file->tensor(name)).clone();
}

inline Reference load_reference(const fs::path& dir) {
  Reference r;
  r.dir = dir;
  r.file = io::SafetensorsFile::open(dir / "ref.safetensors");
  r.manifest = nlohmann::json::parse(read_file(dir / "manifest.json"));
  return r;
}

inline double expect_close(const at::Tensor& got_in, const at::Tensor& ref_in, double atol,
                           double rtol, const std::string& what) {
  if (!got_in.defined()) {
    ADD_FAILURE() << what << ": not computed";
    return 1e30;
  }
  auto got = got_in.detach().to(at::kCPU, at::kDouble);
  auto ref = ref_in.detach().to(at::kCPU, at::kDouble);
  if (got.sizes() != ref.sizes()) {
    // Scalars are stored with shape [1] in the fixtures.
    if (got.numel() == ref.numel()) {
      got = got.reshape(ref.sizes());
    } else {
      ADD_FAILURE() << what << ": shape " << got.sizes() << ", reference " << ref.sizes();
      return 1e30;
    }
  }
  if (ref.numel() == 0) return 0.0;
  auto diff = (got - ref).abs();
  auto excess = diff - (atol + rtol * ref.abs());
  const double max_diff = diff.max().item<double>();
  const int64_t worst = excess.reshape(-1).argmax().item<int64_t>();
  if (excess.reshape(-1)[worst].item<double>() > 0 || !std::isfinite(max_diff)) {
    ADD_FAILURE() << what << ": |got - ref| exceeds " << atol << " + " << rtol
                  << " * |ref| at flat index " << worst << ": got "
                  << got.reshape(-1)[worst].item<double>() << ", ref "
                  << ref.reshape(-1)[worst].item<double>() << " (max abs diff " << max_diff << ")";
  }
  return max_diff;
}

inline std::string fixture_name(const fs::path& dir) {
  auto rel = fs::relative(dir, fixtures_dir()).string();
  for (auto& c : rel) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return rel.empty() ? "root" : rel;
}

}  // namespace xlt::test
