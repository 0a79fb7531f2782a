// pytorch_model.bin reader: the committed torch.save files of tests/io/data/torch_bin (made by
// make_torch_bin.py with PyTorch 1.13) must give byte-for-byte the tensors the same script wrote
// as safetensors; malicious pickles must be refused naming the global or opcode; hand-built
// pickles cover the error paths.
#include <gtest/gtest.h>

#include <cstring>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/io/safetensors.h"
#include "xlt/io/torch_pickle.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;

fs::path data_dir() {
  return test::source_dir() / "tests" / "io" / "data" / "torch_bin";
}

template <typename T>
std::vector<T> values(const OwnedTensor& t) {
  EXPECT_EQ(t.nbytes % sizeof(T), 0u);
  std::vector<T> out(t.nbytes / sizeof(T));
  std::memcpy(out.data(), t.data(), t.nbytes);
  return out;
}

// Every tensor of `bin` equals (dtype, shape, bytes) the one of the same name in `st`.
void expect_same_tensors(const fs::path& bin, const fs::path& st) {
  auto ckpt = TorchBinCheckpoint::open(bin);
  auto ref = SafetensorsFile::open(st);
  std::vector<std::string> a = ckpt.names(), b = ref->names();
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  ASSERT_EQ(a, b);
  for (const auto& name : ckpt.names()) {
    OwnedTensor t = ckpt.tensor(name);
    const TensorView& r = ref->tensor(name);
    EXPECT_EQ(dtype_name(t.dtype), dtype_name(r.dtype)) << name;
    EXPECT_EQ(t.shape, r.shape) << name;
    ASSERT_EQ(t.nbytes, r.nbytes) << name;
    // memcmp with a null pointer is undefined even for 0 bytes (empty tensors have no data).
    if (r.nbytes > 0) {
      EXPECT_EQ(std::memcmp(t.data(), r.data, r.nbytes), 0) << name;
    }
    TensorView v = t.view();
    EXPECT_EQ(v.data, t.data());
    EXPECT_EQ(v.numel(), t.numel());
  }
}

TEST(TorchBin, StateDictEqualsTheSafetensorsCopy) {
  expect_same_tensors(data_dir() / "state_dict.bin", data_dir() / "state_dict.safetensors");
  auto ckpt = TorchBinCheckpoint::open(data_dir() / "state_dict.bin");
  EXPECT_EQ(ckpt.format(), "zip");
  // State dict order, as saved.
  ASSERT_GE(ckpt.names().size(), 3u);
  EXPECT_EQ(ckpt.names()[0], "linear.weight");
  EXPECT_EQ(ckpt.names()[1], "linear.bias");
  EXPECT_EQ(ckpt.names()[2], "f16");
}

TEST(TorchBin, HandComputedValuesOfViews) {
  auto ckpt = TorchBinCheckpoint::open(data_dir() / "state_dict.bin");
  // base = arange(20).reshape(4, 5) / 4; col = base[:, 2] -> elements 2, 7, 12, 17.
  EXPECT_EQ(values<float>(ckpt.tensor("shared.col")),
            (std::vector<float>{0.5f, 1.75f, 3.0f, 4.25f}));
  EXPECT_EQ(values<float>(ckpt.tensor("shared.row")),
            (std::vector<float>{1.25f, 1.5f, 1.75f, 2.0f, 2.25f}));
  OwnedTensor t = ckpt.tensor("shared.t");
  EXPECT_EQ(t.shape, (std::vector<int64_t>{5, 4}));
  EXPECT_EQ(values<float>(t)[1], 1.25f);  // t[0][1] = base[1][0] = 5 / 4
  // arange(24).reshape(2, 3, 4)[:, ::2, 1:3]
  EXPECT_EQ(values<float>(ckpt.tensor("strided")),
            (std::vector<float>{1, 2, 9, 10, 13, 14, 21, 22}));
  EXPECT_EQ(values<float>(ckpt.tensor("expanded")),
            (std::vector<float>{1.5f, -2, 1.5f, -2, 1.5f, -2}));
  EXPECT_EQ(values<int64_t>(ckpt.tensor("i64")),
            (std::vector<int64_t>{0, -1, int64_t{1} << 40, -(int64_t{1} << 62), 7}));
  EXPECT_EQ(values<float>(ckpt.tensor("scalar")), (std::vector<float>{3.5f}));
  EXPECT_TRUE(ckpt.tensor("scalar").shape.empty());
  EXPECT_EQ(ckpt.tensor("empty").nbytes, 0u);
  EXPECT_EQ(ckpt.tensor("empty").shape, (std::vector<int64_t>{0, 3}));
  // float16 bits: 1.0 = 0x3c00; half.view = arange(12).reshape(3, 4)[1:, 1::2] = 5, 7, 9, 11.
  std::vector<uint16_t> h = values<uint16_t>(ckpt.tensor("half.view"));
  EXPECT_EQ(h, (std::vector<uint16_t>{0x4500, 0x4700, 0x4880, 0x4980}));
  // bfloat16 bits: 1.0 = 0x3f80, -2.5 = 0xc020.
  std::vector<uint16_t> bf = values<uint16_t>(ckpt.tensor("bf16"));
  EXPECT_EQ(bf[0], 0x3f80);
  EXPECT_EQ(bf[1], 0xc020);
  EXPECT_EQ(values<uint8_t>(ckpt.tensor("mask")), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(ckpt.tensor("param").shape, (std::vector<int64_t>{1, 2}));
}

TEST(TorchBin, SharedStoragesAreReadOnceAndViewsShareThem) {
  auto ckpt = TorchBinCheckpoint::open(data_dir() / "state_dict.bin");
  const TorchTensorInfo& base = ckpt.info("shared.base");
  const TorchTensorInfo& row = ckpt.info("shared.row");
  const TorchTensorInfo& tr = ckpt.info("shared.t");
  EXPECT_EQ(row.storage_key, base.storage_key);
  EXPECT_EQ(tr.storage_key, base.storage_key);
  EXPECT_EQ(row.storage_offset, 5);
  EXPECT_TRUE(row.contiguous());
  EXPECT_FALSE(tr.contiguous());
  EXPECT_EQ(tr.stride, (std::vector<int64_t>{1, 5}));
  OwnedTensor b = ckpt.tensor("shared.base");
  OwnedTensor r = ckpt.tensor("shared.row");
  EXPECT_EQ(r.buffer, b.buffer);  // a contiguous view needs no copy
  EXPECT_EQ(r.data(), b.data() + 5 * sizeof(float));
  OwnedTensor t = ckpt.tensor("shared.t");
  EXPECT_NE(t.buffer, b.buffer);  // a strided one is materialised
}

TEST(TorchBin, Protocol4AndAnotherArchiveName) {
  expect_same_tensors(data_dir() / "protocol4.bin", data_dir() / "protocol4.safetensors");
  auto ckpt = TorchBinCheckpoint::open(data_dir() / "protocol4.bin");
  // a = arange(6).reshape(2, 3).t()
  EXPECT_EQ(values<int64_t>(ckpt.tensor("a")), (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
}

TEST(TorchBin, LegacyPre16FormatIsRead) {
  expect_same_tensors(data_dir() / "legacy.bin", data_dir() / "protocol4.safetensors");
  EXPECT_EQ(TorchBinCheckpoint::open(data_dir() / "legacy.bin").format(), "legacy");
}

void expect_refused(const std::string& file, const std::vector<std::string>& parts) {
  try {
    TorchBinCheckpoint::open(data_dir() / file);
    FAIL() << file << ": expected CheckpointError";
  } catch (const CheckpointError& e) {
    std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << file << ": " << msg;
    EXPECT_EQ(exit_code_for(e), 2);
  }
}

TEST(TorchBin, MaliciousPicklesAreRefusedByName) {
  expect_refused("evil_os_system.bin", {"refused pickle global 'os.system'", "byte 2", "data.pkl"});
  expect_refused("evil_stack_global.bin", {"refused pickle global 'builtins.eval'"});
  expect_refused("evil_reduce_storage.bin", {"REDUCE on 'torch.FloatStorage'"});
  expect_refused("evil_inst.bin", {"refused pickle opcode INST (0x69)"});
  expect_refused("evil_bad_opcode.bin", {"invalid pickle opcode 0xff"});
  EXPECT_FALSE(fs::exists("/tmp/xlt-pwned"));
}

// Hand-built pickles (protocol 2) for the error paths.
std::string binunicode(const std::string& s) {
  std::string out = "X";
  uint32_t n = static_cast<uint32_t>(s.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  return out + s;
}
// A _rebuild_tensor_v2 call on a float storage "0" of `numel` elements, 1-d shape [size].
std::string tensor_pickle(int numel, int size) {
  std::string s = "ctorch._utils\n_rebuild_tensor_v2\n((" + binunicode("storage") +
                  "ctorch\nFloatStorage\n" + binunicode("0") + binunicode("cpu");
  // numel, close the persistent id; offset 0, size (size,), stride (1,), requires_grad False
  for (int c : std::initializer_list<int>{'K', numel, 't', 'Q', 'K', 0, 'K', size, 0x85, 'K', 1,
                                          0x85, 0x89}) {
    s += static_cast<char>(c);
  }
  return s + "ccollections\nOrderedDict\n)RtR";  // backward hooks; close the args; call
}

TEST(TorchPickle, ErrorsSayWhatIsWrong) {
  auto expect_error = [](const std::string& pkl, const std::string& part) {
    try {
      parse_torch_state_dict_pickle(pkl, "test.pkl");
      FAIL() << "expected CheckpointError for " << part;
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  const std::string proto = "\x80\x02";
  // A valid one first, so the helpers are known good.
  auto ok = parse_torch_state_dict_pickle(
      proto + "}" + binunicode("w") + tensor_pickle(4, 4) + "s.", "ok");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].first, "w");
  EXPECT_EQ(ok[0].second.shape, (std::vector<int64_t>{4}));
  expect_error(proto + "}" + binunicode("w") + tensor_pickle(4, 5) + "s.",
               "run past the end of the storage");
  expect_error(proto + "}" + binunicode("epoch") + "K\x03s.",
               "entry 'epoch' is a int, not a tensor");
  expect_error(proto + "}" + binunicode("model") + "}s.", "training checkpoint");
  expect_error(proto + "]", "truncated pickle");
  expect_error(proto + "K\x01K\x02.", "malformed stack");
  expect_error(std::string("\x80\x01]."), "pickle protocol 1");
  expect_error(proto + "h\x07", "memo has no entry 7");
  expect_error(proto + "ctorch\nUntypedStorage\n.", "'torch.UntypedStorage'");
}

// Python decodes the str opcodes as UTF-8 (UnicodeDecodeError on bad bytes); passed through,
// a bad name ended as a JSON type_error when the safetensors header was written.
TEST(TorchPickle, StringsMustBeUtf8) {
  const std::string proto = "\x80\x02";
  auto parse_with_key = [&](const std::string& key_opcodes) {
    return parse_torch_state_dict_pickle(proto + "}" + key_opcodes + tensor_pickle(4, 4) + "s.",
                                         "test.pkl");
  };
  // Two-, three- and four-byte characters are names like any other.
  const std::string name = "w\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  auto ok = parse_with_key(binunicode(name));
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].first, name);
  // PROTO, EMPTY_DICT, then the key's opcode at byte 3 and its first string byte at 8.
  auto refused = [&](const std::string& key, std::initializer_list<std::string> parts) {
    return test::throws_with<CheckpointError>([&] { parse_with_key(key); }, parts, 2);
  };
  EXPECT_TRUE(refused(binunicode("a\xff_name"),
                      {"test.pkl: BINUNICODE string is not valid UTF-8: byte 0xff at offset 9 "
                       "cannot start a character",
                       "UnicodeDecodeError", "(at byte 3)"}));
  EXPECT_TRUE(refused(std::string("\x8c\x03") + "a\xe2\x82",
                      {"SHORT_BINUNICODE string", "byte 0xe2 at offset 6", "cuts off"}));
  EXPECT_TRUE(refused(binunicode("\xc3("), {"byte 0x28 at offset 9 is not a continuation byte"}));
  EXPECT_TRUE(refused(binunicode("\xc0\xaf"), {"byte 0xc0 at offset 8 cannot start"}));
  EXPECT_TRUE(refused(binunicode("\xe0\x80\xaf"), {"overlong"}));
  EXPECT_TRUE(refused(binunicode("\xed\xa0\x80"), {"lone UTF-16 surrogate"}));
  EXPECT_TRUE(refused(binunicode("\xf4\x90\x80\x80"), {"past U+10FFFF"}));
}

TEST(TorchPickle, DeeplyNestedValuesAreRefusedWithoutCrashing) {
  // ((((...[]...,),),),): 300,000 TUPLE1s, one byte each. Freeing it recursively would
  // overflow the stack; the pickle arena frees it flat.
  std::string p = "\x80\x02]" + std::string(300000, '\x85') + ".";
  try {
    parse_torch_state_dict_pickle(p, "deep.pkl");
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("holds a tuple, not a state dict"), std::string::npos)
        << e.what();
  }
}

TEST(TorchPickle, MaterializeHandlesStridesAndOffsets) {
  std::vector<float> storage(12);
  for (int i = 0; i < 12; ++i) storage[i] = static_cast<float>(i);
  TorchTensorInfo t;
  t.dtype = DType::F32;
  t.shape = {2, 3};
  t.stride = {1, 2};
  t.storage_offset = 1;
  t.storage_key = "0";
  t.storage_numel = 12;
  auto bytes = materialize_contiguous(t, reinterpret_cast<const std::byte*>(storage.data()),
                                      storage.size() * sizeof(float), "x");
  std::vector<float> got(6);
  std::memcpy(got.data(), bytes.data(), bytes.size());
  // element (i, j) = storage[1 + i + 2j]
  EXPECT_EQ(got, (std::vector<float>{1, 3, 5, 2, 4, 6}));
  t.storage_offset = 7;  // last element at 7 + 1 + 4 = 12: one past the end
  EXPECT_THROW(materialize_contiguous(t, reinterpret_cast<const std::byte*>(storage.data()),
                                      storage.size() * sizeof(float), "x"),
               CheckpointError);
}

TEST(TorchBin, NotATorchFile) {
  test::TempDir tmp;
  test::write_text(tmp / "x.bin", "hello, not a checkpoint");
  try {
    TorchBinCheckpoint::open(tmp / "x.bin");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("not a torch.save file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TorchBinCheckpoint::open(tmp / "missing.bin"), IoError);
}

}  // namespace
}  // namespace xlt::io
