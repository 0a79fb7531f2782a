// torch.save state dicts without Python (see include/xlt/io/torch_pickle.h): the zip container
// via libzip, the pre-1.6 stream format, the state dict out of the restricted pickle machine,
// and strided views materialised contiguous.
#include "xlt/io/torch_pickle.h"

#include <zip.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "io/pickle_vm.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"

namespace xlt::io {
namespace fs = std::filesystem;
using detail::PPtr;
using detail::PValue;
using Kind = PValue::Kind;

namespace {

std::string shape_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// a * b and a + b on non-negative values, false on overflow past int64.
bool mul_ok(int64_t a, int64_t b, int64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
bool add_ok(int64_t a, int64_t b, int64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

// The pickled object must be a (possibly Ordered) dict from names to tensors.
std::vector<std::pair<std::string, TorchTensorInfo>> state_dict_of(const PPtr& root,
                                                                   const std::string& where) {
  if (root->kind != Kind::kDict) {
    throw CheckpointError(where + ": the pickle holds a " + detail::kind_name(root->kind) +
                          ", not a state dict (a dict of tensors)");
  }
  std::vector<std::pair<std::string, TorchTensorInfo>> out;
  for (const auto& [k, v] : root->entries) {
    if (k->kind != Kind::kStr) {
      throw CheckpointError(where + ": a state dict key is a " + detail::kind_name(k->kind) +
                            ", not a string");
    }
    if (v->kind == Kind::kDict) {
      throw CheckpointError(where + ": entry '" + k->s +
                            "' is a dict: this is a training checkpoint, not a state dict (save "
                            "its model state dict, e.g. torch.save(ckpt['" +
                            k->s + "'], ...))");
    }
    if (v->kind != Kind::kTensor) {
      throw CheckpointError(where + ": entry '" + k->s + "' is a " + detail::kind_name(v->kind) +
                            ", not a tensor");
    }
    out.emplace_back(k->s, v->tensor);
  }
  return out;
}

// Validates a tensor's geometry against its storage (all in elements).
void check_geometry(const TorchTensorInfo& t, const std::string& name, const std::string& where) {
  auto bad = [&](const std::string& why) {
    throw CheckpointError(where + ": tensor '" + name + "' (shape " + shape_str(t.shape) +
                          ", stride " + shape_str(t.stride) + ", offset " +
                          std::to_string(t.storage_offset) + ", storage '" + t.storage_key +
                          "' of " + std::to_string(t.storage_numel) + " elements): " + why);
  };
  if (t.storage_offset < 0 || t.storage_numel < 0) bad("negative offset or storage size");
  int64_t numel = 1, last = t.storage_offset;
  for (std::size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0 || t.stride[d] < 0) bad("negative size or stride");
    if (!mul_ok(numel, t.shape[d], &numel)) bad("element count overflows");
  }
  if (numel == 0) return;
  for (std::size_t d = 0; d < t.shape.size(); ++d) {
    int64_t span;
    if (!mul_ok(t.shape[d] - 1, t.stride[d], &span) || !add_ok(last, span, &last)) {
      bad("element offsets overflow");
    }
  }
  if (last >= t.storage_numel) bad("its elements run past the end of the storage");
}

void zip_fail(const fs::path& path, const std::string& what, zip_t* z) {
  throw CheckpointError(path.string() + ": " + what +
                        (z ? std::string(": ") + zip_strerror(z) : ""));
}

std::vector<std::byte> read_zip_entry(zip_t* z, zip_uint64_t index, zip_uint64_t expect,
                                      const fs::path& path, const std::string& name) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(z, index, 0, &st) != 0) zip_fail(path, "cannot stat record " + name, z);
  if (expect != ~zip_uint64_t{0} && st.size != expect) {
    throw CheckpointError(path.string() + ": record " + name + " holds " + std::to_string(st.size) +
                          " bytes, the pickle describes " + std::to_string(expect));
  }
  // The sizes in the central directory are not trusted before allocating: deflate expands at
  // most ~1032:1, so a record claiming more is corrupt (fuzz/torch_pickle_fuzz found a 60-byte
  // file claiming 3.4 GB).
  // The compressed size is itself a claim: bound it by the archive's size (fuzzing found a 1 KB
  // file whose record claimed 2 GB with a matching compressed size).
  constexpr zip_uint64_t kMaxDeflateRatio = 1032;
  std::error_code size_ec;
  const auto archive_size = static_cast<zip_uint64_t>(fs::file_size(path, size_ec));
  const zip_uint64_t comp_size =
      (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : (size_ec ? st.size : archive_size);
  const zip_uint64_t comp_bound = size_ec ? comp_size : std::min(comp_size, archive_size);
  if ((st.valid & ZIP_STAT_SIZE) && st.size > comp_bound * kMaxDeflateRatio + 64) {
    throw CheckpointError(path.string() + ": record " + name + " claims " +
                          std::to_string(st.size) + " bytes from at most " +
                          std::to_string(comp_bound) + " compressed bytes: corrupt zip");
  }
  std::vector<std::byte> buf(static_cast<std::size_t>(st.size));
  zip_file_t* f = zip_fopen_index(z, index, 0);
  if (!f) zip_fail(path, "cannot open record " + name, z);
  zip_int64_t n = buf.empty() ? 0 : zip_fread(f, buf.data(), buf.size());
  // Reading to the end makes libzip compare the CRC-32.
  char extra;
  zip_int64_t tail = zip_fread(f, &extra, 1);
  std::string err = n < 0 || tail < 0 ? zip_file_strerror(f) : "";
  zip_fclose(f);
  if (n < 0 || tail < 0 || static_cast<zip_uint64_t>(n) != st.size) {
    throw CheckpointError(path.string() + ": cannot read record " + name +
                          (err.empty() ? std::string(" (short read)") : ": " + err));
  }
  return buf;
}

// The pre-1.6 stream: magic number, protocol version, sys info, the state dict pickle, the list
// of storage keys, then each storage as <u64 element count><raw elements>.
const std::string kLegacyMagic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);

}  // namespace

int64_t OwnedTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

TensorView OwnedTensor::view() const {
  TensorView v;
  v.name = name;
  v.dtype = dtype;
  v.shape = shape;
  v.data = data();
  v.nbytes = nbytes;
  return v;
}

bool TorchTensorInfo::contiguous() const {
  int64_t expected = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 0) return true;
    if (shape[d] != 1 && stride[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

std::vector<std::pair<std::string, TorchTensorInfo>> parse_torch_state_dict_pickle(
    std::string_view pickle, const std::string& where) {
  detail::PickleResult r = detail::unpickle(pickle, 0, where);
  auto out = state_dict_of(r.value, where);
  for (const auto& [name, info] : out) check_geometry(info, name, where);
  return out;
}

std::vector<std::byte> materialize_contiguous(const TorchTensorInfo& t, const std::byte* storage,
                                              std::size_t storage_bytes, const std::string& name) {
  check_geometry(t, name, "materialize");
  const std::size_t elem = dtype_size(t.dtype);
  if (static_cast<uint64_t>(t.storage_numel) * elem > storage_bytes) {
    throw CheckpointError("tensor '" + name + "': storage '" + t.storage_key + "' has " +
                          std::to_string(storage_bytes) + " bytes, fewer than its " +
                          std::to_string(t.storage_numel) + " elements need");
  }
  int64_t numel = 1;
  for (int64_t d : t.shape) numel *= d;
  std::vector<std::byte> out(static_cast<std::size_t>(numel) * elem);
  if (numel == 0) return out;
  const std::size_t nd = t.shape.size();
  if (nd == 0) {
    std::memcpy(out.data(), storage + t.storage_offset * elem, elem);
    return out;
  }
  // Odometer over all but the last dimension; the last one is copied as a run when its stride
  // is 1, element by element otherwise.
  const int64_t inner = t.shape[nd - 1], inner_stride = t.stride[nd - 1];
  std::vector<int64_t> idx(nd - 1, 0);
  std::byte* dst = out.data();
  for (;;) {
    int64_t base = t.storage_offset;
    for (std::size_t d = 0; d + 1 < nd; ++d) base += idx[d] * t.stride[d];
    if (inner_stride == 1) {
      std::memcpy(dst, storage + base * elem, static_cast<std::size_t>(inner) * elem);
      dst += inner * elem;
    } else {
      for (int64_t k = 0; k < inner; ++k, dst += elem) {
        std::memcpy(dst, storage + (base + k * inner_stride) * elem, elem);
      }
    }
    std::size_t d = nd - 1;
    while (d > 0) {
      if (++idx[d - 1] < t.shape[d - 1]) break;
      idx[d - 1] = 0;
      --d;
    }
    if (d == 0) break;
  }
  return out;
}

struct TorchBinCheckpoint::Source {
  std::mutex mu;
  zip_t* zip = nullptr;
  std::string prefix;  // "<name>/data/" in a zip
  // Legacy stream: storage key -> (file offset of the elements, byte count).
  std::map<std::string, std::pair<uint64_t, uint64_t>> legacy;
  std::map<std::string, std::weak_ptr<const std::vector<std::byte>>> cache;
  ~Source() {
    if (zip) zip_discard(zip);
  }
};

TorchBinCheckpoint::TorchBinCheckpoint(TorchBinCheckpoint&&) noexcept = default;
TorchBinCheckpoint& TorchBinCheckpoint::operator=(TorchBinCheckpoint&&) noexcept = default;
TorchBinCheckpoint::~TorchBinCheckpoint() = default;

namespace {

void open_zip(const fs::path& path, zip_t* z, std::string* prefix,
              std::vector<std::pair<std::string, TorchTensorInfo>>* tensors) {
  zip_int64_t n = zip_get_num_entries(z, 0);
  std::string pkl;
  bool torchscript = false;
  for (zip_int64_t i = 0; i < n; ++i) {
    std::string name = zip_get_name(z, static_cast<zip_uint64_t>(i), 0);
    auto slash = name.find('/');
    std::string rest = slash == std::string::npos ? name : name.substr(slash + 1);
    if (rest == "data.pkl" && pkl.empty()) pkl = name;
    if (rest == "constants.pkl" || rest.rfind("code/", 0) == 0) torchscript = true;
  }
  if (torchscript) {
    throw CheckpointError(path.string() +
                          ": a TorchScript archive (torch.jit.save), not a torch.save state dict");
  }
  if (pkl.empty()) {
    throw CheckpointError(path.string() + ": a zip without <name>/data.pkl: not a torch.save file");
  }
  std::string root = pkl.substr(0, pkl.size() - std::string("data.pkl").size());
  zip_int64_t bo = zip_name_locate(z, (root + "byteorder").c_str(), 0);
  if (bo >= 0) {
    auto b = read_zip_entry(z, static_cast<zip_uint64_t>(bo), ~zip_uint64_t{0}, path, "byteorder");
    std::string order(reinterpret_cast<const char*>(b.data()), b.size());
    if (order != "little") {
      throw CheckpointError(path.string() + ": saved with byte order '" + order +
                            "'; only little-endian checkpoints are supported");
    }
  }
  auto bytes = read_zip_entry(z, static_cast<zip_uint64_t>(zip_name_locate(z, pkl.c_str(), 0)),
                              ~zip_uint64_t{0}, path, pkl);
  *tensors = parse_torch_state_dict_pickle(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
      path.string() + ":" + pkl);
  *prefix = root + "data/";
}

void open_legacy(const fs::path& path, std::map<std::string, std::pair<uint64_t, uint64_t>>* out,
                 std::vector<std::pair<std::string, TorchTensorInfo>>* tensors) {
  // The pickles are small, but sit in front of the storages: read the whole file once to find
  // the offsets (legacy files predate 2020 and are rarely large).
  std::string data = read_file(path);
  std::string where = path.string() + " (pre-1.6 torch.save format)";
  std::size_t pos = kLegacyMagic.size();
  pos = detail::unpickle(data, pos, where).end;  // protocol version
  pos = detail::unpickle(data, pos, where).end;  // sys info: endianness, type sizes
  detail::PickleResult main = detail::unpickle(data, pos, where);
  *tensors = state_dict_of(main.value, where);
  detail::PickleResult keys = detail::unpickle(data, main.end, where);
  if (keys.value->kind != Kind::kList) throw CheckpointError(where + ": storage key list missing");
  std::map<std::string, DType> dtypes;
  for (const auto& [name, info] : *tensors) dtypes[info.storage_key] = info.dtype;
  pos = keys.end;
  for (const auto& k : keys.value->items) {
    if (k->kind != Kind::kStr) throw CheckpointError(where + ": a storage key is not a string");
    if (data.size() - pos < 8) throw CheckpointError(where + ": truncated before storage " + k->s);
    uint64_t count = 0;
    for (int b = 0; b < 8; ++b)
      count |= static_cast<uint64_t>(static_cast<uint8_t>(data[pos + b])) << (8 * b);
    pos += 8;
    auto dt = dtypes.find(k->s);
    uint64_t elem = dt == dtypes.end() ? 1 : dtype_size(dt->second);
    if (count > (data.size() - pos) / elem) {
      throw CheckpointError(where + ": storage " + k->s + " runs past the end of the file");
    }
    (*out)[k->s] = {pos, count * elem};
    pos += count * elem;
  }
}

}  // namespace

TorchBinCheckpoint TorchBinCheckpoint::open(const fs::path& path) {
  TorchBinCheckpoint c;
  c.path_ = path;
  c.source_ = std::make_unique<Source>();
  std::vector<std::pair<std::string, TorchTensorInfo>> tensors;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw FileNotFound(path.string() + ": no such file");
  if (!fs::is_regular_file(path, ec)) throw IoError(path.string() + ": not a file");
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY, &err);
  if (z) {
    c.source_->zip = z;
    c.format_ = "zip";
    open_zip(path, z, &c.source_->prefix, &tensors);
  } else {
    std::ifstream in(path, std::ios::binary);
    std::string head(kLegacyMagic.size(), '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (!in || head != kLegacyMagic) {
      zip_error_t ze;
      zip_error_init_with_code(&ze, err);
      std::string why = zip_error_strerror(&ze);
      zip_error_fini(&ze);
      throw CheckpointError(path.string() +
                            ": not a torch.save file (neither a zip archive nor the "
                            "pre-1.6 format; libzip: " +
                            why + ")");
    }
    c.format_ = "legacy";
    open_legacy(path, &c.source_->legacy, &tensors);
  }
  for (auto& [name, info] : tensors) {
    if (c.infos_.count(name))
      throw CheckpointError(path.string() + ": duplicate tensor '" + name + "'");
    check_geometry(info, name, path.string());
    c.names_.push_back(name);
    c.infos_.emplace(name, std::move(info));
  }
  return c;
}

bool TorchBinCheckpoint::contains(std::string_view name) const {
  return infos_.count(name) > 0;
}

const TorchTensorInfo& TorchBinCheckpoint::info(std::string_view name) const {
  auto it = infos_.find(name);
  if (it == infos_.end()) {
    throw CheckpointError(path_.string() + ": no tensor '" + std::string(name) + "'");
  }
  return it->second;
}

std::shared_ptr<const std::vector<std::byte>> TorchBinCheckpoint::storage(
    const TorchTensorInfo& info) const {
  std::lock_guard<std::mutex> lock(source_->mu);
  if (auto cached = source_->cache[info.storage_key].lock()) return cached;
  const uint64_t want = static_cast<uint64_t>(info.storage_numel) * dtype_size(info.dtype);
  std::shared_ptr<std::vector<std::byte>> buf;
  if (source_->zip) {
    std::string name = source_->prefix + info.storage_key;
    zip_int64_t idx = zip_name_locate(source_->zip, name.c_str(), 0);
    if (idx < 0) throw CheckpointError(path_.string() + ": storage record " + name + " is missing");
    buf = std::make_shared<std::vector<std::byte>>(
        read_zip_entry(source_->zip, static_cast<zip_uint64_t>(idx), want, path_, name));
  } else {
    auto it = source_->legacy.find(info.storage_key);
    if (it == source_->legacy.end() || it->second.second < want) {
      throw CheckpointError(path_.string() + ": storage " + info.storage_key +
                            " is missing or shorter than its tensors need");
    }
    buf = std::make_shared<std::vector<std::byte>>(it->second.second);
    std::ifstream in(path_, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(it->second.first));
    in.read(reinterpret_cast<char*>(buf->data()), static_cast<std::streamsize>(buf->size()));
    if (!in) throw IoError(path_.string() + ": cannot read storage " + info.storage_key);
  }
  source_->cache[info.storage_key] = buf;
  return buf;
}

OwnedTensor TorchBinCheckpoint::tensor(std::string_view name) const {
  const TorchTensorInfo& t = info(name);
  auto buf = storage(t);
  OwnedTensor out;
  out.name = std::string(name);
  out.dtype = t.dtype;
  out.shape = t.shape;
  const std::size_t elem = dtype_size(t.dtype);
  int64_t numel = 1;
  for (int64_t d : t.shape) numel *= d;
  out.nbytes = static_cast<std::size_t>(numel) * elem;
  if (t.contiguous()) {
    out.buffer = buf;
    out.offset = numel == 0 ? 0 : static_cast<std::size_t>(t.storage_offset) * elem;
  } else {
    out.buffer = std::make_shared<const std::vector<std::byte>>(
        materialize_contiguous(t, buf->data(), buf->size(), out.name));
  }
  return out;
}

}  // namespace xlt::io
