// pytorch_model.bin without Python or libtorch: a reader for the files torch.save writes for a
// state dict, with a restricted unpickler that never executes anything.
//
// Container: torch.save (PyTorch >= 1.6) writes a zip archive <name>/data.pkl (the pickle),
// <name>/data/<key> (one record per storage, raw little-endian elements), <name>/version and,
// since 2.x, <name>/byteorder; <name> is the file's stem at save time, so it varies. The zip is
// read with libzip (already linked for dataset archives) rather than a hand-written reader: it
// handles ZIP64, which torch.save switches to past 4 GiB, and checks each record's CRC-32. The
// pre-1.6 format (pickles and raw storages concatenated, _use_new_zipfile_serialization=False)
// is read too.
//
// Unpickler: accepts only the opcodes of pickle protocols 2-5 that torch.save emits for a state
// dict, and only these globals: collections.OrderedDict, torch._utils._rebuild_tensor,
// _rebuild_tensor_v2, _rebuild_parameter, _rebuild_parameter_with_state, and the typed storage
// classes torch.{Double,Float,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage (persistent
// ids via BINPERSID). Anything else (os.system, builtins.eval, INST, ...) is refused at the point
// it appears with a CheckpointError naming the global or opcode and its byte offset; no Python
// object is ever constructed from a name, so nothing can run.
//
// Tensors: strides and storage offsets are honoured (views are materialised contiguous), and
// tensors sharing a storage read it once. Values come out as they are stored (no dtype change).
//
// Usage:
//   auto ckpt = xlt::io::TorchBinCheckpoint::open("pytorch_model.bin");
//   for (const auto& name : ckpt.names()) {
//     xlt::io::OwnedTensor t = ckpt.tensor(name);  // t.view() is a TensorView
//   }
// Thread safety: const methods may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "xlt/io/safetensors.h"

namespace xlt::io {

// A tensor whose bytes it owns (shared with other tensors of the same storage when no copy was
// needed). Contiguous, row-major, little-endian.
struct OwnedTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::shared_ptr<const std::vector<std::byte>> buffer;
  std::size_t offset = 0;  // of the first byte in `buffer`
  std::size_t nbytes = 0;

  const std::byte* data() const { return buffer ? buffer->data() + offset : nullptr; }
  int64_t numel() const;
  // Valid while this OwnedTensor (or a copy of it) lives.
  TensorView view() const;
};

// Where a tensor's elements are, as the pickle describes them.
struct TorchTensorInfo {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;  // in elements
  int64_t storage_offset = 0;   // in elements
  std::string storage_key;      // record name under data/
  int64_t storage_numel = 0;

  // Row-major with no gaps (what can be shared without a copy).
  bool contiguous() const;
};

class TorchBinCheckpoint {
 public:
  // Reads the container and the pickle (not the tensor data). Throws CheckpointError for
  // anything that is not a state dict written by torch.save (naming the refused global or
  // opcode, the tensor, the record), IoError when the file cannot be read.
  static TorchBinCheckpoint open(const std::filesystem::path& path);

  TorchBinCheckpoint(TorchBinCheckpoint&&) noexcept;
  TorchBinCheckpoint& operator=(TorchBinCheckpoint&&) noexcept;
  ~TorchBinCheckpoint();

  const std::filesystem::path& path() const { return path_; }
  // In the state dict's order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(std::string_view name) const;
  // Throws CheckpointError when absent.
  const TorchTensorInfo& info(std::string_view name) const;
  // Reads (or reuses) the storage and returns the tensor contiguous. A storage stays in memory
  // only while a tensor returned from it does.
  OwnedTensor tensor(std::string_view name) const;
  // "zip" or "legacy".
  const std::string& format() const { return format_; }

 private:
  struct Source;
  TorchBinCheckpoint() = default;
  std::shared_ptr<const std::vector<std::byte>> storage(const TorchTensorInfo& info) const;

  std::filesystem::path path_;
  std::string format_;
  std::vector<std::string> names_;
  std::map<std::string, TorchTensorInfo, std::less<>> infos_;
  std::unique_ptr<Source> source_;
};

// Raw pickle access, for tests and tools: parses `pickle` (a whole data.pkl) under the same
// restrictions and returns the state dict's tensors in order. `where` names the data in errors.
std::vector<std::pair<std::string, TorchTensorInfo>> parse_torch_state_dict_pickle(
    std::string_view pickle, const std::string& where);

// Copies the strided elements of `info` out of `storage` into a new contiguous buffer (checks
// that every element lies inside the storage). Exposed for tests.
std::vector<std::byte> materialize_contiguous(const TorchTensorInfo& info, const std::byte* storage,
                                              std::size_t storage_bytes, const std::string& name);

}  // namespace xlt::io
