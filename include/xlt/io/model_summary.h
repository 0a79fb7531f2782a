// What `xlt inspect` reports about a model folder, without loading it into libtorch: the config's
// architecture and sizes, the checkpoint's files, tensors, dtypes and parameter counts.
//
//   auto s = xlt::io::summarize_model(xlt::io::resolve_model_location("bert_tiny"));
//   std::cout << s.to_json().dump(2);
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "xlt/io/config.h"
#include "xlt/io/hub_cache.h"
#include "xlt/io/safetensors.h"

namespace xlt::io {

struct TensorSummary {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  std::string file;  // file name of the shard holding it
  bool embedding = false;
  // Why it is not among the parameters: "buffer" (an integer tensor such as position_ids) or
  // "tied" (an output projection tied to the input embeddings); "" = a parameter.
  std::string role;
};

struct FileSummary {
  std::filesystem::path path;
  std::uint64_t bytes = 0;
  std::size_t tensors = 0;
};

struct ModelSummary {
  ModelLocation location;
  std::optional<ModelConfig> config;  // absent when a bare .safetensors file has no config.json
  std::vector<FileSummary> files;
  std::vector<TensorSummary> tensors;  // sorted by name
  // As Hugging Face's num_parameters(): numel over the stored tensors that are parameters (not
  // integer buffers, not heads tied to the input embeddings; TensorSummary::role).
  int64_t num_parameters = 0;
  // Without the input embedding matrices (word/position/token-type embeddings, XGLM's
  // embed_tokens), which dominate multilingual models' size.
  int64_t num_parameters_without_embeddings = 0;
  std::map<std::string, int64_t> dtype_parameters;  // "F32" -> parameters stored in it
  std::uint64_t total_bytes = 0;

  // The `xlt inspect --json` object (model_type, architectures, num_parameters,
  // num_parameters_without_embeddings, num_layers, hidden_size, num_heads, vocab_size, dtypes,
  // ...; "tensors" only when `with_tensors`). Fields the config would give are null without one.
  nlohmann::ordered_json to_json(bool with_tensors) const;
};

// True for the input embedding matrices counted out of num_parameters_without_embeddings.
bool is_embedding_tensor(const std::string& name);

// Reads config.json (when `location.path` is a folder, or beside a .safetensors file) and the
// checkpoint's headers. Throws ConfigError / CheckpointError / IoError naming the file.
ModelSummary summarize_model(const ModelLocation& location);
// A local folder or .safetensors file.
ModelSummary summarize_model(const std::filesystem::path& path);

}  // namespace xlt::io
