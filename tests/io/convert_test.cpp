// `xlt convert`'s library side on small torch.save zips assembled here (one float storage per
// file, each tensor a 1-d view of it): sharded .bin checkpoints whose index and shards disagree,
// tensor names that are not UTF-8, and output folders that are files or must not be left behind.
#include <gtest/gtest.h>
#include <zip.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/io/convert.h"
#include "xlt/io/safetensors.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;
using test::TempDir;
using test::throws_with;

std::string binunicode(const std::string& s) {
  std::string out = "X";
  uint32_t n = static_cast<uint32_t>(s.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  return out + s;
}

// _rebuild_tensor_v2 of float storage "0" (`numel` elements): shape [size] at `offset`.
std::string tensor_pickle(int numel, int offset, int size) {
  std::string s = "ctorch._utils\n_rebuild_tensor_v2\n((" + binunicode("storage") +
                  "ctorch\nFloatStorage\n" + binunicode("0") + binunicode("cpu");
  for (int c : std::initializer_list<int>{'K', numel, 't', 'Q', 'K', offset, 'K', size, 0x85, 'K',
                                          1, 0x85, 0x89}) {
    s += static_cast<char>(c);
  }
  return s + "ccollections\nOrderedDict\n)RtR";
}

// A torch.save zip of `names`, tensor i = [2j, 2j+1] of a storage holding 0, 1, 2, ..., where
// j = pairs[i] (default: i; two names with one pair are one tensor, as tied weights are).
void write_bin(const fs::path& path, const std::vector<std::string>& names,
               std::vector<int> pairs = {}) {
  if (pairs.empty()) {
    for (std::size_t i = 0; i < names.size(); ++i) pairs.push_back(static_cast<int>(i));
  }
  const int numel = static_cast<int>(2 * names.size());
  std::string pkl = "\x80\x02}(";
  for (std::size_t i = 0; i < names.size(); ++i) {
    pkl += binunicode(names[i]) + tensor_pickle(numel, 2 * pairs[i], 2);
  }
  pkl += "u.";
  std::string data(static_cast<std::size_t>(numel) * 4, '\0');
  for (int i = 0; i < numel; ++i) {
    float f = static_cast<float>(i);
    std::memcpy(&data[static_cast<std::size_t>(i) * 4], &f, 4);
  }
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  for (const auto& [name, content] :
       {std::pair<std::string, const std::string*>{"archive/data.pkl", &pkl},
        {"archive/data/0", &data}}) {
    zip_source_t* src = zip_source_buffer(z, content->data(), content->size(), 0);
    ASSERT_GE(zip_file_add(z, name.c_str(), src, 0), 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

const char* kShard1 = "pytorch_model-00001-of-00002.bin";
const char* kShard2 = "pytorch_model-00002-of-00002.bin";

struct ShardedBin : ::testing::Test {
  TempDir tmp;
  fs::path model = tmp / "model";
  fs::path out = tmp / "out";
  ConvertOptions opts;

  void SetUp() override {
    fs::create_directories(model);
    opts.progress = false;
  }
  void write(const std::vector<std::string>& shard1, const std::vector<std::string>& shard2,
             const std::map<std::string, std::string>& weight_map) {
    write_bin(model / kShard1, shard1);
    write_bin(model / kShard2, shard2);
    test::write_text(
        model / "pytorch_model.bin.index.json",
        nlohmann::json{{"metadata", {{"total_size", 16}}}, {"weight_map", weight_map}}.dump());
  }
};

TEST_F(ShardedBin, MatchingIndexConvertsEveryTensor) {
  write({"a", "b"}, {"c"}, {{"a", kShard1}, {"b", kShard1}, {"c", kShard2}});
  ConvertResult r = convert_to_safetensors(model, out, opts);
  EXPECT_EQ(r.tensors, 3u);
  auto st = SafetensorsFile::open(out / "model.safetensors");
  // Each shard's storage holds 0, 1, ...: b is its second pair, c its first.
  for (const auto& [name, want] :
       std::map<std::string, std::vector<float>>{{"a", {0, 1}}, {"b", {2, 3}}, {"c", {0, 1}}}) {
    const TensorView& t = st->tensor(name);
    ASSERT_EQ(t.nbytes, 8u) << name;
    std::vector<float> got(2);
    std::memcpy(got.data(), t.data, 8);
    EXPECT_EQ(got, want) << name;
  }
}

// The index was read only to find the shards: a listed tensor its shard lacks was silently
// missing from the output, and an unlisted one converted without notice.
TEST_F(ShardedBin, IndexAndShardsMustAgree) {
  const std::string index = (model / "pytorch_model.bin.index.json").string();
  write({"a"}, {"c"}, {{"a", kShard1}, {"b", kShard2}});
  EXPECT_TRUE(throws_with<CheckpointError>(
      [&] { convert_to_safetensors(model, out, opts); },
      {index + ": tensor 'b' is listed in shard '" + kShard2 + "' but that file does not hold it"},
      2));

  write({"a", "x"}, {"c"}, {{"a", kShard1}, {"c", kShard2}});
  EXPECT_TRUE(throws_with<CheckpointError>(
      [&] { convert_to_safetensors(model, out, opts); },
      {(model / kShard1).string() + ": tensor 'x' is not listed in pytorch_model.bin.index.json"},
      2));

  write({"a", "c"}, {"c"}, {{"a", kShard1}, {"c", kShard2}});
  EXPECT_TRUE(throws_with<CheckpointError>(
      [&] { convert_to_safetensors(model, out, opts); },
      {(model / kShard1).string() + ": tensor 'c' is also in this shard, but " +
       "pytorch_model.bin.index.json assigns it to '" + kShard2 + "'"},
      2));

  fs::remove(model / kShard2);
  EXPECT_TRUE(throws_with<CheckpointError>(
      [&] { convert_to_safetensors(model, out, opts); },
      {index + ": shard '" + kShard2 + "' listed in weight_map does not exist"}, 2));
  EXPECT_FALSE(fs::exists(out));  // nothing written, not even the folder
}

// A name that is not UTF-8 reached the safetensors header's JSON and ended in nlohmann's
// type_error (exit 3), after the output folder had been created.
TEST(Convert, TensorNameThatIsNotUtf8IsRefusedWithItsOffset) {
  TempDir tmp;
  fs::create_directories(tmp / "model");
  write_bin(tmp / "model" / "pytorch_model.bin", {"ok", std::string("a\xff_name")});
  ConvertOptions opts;
  opts.progress = false;
  // The pickle: PROTO 2 (2 bytes), EMPTY_DICT, MARK, "ok" (7 + 2), its tensor, then the name's
  // BINUNICODE opcode, 4 length bytes, 'a' and the bad byte.
  const std::size_t op_at = 4 + 7 + tensor_pickle(4, 0, 2).size();
  EXPECT_TRUE(throws_with<CheckpointError>(
      [&] { convert_to_safetensors(tmp / "model", tmp / "out" / "sub", opts); },
      {(tmp / "model" / "pytorch_model.bin").string() + ":archive/data.pkl: BINUNICODE string",
       "not valid UTF-8: byte 0xff at offset " + std::to_string(op_at + 6),
       "at byte " + std::to_string(op_at) + ")"},
      2));
  EXPECT_FALSE(fs::exists(tmp / "out"));
}

// A tensor the pickle names twice (tied weights: torch.save writes the storage once) is written
// once, under the name that is not the tied output, as save_pretrained does; a tensor that only
// shares the storage (another offset) is its own tensor.
TEST(Convert, TiedWeightsAreWrittenOnce) {
  TempDir tmp;
  fs::create_directories(tmp / "model");
  write_bin(tmp / "model" / "pytorch_model.bin",
            {"lm_head.weight", "model.embed_tokens.weight", "model.layer.weight", "alias"},
            {0, 0, 1, 1});
  ConvertOptions opts;
  opts.progress = false;
  ConvertResult r = convert_to_safetensors(tmp / "model", tmp / "out", opts);
  using Pair = std::pair<std::string, std::string>;
  EXPECT_EQ(r.tied, (std::vector<Pair>{{"lm_head.weight", "model.embed_tokens.weight"},
                                       {"alias", "model.layer.weight"}}));
  EXPECT_EQ(r.tensors, 2u);
  EXPECT_EQ(r.bytes, 16u);
  auto st = SafetensorsFile::open(tmp / "out" / "model.safetensors");
  EXPECT_EQ(st->names(),
            (std::vector<std::string>{"model.embed_tokens.weight", "model.layer.weight"}));
  std::vector<float> got(2);
  std::memcpy(got.data(), st->tensor("model.layer.weight").data, 8);
  EXPECT_EQ(got, (std::vector<float>{2, 3}));

  // Sharded output: the index lists only what was written, and total_size counts it once.
  opts.max_shard_bytes = 8;
  r = convert_to_safetensors(tmp / "model", tmp / "sharded", opts);
  auto index =
      nlohmann::json::parse(test::read_text(tmp / "sharded" / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 16);
  EXPECT_EQ(index["weight_map"].size(), 2u);
  EXPECT_FALSE(index["weight_map"].contains("lm_head.weight"));
}

TEST(Convert, OutThatIsAFileIsAUsageError) {
  TempDir tmp;
  fs::create_directories(tmp / "model");
  write_bin(tmp / "model" / "pytorch_model.bin", {"a"});
  test::write_text(tmp / "afile", "x");
  ConvertOptions opts;
  opts.progress = false;
  EXPECT_TRUE(throws_with<UsageError>(
      [&] { convert_to_safetensors(tmp / "model", tmp / "afile", opts); },
      {"--out " + (tmp / "afile").string() + " exists and is not a folder"}, 1));
  EXPECT_EQ(test::read_text(tmp / "afile"), "x");
}

}  // namespace
}  // namespace xlt::io
