// Private to the io module: the weight_map of a sharded checkpoint's index file
// (model.safetensors.index.json or pytorch_model.bin.index.json, {"weight_map": {tensor: file}}),
// read once for the safetensors loader and the pytorch_model.bin converter.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace xlt::io::detail {

// Tensor name -> shard file name (relative to the index; absolute or ".." paths are refused).
// Throws CheckpointError naming the index for malformed JSON, duplicate keys, a missing or
// non-object weight_map, or a non-string entry.
std::map<std::string, std::string> read_weight_map(const std::filesystem::path& index);

}  // namespace xlt::io::detail
