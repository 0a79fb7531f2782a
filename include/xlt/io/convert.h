// Converts a PyTorch checkpoint folder (pytorch_model.bin, or its shards listed by
// pytorch_model.bin.index.json) to safetensors, the format every other xlt command reads,
// without Python: tensors keep their names, dtypes and values (views become contiguous copies),
// and the config and tokenizer files are copied alongside. Used by `xlt convert`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace xlt::io {

struct ConvertOptions {
  // Output shards above this many bytes of tensor data (Hugging Face's default: 5 GB).
  uint64_t max_shard_bytes = 5'000'000'000ull;
  bool verify = true;  // re-read each written file and compare every tensor byte for byte
  bool progress = true;
};

struct ConvertResult {
  std::vector<std::string> weight_files;  // written, relative to the output folder
  std::vector<std::string> copied;        // config/tokenizer files copied
  std::vector<std::string> removed;       // stale safetensors weights of an earlier layout
  // Tied weights: (name not written, name written) for each tensor the pickle holds under two
  // names (safetensors has no aliases; transformers re-ties them on load, as xlt does).
  std::vector<std::pair<std::string, std::string>> tied;
  std::size_t tensors = 0;
  uint64_t bytes = 0;                 // tensor data written
  std::map<std::string, int> dtypes;  // "F32" -> count
  double seconds = 0;
};

// `model` is a folder holding pytorch_model.bin (or pytorch_model.bin.index.json) or a .bin file
// (its folder's config/tokenizer files are copied). Writes model.safetensors (or
// model-0000i-of-0000N.safetensors + model.safetensors.index.json) with metadata
// {"format": "pt"} as transformers expects (a tensor named twice, tied weights, written once:
// `tied`), atomically, then removes safetensors weights of an
// earlier layout there (`removed`). Throws CheckpointError (refused pickle,
// duplicate tensors, no .bin, an index and shards that disagree), UsageError (`out_dir` is a
// file), IoError. A failed conversion leaves no folder it created behind.
ConvertResult convert_to_safetensors(const std::filesystem::path& model,
                                     const std::filesystem::path& out_dir,
                                     const ConvertOptions& options = {});

}  // namespace xlt::io
