// Private to xlt_io: the restricted pickle machine behind torch_pickle.h. It knows the opcodes
// of protocols 2-5 that torch.save emits and resolves globals only from a fixed table; values
// are plain data (numbers, strings, tuples, lists, dicts) plus the three torch things a state
// dict holds: storage classes, storages (persistent ids) and tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xlt/io/torch_pickle.h"

namespace xlt::io::detail {

enum class GlobalId {
  kOrderedDict,
  kRebuildTensor,
  kRebuildTensorV2,
  kRebuildParameter,
  kRebuildParameterWithState,
  kStorageType,
};

struct PValue;
using PPtr = std::shared_ptr<PValue>;

struct PValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kStr,
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kStorage,
    kTensor
  };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                               // kStr, kBytes; kGlobal: "module.name"
  std::vector<PPtr> items;                     // kTuple, kList
  std::vector<std::pair<PPtr, PPtr>> entries;  // kDict, insertion order
  GlobalId global = GlobalId::kOrderedDict;    // kGlobal
  DType dtype = DType::F32;                    // kGlobal storage type, kStorage
  int64_t storage_offset = 0;                  // kStorage: a legacy view's offset (elements)
  TorchTensorInfo tensor;                      // kTensor (storage_key/numel in it for kStorage)
};

// "NoneType", "int", "tuple", ... for messages.
const char* kind_name(PValue::Kind kind);

// Owns every value of one pickle. A hostile pickle can nest containers a million deep (or in a
// cycle) through the memo; the arena clears all children before freeing, so destruction never
// recurses and cycles do not leak.
struct PickleArena {
  std::vector<PPtr> nodes;
  PickleArena() = default;
  PickleArena(const PickleArena&) = delete;
  PickleArena& operator=(const PickleArena&) = delete;
  ~PickleArena();
};

struct PickleResult {
  PPtr value;           // valid (children included) while `arena` lives
  std::size_t end = 0;  // offset just past STOP
  std::shared_ptr<PickleArena> arena;
};

// Runs the restricted machine over `data` from `start` to its STOP opcode. `where` names the
// pickle in errors ("model.bin:archive/data.pkl"). Throws CheckpointError.
PickleResult unpickle(std::string_view data, std::size_t start, const std::string& where);

}  // namespace xlt::io::detail
