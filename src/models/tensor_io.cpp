// at::Tensor <-> safetensors conversion (see tensor_io.h).
#include "xlt/models/tensor_io.h"

#include <ATen/ATen.h>

#include "xlt/core/error.h"

namespace xlt::models {

at::Tensor tensor_from_view(const io::TensorView& v) {
  at::ScalarType st = at::kFloat;
  switch (v.dtype) {
    case io::DType::F64:
      st = at::kDouble;
      break;
    case io::DType::F32:
      st = at::kFloat;
      break;
    case io::DType::F16:
      st = at::kHalf;
      break;
    case io::DType::BF16:
      st = at::kBFloat16;
      break;
    case io::DType::I64:
      st = at::kLong;
      break;
    case io::DType::I32:
      st = at::kInt;
      break;
    case io::DType::I16:
      st = at::kShort;
      break;
    case io::DType::I8:
      st = at::kChar;
      break;
    case io::DType::U8:
      st = at::kByte;
      break;
    case io::DType::BOOL:
      st = at::kBool;
      break;
  }
  // from_blob takes a mutable pointer; callers only read through it (copy_ from it, clone()).
  return at::from_blob(const_cast<std::byte*>(v.data), v.shape, at::TensorOptions().dtype(st));
}

std::map<std::string, at::Tensor> read_tensors(const std::filesystem::path& path) {
  auto file = io::SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& name : file->names()) out[name] = tensor_from_view(file->tensor(name)).clone();
  return out;
}

namespace {
io::DType io_dtype(at::ScalarType st, const std::string& name) {
  switch (st) {
    case at::kDouble:
      return io::DType::F64;
    case at::kFloat:
      return io::DType::F32;
    case at::kHalf:
      return io::DType::F16;
    case at::kBFloat16:
      return io::DType::BF16;
    case at::kLong:
      return io::DType::I64;
    case at::kInt:
      return io::DType::I32;
    case at::kShort:
      return io::DType::I16;
    case at::kChar:
      return io::DType::I8;
    case at::kByte:
      return io::DType::U8;
    case at::kBool:
      return io::DType::BOOL;
    default:
      throw UsageError("tensor " + name + ": dtype " + std::string(c10::toString(st)) +
                       " cannot be stored in safetensors");
  }
}
}  // namespace

void write_tensors(const std::filesystem::path& path,
                   const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> keep;
  std::vector<io::TensorView> views;
  keep.reserve(tensors.size());
  for (const auto& [name, t0] : tensors) {
    auto t = t0.detach().to(at::kCPU).contiguous();
    keep.push_back(t);
    io::TensorView v;
    v.name = name;
    v.dtype = io_dtype(t.scalar_type(), name);
    v.shape.assign(t.sizes().begin(), t.sizes().end());
    v.data = static_cast<const std::byte*>(t.data_ptr());
    v.nbytes = t.nbytes();
    views.push_back(std::move(v));
  }
  io::write_safetensors(path, views, metadata);
}

}  // namespace xlt::models
