// safetensors reader (mmap + full header validation), sharded checkpoints and the atomic writer.
// Format: 8-byte little-endian header length N, N bytes of JSON, then the data section. The
// validation rules follow the reference implementation (huggingface/safetensors): the tensors'
// data_offsets, sorted by offset, must tile the data section exactly, with no gap or overlap.
#include "xlt/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include "core/json_strict.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"

namespace xlt::io {

bool is_safetensors_shard_name(const std::string& name) {
  // model-DDDDD-of-DDDDD.safetensors
  if (name.size() != 32 || name.compare(0, 6, "model-") != 0 || name.compare(11, 4, "-of-") != 0 ||
      name.compare(20, 12, ".safetensors") != 0)
    return false;
  for (size_t i : {6, 7, 8, 9, 10, 15, 16, 17, 18, 19})
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// The reference implementation refuses headers above 100 MB; so do we (a corrupt length field
// must not make us parse gigabytes of tensor data as JSON).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::size_t kAlignment = 8;

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

std::string supported_dtypes() {
  std::string s;
  for (const auto& d : kDTypes) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

[[noreturn]] void fail(const fs::path& file, const std::string& what) {
  throw CheckpointError(file.string() + ": " + what);
}

[[noreturn]] void fail_tensor(const fs::path& file, const std::string& tensor,
                              const std::string& what) {
  fail(file, "tensor '" + tensor + "': " + what);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::uint64_t read_le_u64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}

// Byte count of `shape` x `elem` with overflow detection; nullopt-style false on overflow.
bool checked_nbytes(const std::vector<int64_t>& shape, std::size_t elem, std::uint64_t* out) {
  std::uint64_t n = elem;
  for (int64_t d : shape) {
    auto ud = static_cast<std::uint64_t>(d);
    if (ud != 0 && n > std::numeric_limits<std::uint64_t>::max() / ud) return false;
    n *= ud;
  }
  *out = n;
  return true;
}

struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

Entry parse_entry(const fs::path& file, const std::string& name, const Json& info) {
  if (!info.is_object())
    fail_tensor(file, name,
                "header entry must be an object, found " + xlt::detail::json_type_name(info));
  Entry e;
  e.name = name;
  auto dt = info.find("dtype");
  if (dt == info.end()) fail_tensor(file, name, "missing 'dtype'");
  if (!dt->is_string())
    fail_tensor(file, name, "'dtype' must be a string, found " + xlt::detail::json_type_name(*dt));
  try {
    e.dtype = parse_dtype(dt->get<std::string>());
  } catch (const CheckpointError& err) {
    fail_tensor(file, name, err.what());
  }

  auto sh = info.find("shape");
  if (sh == info.end()) fail_tensor(file, name, "missing 'shape'");
  if (!sh->is_array()) fail_tensor(file, name, "'shape' must be an array");
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned() ||
        d.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<int64_t>::max()))
      fail_tensor(file, name, "'shape' must hold non-negative integers, found " + sh->dump());
    e.shape.push_back(static_cast<int64_t>(d.get<std::uint64_t>()));
  }

  auto off = info.find("data_offsets");
  if (off == info.end()) fail_tensor(file, name, "missing 'data_offsets'");
  if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    fail_tensor(
        file, name,
        "'data_offsets' must be two non-negative integers [begin, end], found " + off->dump());
  e.begin = (*off)[0].get<std::uint64_t>();
  e.end = (*off)[1].get<std::uint64_t>();
  if (e.end < e.begin)
    fail_tensor(file, name,
                "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    "] end before begin");
  return e;
}

std::map<std::string, std::string> parse_metadata(const fs::path& file, const Json& meta) {
  if (!meta.is_object())
    fail(file,
         "'__metadata__' must be an object of strings, found " + xlt::detail::json_type_name(meta));
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : meta.items()) {
    if (!v.is_string())
      fail(file, "'__metadata__' key '" + k + "' must be a string, found " +
                     xlt::detail::json_type_name(v));
    out[k] = v.get<std::string>();
  }
  return out;
}

// Checks the entries against each other and the data section: sizes match shapes, and sorted by
// offset they cover [0, data_size) exactly (the reference implementation's rule).
void validate_layout(const fs::path& file, std::vector<Entry>& entries, std::uint64_t data_size) {
  for (const Entry& e : entries) {
    std::uint64_t expected = 0;
    if (!checked_nbytes(e.shape, dtype_size(e.dtype), &expected))
      fail_tensor(file, e.name, "shape " + shape_str(e.shape) + " overflows");
    if (e.end - e.begin != expected)
      fail_tensor(file, e.name,
                  "shape " + shape_str(e.shape) + " x " + std::string(dtype_name(e.dtype)) +
                      " needs " + std::to_string(expected) + " bytes but data_offsets [" +
                      std::to_string(e.begin) + ", " + std::to_string(e.end) + "] span " +
                      std::to_string(e.end - e.begin));
    if (e.end > data_size)
      fail_tensor(file, e.name,
                  "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                      "] run past the end of the data section (" + std::to_string(data_size) +
                      " bytes): file truncated or offsets out of range");
  }
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::stable_sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t cursor = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : by_offset) {
    if (e->begin < cursor)
      fail_tensor(file, e->name,
                  "data_offsets [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
                      "] overlap tensor '" + prev->name + "' (which ends at " +
                      std::to_string(cursor) + ")");
    if (e->begin > cursor)
      fail_tensor(file, e->name,
                  "data_offsets [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
                      "] leave a gap of " + std::to_string(e->begin - cursor) +
                      " unused bytes after " +
                      (prev ? "tensor '" + prev->name + "'" : std::string("the header")) +
                      " (tensors must be contiguous)");
    cursor = e->end;
    prev = e;
  }
  if (cursor != data_size)
    fail(file, "data section is " + std::to_string(data_size) + " bytes but the tensors cover " +
                   std::to_string(cursor) + " (" + std::to_string(data_size - cursor) +
                   " trailing bytes" + (prev ? " after tensor '" + prev->name + "'" : "") + ")");
}

}  // namespace

std::size_t dtype_size(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

std::string_view dtype_name(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

DType parse_dtype(std::string_view name) {
  for (const auto& d : kDTypes)
    if (d.name == name) return d.dtype;
  throw CheckpointError("unknown dtype '" + std::string(name) +
                        "' (supported: " + supported_dtypes() + ")");
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const fs::path& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    const std::string msg = path.string() + ": cannot open: " + std::strerror(e);
    if (e == ENOENT) throw FileNotFound(msg);
    throw IoError(msg);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(path.string() + ": not a regular file");
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, "file is " + std::to_string(size) +
                   " bytes, too short for the 8-byte header length (truncated?)");
  }
  // MAP_PRIVATE + PROT_READ: pages come from the page cache on first touch, nothing is copied.
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);
  if (map == MAP_FAILED)
    throw IoError(path.string() + ": cannot memory-map: " + std::strerror(map_errno));
  f->map_ = map;  // owned from here: the destructor unmaps, also when validation throws
  f->size_ = size;
  const auto* base = static_cast<const std::byte*>(map);

  const std::uint64_t header_len = read_le_u64(base);
  if (header_len > size - 8)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the file size (" +
                   std::to_string(size) + " bytes): file truncated or not safetensors");
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  std::string_view header(reinterpret_cast<const char*>(base + 8), header_len);
  if (header.empty() || header.front() != '{')
    fail(path, "header JSON must start with '{' (not a safetensors file?)");
  // The JSON parser stops at a NUL byte, so NUL "padding" (or garbage after one) passed; the
  // reference implementation pads with spaces and refuses anything else.
  if (const auto nul = header.find('\0'); nul != std::string_view::npos) {
    fail(path, "NUL byte in the header at byte " + std::to_string(nul + 8) +
                   " (a safetensors header is JSON padded with spaces)");
  }

  Json j;
  try {
    j = xlt::detail::parse_json_strict(header);
  } catch (const xlt::detail::JsonParseFailure& e) {
    if (e.kind == xlt::detail::JsonParseFailure::Kind::kSyntax)
      fail(path, "malformed header JSON at byte " + std::to_string(e.byte + 8) + ": " + e.message);
    if (e.path.empty()) fail(path, "duplicate tensor name '" + e.message + "' in header");
    fail(path, "duplicate key '" + e.message + "' in header entry '" + e.path.front() + "'");
  }
  if (!j.is_object()) fail(path, "header JSON must be an object");

  std::vector<Entry> entries;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      f->metadata_ = parse_metadata(path, value);
    } else {
      entries.push_back(parse_entry(path, key, value));
    }
  }
  const std::uint64_t data_size = size - 8 - header_len;
  validate_layout(path, entries, data_size);

  const std::byte* data = base + 8 + header_len;
  for (Entry& e : entries) {
    TensorView v;
    v.name = e.name;
    v.dtype = e.dtype;
    v.shape = std::move(e.shape);
    v.data = data + e.begin;
    v.nbytes = static_cast<std::size_t>(e.end - e.begin);
    f->names_.push_back(e.name);
    f->tensors_.emplace(e.name, std::move(v));
  }
  return f;
}

bool SafetensorsFile::contains(std::string_view name) const {
  return find(name) != nullptr;
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& SafetensorsFile::tensor(std::string_view name) const {
  if (const TensorView* v = find(name)) return *v;
  fail(path_, "no tensor named '" + std::string(name) + "'");
}

}  // namespace xlt::io
