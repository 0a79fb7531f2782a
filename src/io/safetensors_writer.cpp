// Atomic safetensors writer, laid out as the reference implementation writes files: compact JSON
// header ("__metadata__" first, then each tensor as {"dtype","shape","data_offsets"}) padded with
// spaces to a multiple of 8 bytes so the data section starts aligned; tensors by descending
// dtype rank, then name, so every tensor's data is aligned to its element size.
#include <algorithm>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/io/safetensors.h"

namespace xlt::io {
namespace fs = std::filesystem;

namespace {

// The reference's Dtype order (BOOL < U8 < I8 < I16 < F16 < BF16 < I32 < F32 < F64 < I64, that
// is increasing alignment); its writer sorts by this, descending, then by name.
int dtype_rank(DType d) {
  switch (d) {
    case DType::BOOL:
      return 0;
    case DType::U8:
      return 1;
    case DType::I8:
      return 2;
    case DType::I16:
      return 3;
    case DType::F16:
      return 4;
    case DType::BF16:
      return 5;
    case DType::I32:
      return 6;
    case DType::F32:
      return 7;
    case DType::F64:
      return 8;
    case DType::I64:
      return 9;
  }
  return 0;
}

}  // namespace

void write_safetensors(const fs::path& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorView*> sorted;
  sorted.reserve(tensors.size());
  for (const TensorView& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const TensorView* a, const TensorView* b) {
    const int ra = dtype_rank(a->dtype), rb = dtype_rank(b->dtype);
    return ra != rb ? ra > rb : a->name < b->name;
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  std::set<std::string> names;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const TensorView& t = *sorted[i];
    auto bad = [&](const std::string& what) {
      throw CheckpointError(path.string() + ": cannot write tensor '" + t.name + "': " + what);
    };
    if (t.name == "__metadata__") bad("the name is reserved for the metadata block");
    if (!names.insert(t.name).second) bad("duplicate name");
    int64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) bad("negative dimension");
      numel *= d;
    }
    const std::size_t expected = static_cast<std::size_t>(numel) * dtype_size(t.dtype);
    if (t.nbytes != expected)
      bad("shape x dtype needs " + std::to_string(expected) + " bytes, view has " +
          std::to_string(t.nbytes));
    if (t.nbytes > 0 && t.data == nullptr) bad("null data");
    nlohmann::ordered_json entry;
    entry["dtype"] = std::string(dtype_name(t.dtype));
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + t.nbytes};
    header[t.name] = std::move(entry);
    offset += t.nbytes;
  }

  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  char len[8];
  std::uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);

  AtomicFile out(path);
  std::ostream& os = out.stream();
  os.write(len, 8);
  os.write(json.data(), static_cast<std::streamsize>(json.size()));
  for (const TensorView* t : sorted) {
    os.write(reinterpret_cast<const char*>(t->data), static_cast<std::streamsize>(t->nbytes));
  }
  out.commit();
}

}  // namespace xlt::io
