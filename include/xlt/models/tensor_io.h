// at::Tensor <-> safetensors: reading named tensors from a .safetensors file (inputs for
// `xlt forward`, reference outputs) and writing them back atomically, plus the zero-copy
// TensorView -> at::Tensor conversion the model loader uses.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "xlt/io/safetensors.h"

namespace xlt::models {

// A tensor over the view's bytes, no copy: valid only while the owning file is open, and must not
// be written to (the mapping is read-only).
at::Tensor tensor_from_view(const io::TensorView& view);

// Every tensor of a .safetensors file, copied into memory (safe after the file is closed).
std::map<std::string, at::Tensor> read_tensors(const std::filesystem::path& path);

// Writes tensors (moved to CPU, made contiguous; any dtype safetensors supports) atomically.
void write_tensors(const std::filesystem::path& path,
                   const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata = {});

}  // namespace xlt::models
