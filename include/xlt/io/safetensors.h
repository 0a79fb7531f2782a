// safetensors checkpoints: a zero-copy reader (the file is memory-mapped; tensors are views into
// the mapping), sharded checkpoints via model.safetensors.index.json, and an atomic writer that
// lays out the file as the reference implementation does (header padded to 8 bytes, tensors in
// name order). Written here because no C/C++ safetensors library is packaged in Debian 12.
// No libtorch dependency: models convert TensorView to at::Tensor themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace xlt::io {

// "model-00001-of-00002.safetensors": the shard names save_pretrained writes (and no other
// "model-*.safetensors" file a user may keep beside them).
bool is_safetensors_shard_name(const std::string& name);

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// Bytes per element.
std::size_t dtype_size(DType dtype);
// The safetensors spelling ("F32", "BF16", ...).
std::string_view dtype_name(DType dtype);
// Parses a safetensors dtype string; throws CheckpointError for unknown ones.
DType parse_dtype(std::string_view name);

// A tensor inside a mapped file. `data` stays valid while the owning file/checkpoint lives.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  std::size_t nbytes = 0;

  int64_t numel() const;
};

// One .safetensors file, memory-mapped read-only and fully validated on open (header JSON,
// dtypes, offsets in range, ordered and non-overlapping, shape x dtype == byte span, no
// duplicates). Every error is a CheckpointError naming the file and the tensor. Thread-safe for
// concurrent reads.
class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  ~SafetensorsFile();

  const std::filesystem::path& path() const { return path_; }
  // Tensor names in the header's order (sorted by name for files xlt writes).
  const std::vector<std::string>& names() const { return names_; }
  bool contains(std::string_view name) const;
  // Throws CheckpointError when absent.
  const TensorView& tensor(std::string_view name) const;
  const TensorView* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::size_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  void* map_ = nullptr;
  std::size_t size_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, TensorView, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint folder's weights: model.safetensors, or the shards listed by
// model.safetensors.index.json. Names are unique across shards.
class Checkpoint {
 public:
  // `path` is a folder (model.safetensors or its index inside), a .safetensors file, or an
  // index .json file.
  static Checkpoint open(const std::filesystem::path& path);

  std::vector<std::string> names() const;  // sorted
  bool contains(std::string_view name) const;
  const TensorView& tensor(std::string_view name) const;
  const TensorView* find(std::string_view name) const;
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }
  std::size_t total_bytes() const;

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*, std::less<>> index_;
};

// Writes a safetensors file atomically (temp file + rename): header JSON with tensors sorted by
// name, padded with spaces to a multiple of 8 bytes, data in the same order.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace xlt::io
