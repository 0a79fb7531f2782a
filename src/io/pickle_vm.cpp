// The restricted pickle machine (see pickle_vm.h). It follows CPython's Unpickler for the
// opcodes it accepts; everything that could construct an arbitrary object (INST, OBJ, NEWOBJ,
// EXT*, any global outside the table) is refused where it appears.
#include "io/pickle_vm.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <unordered_map>

#include "xlt/core/error.h"

namespace xlt::io::detail {
namespace {

using Kind = PValue::Kind;

const std::map<std::string, std::pair<GlobalId, DType>>& allowed_globals() {
  static const std::map<std::string, std::pair<GlobalId, DType>> table = {
      {"collections.OrderedDict", {GlobalId::kOrderedDict, DType::F32}},
      {"torch._utils._rebuild_tensor", {GlobalId::kRebuildTensor, DType::F32}},
      {"torch._utils._rebuild_tensor_v2", {GlobalId::kRebuildTensorV2, DType::F32}},
      {"torch._utils._rebuild_parameter", {GlobalId::kRebuildParameter, DType::F32}},
      {"torch._utils._rebuild_parameter_with_state",
       {GlobalId::kRebuildParameterWithState, DType::F32}},
      {"torch.DoubleStorage", {GlobalId::kStorageType, DType::F64}},
      {"torch.FloatStorage", {GlobalId::kStorageType, DType::F32}},
      {"torch.HalfStorage", {GlobalId::kStorageType, DType::F16}},
      {"torch.BFloat16Storage", {GlobalId::kStorageType, DType::BF16}},
      {"torch.LongStorage", {GlobalId::kStorageType, DType::I64}},
      {"torch.IntStorage", {GlobalId::kStorageType, DType::I32}},
      {"torch.ShortStorage", {GlobalId::kStorageType, DType::I16}},
      {"torch.CharStorage", {GlobalId::kStorageType, DType::I8}},
      {"torch.ByteStorage", {GlobalId::kStorageType, DType::U8}},
      {"torch.BoolStorage", {GlobalId::kStorageType, DType::BOOL}},
  };
  return table;
}

// Names of every pickle opcode, so a refusal says which one it met.
const char* opcode_name(uint8_t op) {
  static const std::unordered_map<uint8_t, const char*> names = {{'(', "MARK"},
                                                                 {'.', "STOP"},
                                                                 {'0', "POP"},
                                                                 {'1', "POP_MARK"},
                                                                 {'2', "DUP"},
                                                                 {'F', "FLOAT"},
                                                                 {'I', "INT"},
                                                                 {'J', "BININT"},
                                                                 {'K', "BININT1"},
                                                                 {'L', "LONG"},
                                                                 {'M', "BININT2"},
                                                                 {'N', "NONE"},
                                                                 {'P', "PERSID"},
                                                                 {'Q', "BINPERSID"},
                                                                 {'R', "REDUCE"},
                                                                 {'S', "STRING"},
                                                                 {'T', "BINSTRING"},
                                                                 {'U', "SHORT_BINSTRING"},
                                                                 {'V', "UNICODE"},
                                                                 {'X', "BINUNICODE"},
                                                                 {'a', "APPEND"},
                                                                 {'b', "BUILD"},
                                                                 {'c', "GLOBAL"},
                                                                 {'d', "DICT"},
                                                                 {'}', "EMPTY_DICT"},
                                                                 {'e', "APPENDS"},
                                                                 {'g', "GET"},
                                                                 {'h', "BINGET"},
                                                                 {'i', "INST"},
                                                                 {'j', "LONG_BINGET"},
                                                                 {'l', "LIST"},
                                                                 {']', "EMPTY_LIST"},
                                                                 {'o', "OBJ"},
                                                                 {'p', "PUT"},
                                                                 {'q', "BINPUT"},
                                                                 {'r', "LONG_BINPUT"},
                                                                 {'s', "SETITEM"},
                                                                 {'t', "TUPLE"},
                                                                 {')', "EMPTY_TUPLE"},
                                                                 {'u', "SETITEMS"},
                                                                 {'G', "BINFLOAT"},
                                                                 {0x80, "PROTO"},
                                                                 {0x81, "NEWOBJ"},
                                                                 {0x82, "EXT1"},
                                                                 {0x83, "EXT2"},
                                                                 {0x84, "EXT4"},
                                                                 {0x85, "TUPLE1"},
                                                                 {0x86, "TUPLE2"},
                                                                 {0x87, "TUPLE3"},
                                                                 {0x88, "NEWTRUE"},
                                                                 {0x89, "NEWFALSE"},
                                                                 {0x8a, "LONG1"},
                                                                 {0x8b, "LONG4"},
                                                                 {'B', "BINBYTES"},
                                                                 {'C', "SHORT_BINBYTES"},
                                                                 {0x8c, "SHORT_BINUNICODE"},
                                                                 {0x8d, "BINUNICODE8"},
                                                                 {0x8e, "BINBYTES8"},
                                                                 {0x8f, "EMPTY_SET"},
                                                                 {0x90, "ADDITEMS"},
                                                                 {0x91, "FROZENSET"},
                                                                 {0x92, "NEWOBJ_EX"},
                                                                 {0x93, "STACK_GLOBAL"},
                                                                 {0x94, "MEMOIZE"},
                                                                 {0x95, "FRAME"},
                                                                 {0x96, "BYTEARRAY8"},
                                                                 {0x97, "NEXT_BUFFER"},
                                                                 {0x98, "READONLY_BUFFER"}};
  auto it = names.find(op);
  return it == names.end() ? nullptr : it->second;
}

class Machine {
 public:
  Machine(std::string_view data, std::size_t start, const std::string& where)
      : d_(data), pos_(start), where_(where), arena_(std::make_shared<PickleArena>()) {}

  PickleResult run();

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw CheckpointError(where_ + ": " + msg + " (at byte " + std::to_string(op_at_) + ")");
  }
  void need(std::size_t n) const {
    if (d_.size() - pos_ < n)
      fail("truncated pickle: " + std::to_string(n) + " more bytes expected");
  }
  uint64_t read_le(std::size_t n) {
    need(n);
    uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) {
      v |= static_cast<uint64_t>(static_cast<uint8_t>(d_[pos_ + k])) << (8 * k);
    }
    pos_ += n;
    return v;
  }
  std::string_view take(uint64_t n) {
    if (n > d_.size() - pos_)
      fail("truncated pickle: a " + std::to_string(n) + "-byte value runs past the end");
    std::string_view s = d_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  std::string line() {
    std::size_t nl = d_.find('\n', pos_);
    if (nl == std::string_view::npos) fail("truncated pickle: unterminated GLOBAL name");
    std::string s(d_.substr(pos_, nl - pos_));
    pos_ = nl + 1;
    return s;
  }
  PPtr pop() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    PPtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  PPtr& top() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    return stack_.back();
  }
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<PPtr> pop_mark() {
    if (marks_.empty()) fail("pickle has no MARK to pop to");
    std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PPtr> items(
        std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(m)),
        std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  void push(PPtr v) { stack_.push_back(std::move(v)); }
  PPtr make(Kind kind) {
    auto v = std::make_shared<PValue>();
    v->kind = kind;
    arena_->nodes.push_back(v);
    return v;
  }
  // Python decodes the str opcodes as UTF-8 and stops with UnicodeDecodeError on bad bytes;
  // letting them through fails much later (a safetensors header must be valid JSON).
  void check_utf8(std::string_view s) const {
    auto bad = [&](std::size_t at, const std::string& why) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", static_cast<uint8_t>(s[at]));
      fail(std::string(opcode_name(static_cast<uint8_t>(d_[op_at_]))) +
           " string is not valid UTF-8: byte " + hex + " at offset " +
           std::to_string(pos_ - s.size() + at) + " " + why);
    };
    const std::string decode_error = " (Python's unpickler fails here with UnicodeDecodeError)";
    for (std::size_t i = 0; i < s.size();) {
      const auto c = static_cast<uint8_t>(s[i]);
      const std::size_t n = c < 0x80           ? 1
                            : (c >> 5) == 0x6  ? 2
                            : (c >> 4) == 0xe  ? 3
                            : (c >> 3) == 0x1e ? 4
                                               : 0;
      if (n == 0 || c == 0xc0 || c == 0xc1 || c > 0xf4)
        bad(i, "cannot start a character" + decode_error);
      if (s.size() - i < n) bad(i, "starts a character the string cuts off" + decode_error);
      for (std::size_t k = 1; k < n; ++k) {
        if ((static_cast<uint8_t>(s[i + k]) & 0xc0) != 0x80)
          bad(i + k, "is not a continuation byte" + decode_error);
      }
      const auto c1 = n > 1 ? static_cast<uint8_t>(s[i + 1]) : 0;
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xf0 && c1 < 0x90))
        bad(i, "starts an overlong form" + decode_error);
      if (c == 0xf4 && c1 >= 0x90) bad(i, "starts a code point past U+10FFFF" + decode_error);
      // Python lets BINUNICODE carry lone surrogates ('surrogatepass'), but no JSON header (the
      // safetensors output) can hold one.
      if (c == 0xed && c1 >= 0xa0) bad(i, "starts a lone UTF-16 surrogate");
      i += n;
    }
  }
  void push_str(std::string_view s, Kind kind = Kind::kStr) {
    if (kind == Kind::kStr) check_utf8(s);
    PPtr v = make(kind);
    v->s = std::string(s);
    push(std::move(v));
  }
  void push_int(int64_t i) {
    PPtr v = make(Kind::kInt);
    v->i = i;
    push(std::move(v));
  }
  void memo_put(uint64_t idx) { memo_[idx] = top(); }
  void memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail("pickle memo has no entry " + std::to_string(idx));
    push(it->second);
  }

  PPtr global(const std::string& module, const std::string& name);
  PPtr reduce(const PPtr& callable, const PPtr& args);
  PPtr persistent_load(const PPtr& pid);
  PPtr rebuild_tensor(const std::vector<PPtr>& a, const std::string& fn);
  void set_items(PPtr& dict, std::vector<PPtr>& kv);
  int64_t as_int(const PPtr& v, const std::string& what) const {
    if (v->kind == Kind::kInt) return v->i;
    if (v->kind == Kind::kBool) return v->b ? 1 : 0;
    fail(what + ": expected an int, found a " + kind_name(v->kind));
  }
  std::vector<int64_t> int_tuple(const PPtr& v, const std::string& what) const {
    if (v->kind != Kind::kTuple && v->kind != Kind::kList) {
      fail(what + ": expected a tuple of ints, found a " + kind_name(v->kind));
    }
    std::vector<int64_t> out;
    for (const auto& x : v->items) out.push_back(as_int(x, what));
    return out;
  }

  std::string_view d_;
  std::size_t pos_;
  std::size_t op_at_ = 0;
  std::string where_;
  std::vector<PPtr> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint64_t, PPtr> memo_;
  std::shared_ptr<PickleArena> arena_;
};

PPtr Machine::global(const std::string& module, const std::string& name) {
  std::string full = module + "." + name;
  auto it = allowed_globals().find(full);
  if (it == allowed_globals().end()) {
    fail("refused pickle global '" + full +
         "': a state dict written by torch.save needs only collections.OrderedDict, "
         "torch._utils._rebuild_tensor_v2 / _rebuild_parameter and torch.*Storage; this file "
         "may be malicious (nothing was executed)");
  }
  PPtr g = make(Kind::kGlobal);
  g->s = full;
  g->global = it->second.first;
  g->dtype = it->second.second;
  return g;
}

PPtr Machine::persistent_load(const PPtr& pid) {
  // ('storage', <storage class>, key, location, numel[, legacy view metadata])
  if (pid->kind != Kind::kTuple || pid->items.size() < 5 || pid->items[0]->kind != Kind::kStr ||
      pid->items[0]->s != "storage") {
    fail("unsupported persistent id (expected ('storage', type, key, location, numel))");
  }
  const auto& it = pid->items;
  if (it[1]->kind != Kind::kGlobal || it[1]->global != GlobalId::kStorageType) {
    fail("persistent id names no storage class");
  }
  if (it[2]->kind != Kind::kStr) fail("persistent id: storage key is not a string");
  PPtr s = make(Kind::kStorage);
  s->dtype = it[1]->dtype;
  s->tensor.dtype = it[1]->dtype;
  s->tensor.storage_key = it[2]->s;
  s->tensor.storage_numel = as_int(it[4], "persistent id numel");
  if (it.size() >= 6 && it[5]->kind == Kind::kTuple) {
    // Pre-1.6 files: (view key, offset, size) of a view into the root storage.
    if (it[5]->items.size() != 3) fail("persistent id: malformed view metadata");
    s->storage_offset = as_int(it[5]->items[1], "storage view offset");
  } else if (it.size() >= 6 && it[5]->kind != Kind::kNone) {
    fail("persistent id: malformed view metadata");
  }
  return s;
}

PPtr Machine::rebuild_tensor(const std::vector<PPtr>& a, const std::string& fn) {
  if (a.size() < 4) fail(fn + " expects at least 4 arguments, got " + std::to_string(a.size()));
  if (a[0]->kind != Kind::kStorage) {
    fail(fn + ": first argument is a " + std::string(kind_name(a[0]->kind)) + ", not a storage");
  }
  PPtr t = make(Kind::kTensor);
  t->tensor = a[0]->tensor;
  t->tensor.dtype = a[0]->dtype;
  t->tensor.storage_offset = as_int(a[1], fn + " storage offset") + a[0]->storage_offset;
  t->tensor.shape = int_tuple(a[2], fn + " size");
  t->tensor.stride = int_tuple(a[3], fn + " stride");
  if (t->tensor.shape.size() != t->tensor.stride.size()) {
    fail(fn + ": size and stride have different lengths");
  }
  return t;
}

PPtr Machine::reduce(const PPtr& callable, const PPtr& args) {
  if (callable->kind != Kind::kGlobal) {
    fail(std::string("REDUCE on a ") + kind_name(callable->kind) + ", which is not callable");
  }
  if (args->kind != Kind::kTuple) fail("REDUCE arguments are not a tuple");
  const auto& a = args->items;
  switch (callable->global) {
    case GlobalId::kOrderedDict: {
      PPtr d = make(Kind::kDict);
      if (!a.empty()) {
        if (a.size() != 1 || (a[0]->kind != Kind::kList && a[0]->kind != Kind::kTuple)) {
          fail("collections.OrderedDict: unsupported arguments");
        }
        for (const auto& kv : a[0]->items) {
          if (kv->kind != Kind::kTuple || kv->items.size() != 2)
            fail("OrderedDict item is not a pair");
          d->entries.emplace_back(kv->items[0], kv->items[1]);
        }
      }
      return d;
    }
    case GlobalId::kRebuildTensor:
    case GlobalId::kRebuildTensorV2:
      return rebuild_tensor(a, callable->s);
    case GlobalId::kRebuildParameter:
    case GlobalId::kRebuildParameterWithState:
      if (a.empty() || a[0]->kind != Kind::kTensor)
        fail(callable->s + ": first argument is not a tensor");
      return a[0];
    case GlobalId::kStorageType:
      break;
  }
  fail("REDUCE on '" + callable->s + "', which a torch.save state dict never calls");
}

void Machine::set_items(PPtr& dict, std::vector<PPtr>& kv) {
  if (dict->kind != Kind::kDict) fail(std::string("SETITEM(S) on a ") + kind_name(dict->kind));
  if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of items");
  for (std::size_t k = 0; k < kv.size(); k += 2) {
    bool replaced = false;
    if (kv[k]->kind == Kind::kStr) {
      for (auto& e : dict->entries) {
        if (e.first->kind == Kind::kStr && e.first->s == kv[k]->s) {
          e.second = kv[k + 1];
          replaced = true;
        }
      }
    }
    if (!replaced) dict->entries.emplace_back(kv[k], kv[k + 1]);
  }
}

PickleResult Machine::run() {
  for (;;) {
    op_at_ = pos_;
    need(1);
    uint8_t op = static_cast<uint8_t>(d_[pos_++]);
    switch (op) {
      case 0x80: {  // PROTO
        uint64_t proto = read_le(1);
        if (proto < 2 || proto > 5)
          fail("pickle protocol " + std::to_string(proto) + " is not one torch.save writes");
        break;
      }
      case 0x95:
        read_le(8);
        break;  // FRAME: a length hint only
      case '(':
        marks_.push_back(stack_.size());
        break;
      case ')':
        push(make(Kind::kTuple));
        break;
      case ']':
        push(make(Kind::kList));
        break;
      case '}':
        push(make(Kind::kDict));
        break;
      case 'N':
        push(make(Kind::kNone));
        break;
      case 0x88:
      case 0x89: {
        PPtr v = make(Kind::kBool);
        v->b = op == 0x88;
        push(v);
        break;
      }
      case 'K':
        push_int(static_cast<int64_t>(read_le(1)));
        break;
      case 'M':
        push_int(static_cast<int64_t>(read_le(2)));
        break;
      case 'J':
        push_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4))));
        break;
      case 0x8a: {  // LONG1: little-endian two's complement
        uint64_t n = read_le(1);
        if (n > 8) fail("integer of " + std::to_string(n) + " bytes does not fit 64 bits");
        uint64_t v = n ? read_le(static_cast<std::size_t>(n)) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);
        push_int(static_cast<int64_t>(v));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        need(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(d_[pos_ + k]);
        pos_ += 8;
        PPtr v = make(Kind::kFloat);
        std::memcpy(&v->f, &bits, 8);
        push(v);
        break;
      }
      case 'X':
        push_str(take(read_le(4)));
        break;
      case 0x8c:
        push_str(take(read_le(1)));
        break;
      case 0x8d:
        push_str(take(read_le(8)));
        break;
      case 'T':
        push_str(take(read_le(4)));
        break;  // protocol-1 str (bytes in Python 2)
      case 'U':
        push_str(take(read_le(1)));
        break;
      case 'B':
        push_str(take(read_le(4)), Kind::kBytes);
        break;
      case 'C':
        push_str(take(read_le(1)), Kind::kBytes);
        break;
      case 0x8e:
        push_str(take(read_le(8)), Kind::kBytes);
        break;
      case 't': {
        PPtr v = make(Kind::kTuple);
        v->items = pop_mark();
        push(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        std::size_t n = op - 0x84u;
        PPtr v = make(Kind::kTuple);
        v->items.resize(n);
        for (std::size_t k = n; k-- > 0;) v->items[k] = pop();
        push(v);
        break;
      }
      case 'q':
        memo_put(read_le(1));
        break;
      case 'r':
        memo_put(read_le(4));
        break;
      case 0x94:
        memo_put(memo_.size());
        break;
      case 'h':
        memo_get(read_le(1));
        break;
      case 'j':
        memo_get(read_le(4));
        break;
      case 'c': {
        std::string module = line();
        std::string name = line();
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PPtr name = pop();
        PPtr module = pop();
        if (module->kind != Kind::kStr || name->kind != Kind::kStr)
          fail("STACK_GLOBAL needs two strings");
        push(global(module->s, name->s));
        break;
      }
      case 'R': {
        PPtr args = pop();
        PPtr callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 'Q': {
        PPtr pid = pop();
        push(persistent_load(pid));
        break;
      }
      case 'b': {  // BUILD: an OrderedDict's __dict__ (state_dict()._metadata) is dropped
        pop();
        const PPtr& obj = top();
        if (obj->kind != Kind::kDict) fail(std::string("BUILD on a ") + kind_name(obj->kind));
        break;
      }
      case 'a': {
        PPtr v = pop();
        if (top()->kind != Kind::kList) fail("APPEND to a non-list");
        top()->items.push_back(v);
        break;
      }
      case 'e': {
        std::vector<PPtr> items = pop_mark();
        if (top()->kind != Kind::kList) fail("APPENDS to a non-list");
        for (auto& v : items) top()->items.push_back(std::move(v));
        break;
      }
      case 's': {
        std::vector<PPtr> kv(2);
        kv[1] = pop();
        kv[0] = pop();
        set_items(top(), kv);
        break;
      }
      case 'u': {
        std::vector<PPtr> kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case '.': {
        if (stack_.size() != 1 || !marks_.empty()) fail("pickle ends with a malformed stack");
        return PickleResult{stack_.back(), pos_, arena_};
      }
      default: {
        const char* name = opcode_name(op);
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(name ? std::string("refused pickle opcode ") + name + " (" + hex +
                        "): torch.save never writes it for a state dict"
                  : std::string("invalid pickle opcode ") + hex);
      }
    }
  }
}

}  // namespace

PickleArena::~PickleArena() {
  for (auto& n : nodes) {
    n->items.clear();
    n->entries.clear();
  }
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kStr:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "class";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

PickleResult unpickle(std::string_view data, std::size_t start, const std::string& where) {
  return Machine(data, start, where).run();
}

}  // namespace xlt::io::detail
