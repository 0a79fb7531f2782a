// safetensors reader/writer: the fixture checkpoints read back with the names the manifest lists
// and values equal to an independent parse of the raw bytes; exact round trips for every dtype;
// the writer's byte layout; sharded checkpoints through an index file.
#include "xlt/io/safetensors.h"

#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <regex>

#include <nlohmann/json.hpp>

#include "common/test_env.h"
#include "xlt/core/error.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;
using test::read_text;
using test::TempDir;

std::vector<fs::path> fixture_model_dirs() {
  std::vector<fs::path> dirs;
  if (!fs::is_directory(test::fixtures_dir())) return dirs;
  for (const auto& e : fs::directory_iterator(test::fixtures_dir()))
    if (fs::exists(e.path() / "model.safetensors")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// Independent of the reader: finds a tensor's data_offsets in the raw header with a regex and
// decodes the little-endian float32 values by hand.
std::vector<float> hand_parse_f32(const fs::path& file, const std::string& name) {
  std::string raw = read_text(file);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[i]);
  std::string header = raw.substr(8, n);
  std::regex re("\"" + std::regex_replace(name, std::regex(R"([.])"), R"(\.)") +
                R"(":\{"dtype":"F32","shape":\[[0-9,]*\],"data_offsets":\[([0-9]+),([0-9]+)\]\})");
  std::smatch m;
  if (!std::regex_search(header, m, re)) return {};
  std::size_t begin = std::stoull(m[1]), end = std::stoull(m[2]);
  std::vector<float> out;
  for (std::size_t off = 8 + n + begin; off < 8 + n + end; off += 4) {
    std::uint32_t bits = 0;
    for (int i = 3; i >= 0; --i) bits = (bits << 8) | static_cast<unsigned char>(raw[off + i]);
    float f;
    std::memcpy(&f, &bits, 4);
    out.push_back(f);
  }
  return out;
}

TEST(Safetensors, FixturesMatchManifestAndRawBytes) {
  XLT_REQUIRE_PATH(test::fixtures_dir());
  auto dirs = fixture_model_dirs();
  ASSERT_FALSE(dirs.empty()) << "no fixture folder with model.safetensors";
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.string());
    auto file = SafetensorsFile::open(dir / "model.safetensors");
    auto manifest = nlohmann::json::parse(read_text(dir / "manifest.json"));
    std::vector<std::string> expected = manifest.at("model_safetensors_tensors");
    std::vector<std::string> names = file->names();
    std::sort(expected.begin(), expected.end());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, expected);
    EXPECT_EQ(file->metadata().at("format"), "pt");
    EXPECT_EQ(file->file_size(), manifest["files"]["model.safetensors"]["bytes"].get<size_t>());

    // Data is tiled contiguously: the total bytes equal the file minus header.
    std::size_t total = 0;
    for (const auto& name : names) {
      const TensorView& t = file->tensor(name);
      EXPECT_EQ(t.nbytes, static_cast<size_t>(t.numel()) * dtype_size(t.dtype));
      total += t.nbytes;
    }
    std::string raw = read_text(dir / "model.safetensors");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
      header_len = (header_len << 8) | static_cast<unsigned char>(raw[i]);
    EXPECT_EQ(total, file->file_size() - 8 - header_len);

    // The fixtures were written by the reference implementation (all F32, so in name order):
    // rewriting them must reproduce the file byte for byte.
    TempDir tmp;
    std::vector<TensorView> views;
    for (const auto& name : names) views.push_back(file->tensor(name));
    write_safetensors(tmp / "copy.safetensors", views, file->metadata());
    EXPECT_TRUE(read_text(tmp / "copy.safetensors") == raw);

    for (const std::string& name : {names.front(), names.back(), names[names.size() / 2]}) {
      SCOPED_TRACE(name);
      const TensorView& t = file->tensor(name);
      ASSERT_EQ(t.dtype, DType::F32);
      std::vector<float> want = hand_parse_f32(dir / "model.safetensors", name);
      ASSERT_EQ(want.size(), static_cast<size_t>(t.numel()));
      std::vector<float> got(want.size());
      std::memcpy(got.data(), t.data, t.nbytes);
      EXPECT_EQ(got, want);
      // Perturbed parameters: nothing is trivially zero.
      EXPECT_NE(std::accumulate(got.begin(), got.end(), 0.0), 0.0);
    }
  }
}

TEST(Safetensors, DTypeTable) {
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::BOOL), 1u);
  EXPECT_EQ(dtype_name(DType::I16), "I16");
  EXPECT_EQ(parse_dtype("BF16"), DType::BF16);
  try {
    parse_dtype("F8_E4M3");
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("F8_E4M3"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("supported"), std::string::npos);
  }
}

struct OwnedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
  TensorView view() const { return TensorView{name, dtype, shape, bytes.data(), bytes.size()}; }
};

std::vector<OwnedTensor> random_tensors(unsigned seed) {
  std::mt19937 rng(seed);
  const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                       DType::I32, DType::I16, DType::I8,  DType::U8,   DType::BOOL};
  std::vector<OwnedTensor> out;
  int i = 0;
  for (DType d : all) {
    OwnedTensor t;
    t.name = "t" + std::to_string(9 - i++) + "." + std::string(dtype_name(d));
    t.dtype = d;
    t.shape = {3, static_cast<int64_t>(1 + rng() % 5)};
    t.bytes.resize(static_cast<size_t>(t.shape[0] * t.shape[1]) * dtype_size(d));
    for (auto& b : t.bytes) b = static_cast<std::byte>(d == DType::BOOL ? rng() % 2 : rng());
    out.push_back(std::move(t));
  }
  out.push_back({"scalar", DType::F32, {}, std::vector<std::byte>(4, std::byte{7})});
  out.push_back({"empty", DType::I64, {0, 4}, {}});
  return out;
}

TEST(Safetensors, RoundTripEveryDTypeExactly) {
  TempDir tmp;
  auto owned = random_tensors(42);
  std::vector<TensorView> views;
  for (const auto& t : owned) views.push_back(t.view());
  std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "round \"trip\""}};
  write_safetensors(tmp / "rt.safetensors", views, meta);

  auto f = SafetensorsFile::open(tmp / "rt.safetensors");
  EXPECT_EQ(f->metadata(), meta);
  // Header order = data order: the widest dtypes first (the reference's descending Dtype
  // order), then names, so every tensor's data starts at a multiple of its element size.
  auto rank = [](DType d) {
    const std::vector<DType> order = {DType::BOOL, DType::U8,  DType::I8,  DType::I16, DType::F16,
                                      DType::BF16, DType::I32, DType::F32, DType::F64, DType::I64};
    return std::find(order.begin(), order.end(), d) - order.begin();
  };
  std::vector<const OwnedTensor*> sorted;
  for (const auto& t : owned) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [&](const OwnedTensor* a, const OwnedTensor* b) {
    return rank(a->dtype) != rank(b->dtype) ? rank(a->dtype) > rank(b->dtype) : a->name < b->name;
  });
  std::vector<std::string> expected;
  for (const auto* t : sorted) expected.push_back(t->name);
  EXPECT_EQ(f->names(), expected);
  for (const auto& t : owned) {
    SCOPED_TRACE(t.name);
    const TensorView& v = f->tensor(t.name);
    EXPECT_EQ(v.dtype, t.dtype);
    EXPECT_EQ(v.shape, t.shape);
    ASSERT_EQ(v.nbytes, t.bytes.size());
    // memcmp with a null pointer is undefined even for 0 bytes (empty tensors have no data).
    if (v.nbytes > 0) {
      EXPECT_EQ(0, std::memcmp(v.data, t.bytes.data(), v.nbytes));
    }
  }
  const auto* data_start = f->tensor(expected.front()).data;
  for (const auto& n : expected) {
    EXPECT_EQ((f->tensor(n).data - data_start) % dtype_size(f->tensor(n).dtype), 0) << n;
  }
  EXPECT_EQ(f->tensor("scalar").numel(), 1);
  EXPECT_EQ(f->tensor("empty").numel(), 0);

  // Writing what we read reproduces the file byte for byte.
  std::vector<TensorView> again;
  for (const auto& n : f->names()) again.push_back(f->tensor(n));
  write_safetensors(tmp / "rt2.safetensors", again, f->metadata());
  EXPECT_EQ(read_text(tmp / "rt.safetensors"), read_text(tmp / "rt2.safetensors"));
}

TEST(Safetensors, WriterLayoutMatchesReference) {
  TempDir tmp;
  float a[2] = {1.0f, -2.5f};
  std::int8_t b[3] = {1, -2, 3};
  std::vector<TensorView> views{
      {"b", DType::I8, {3}, reinterpret_cast<const std::byte*>(b), 3},
      {"a", DType::F32, {1, 2}, reinterpret_cast<const std::byte*>(a), 8},
  };
  write_safetensors(tmp / "x.safetensors", views, {{"format", "pt"}});
  std::string raw = read_text(tmp / "x.safetensors");
  const std::string json =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"I8","shape":[3],"data_offsets":[8,11]}})";
  std::size_t padded = (json.size() + 7) / 8 * 8;
  ASSERT_EQ(raw.size(), 8 + padded + 11);
  EXPECT_EQ(static_cast<unsigned char>(raw[0]), padded);
  EXPECT_EQ(raw.substr(1, 7), std::string(7, '\0'));
  EXPECT_EQ(raw.substr(8, json.size()), json);
  EXPECT_EQ(raw.substr(8 + json.size(), padded - json.size()),
            std::string(padded - json.size(), ' '));
  EXPECT_EQ(0, std::memcmp(raw.data() + 8 + padded, a, 8));
  EXPECT_EQ(0, std::memcmp(raw.data() + 8 + padded + 8, b, 3));
  // No temp file is left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1);

  // Mixed widths: safetensors.torch.save_file({"a.bias": f16[3], "b.ids": i64[2]}) puts the
  // I64 tensor first, so its data stays 8-byte aligned (name order would put it at byte 6).
  std::uint16_t h[3] = {0x3c00, 0x4000, 0x4200};
  std::int64_t ids[2] = {7, -1};
  write_safetensors(tmp / "mixed.safetensors",
                    {{"a.bias", DType::F16, {3}, reinterpret_cast<const std::byte*>(h), 6},
                     {"b.ids", DType::I64, {2}, reinterpret_cast<const std::byte*>(ids), 16}});
  raw = read_text(tmp / "mixed.safetensors");
  EXPECT_NE(raw.find(R"({"b.ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},)"
                     R"("a.bias":{"dtype":"F16","shape":[3],"data_offsets":[16,22]}})"),
            std::string::npos)
      << raw;
}

TEST(Safetensors, WriterRejectsBadViews) {
  TempDir tmp;
  float a[2] = {1, 2};
  auto p = reinterpret_cast<const std::byte*>(a);
  EXPECT_THROW(write_safetensors(tmp / "x.safetensors", {{"a", DType::F32, {3}, p, 8}}),
               CheckpointError);
  EXPECT_THROW(write_safetensors(tmp / "x.safetensors",
                                 {{"a", DType::F32, {2}, p, 8}, {"a", DType::F32, {2}, p, 8}}),
               CheckpointError);
  // A repeated name is refused even where the two dtypes sort apart.
  EXPECT_THROW(write_safetensors(tmp / "x.safetensors", {{"a", DType::F32, {2}, p, 8},
                                                         {"b", DType::F32, {2}, p, 8},
                                                         {"a", DType::U8, {8}, p, 8}}),
               CheckpointError);
  EXPECT_FALSE(fs::exists(tmp / "x.safetensors"));
}

TEST(Safetensors, HfOrderedByOffsetNotName) {
  // Files from other writers may list tensors in any order with offsets not in name order.
  TempDir tmp;
  std::string json =
      R"({"z":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})";
  std::string raw(8, '\0');
  raw[0] = static_cast<char>(json.size());
  raw += json + "\x05\x06\x07";
  test::write_text(tmp / "o.safetensors", raw);
  auto f = SafetensorsFile::open(tmp / "o.safetensors");
  EXPECT_EQ(f->names(), (std::vector<std::string>{"z", "a"}));  // header order kept
  EXPECT_EQ(static_cast<int>(f->tensor("a").data[0]), 7);
  EXPECT_EQ(static_cast<int>(f->tensor("z").data[1]), 6);
}

TEST(Checkpoint, ShardedIndex) {
  TempDir tmp;
  float w1[4] = {1, 2, 3, 4}, w2[2] = {5, 6}, w3[1] = {7};
  auto bp = [](const float* f) { return reinterpret_cast<const std::byte*>(f); };
  write_safetensors(
      tmp / "model-00001-of-00002.safetensors",
      {{"enc.w", DType::F32, {2, 2}, bp(w1), 16}, {"enc.b", DType::F32, {2}, bp(w2), 8}});
  write_safetensors(tmp / "model-00002-of-00002.safetensors",
                    {{"head.w", DType::F32, {1}, bp(w3), 4}});
  nlohmann::json index = {{"metadata", {{"total_size", 28}}},
                          {"weight_map",
                           {{"enc.w", "model-00001-of-00002.safetensors"},
                            {"enc.b", "model-00001-of-00002.safetensors"},
                            {"head.w", "model-00002-of-00002.safetensors"}}}};
  test::write_text(tmp / "model.safetensors.index.json", index.dump(2));

  for (const fs::path& p : {tmp.path(), tmp / "model.safetensors.index.json"}) {
    Checkpoint ck = Checkpoint::open(p);
    EXPECT_EQ(ck.names(), (std::vector<std::string>{"enc.b", "enc.w", "head.w"}));
    EXPECT_EQ(ck.files().size(), 2u);
    float got;
    std::memcpy(&got, ck.tensor("head.w").data, 4);
    EXPECT_EQ(got, 7.0f);
    std::memcpy(&got, ck.tensor("enc.w").data + 12, 4);
    EXPECT_EQ(got, 4.0f);
    EXPECT_EQ(ck.find("nope"), nullptr);
    EXPECT_THROW(ck.tensor("nope"), CheckpointError);
  }

  // The index and the shards must agree.
  auto expect_error = [&](const nlohmann::json& idx, const std::string& needle) {
    test::write_text(tmp / "model.safetensors.index.json", idx.dump());
    try {
      Checkpoint::open(tmp.path());
      ADD_FAILURE() << "expected CheckpointError mentioning " << needle;
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto missing_shard = index;
  missing_shard["weight_map"]["head.w"] = "model-00003-of-00002.safetensors";
  expect_error(missing_shard, "model-00003-of-00002.safetensors");
  auto unlisted = index;
  unlisted["weight_map"].erase("enc.b");
  expect_error(unlisted, "'enc.b' is not listed");
  auto wrong_shard = index;
  wrong_shard["weight_map"]["enc.b"] = "model-00002-of-00002.safetensors";
  expect_error(wrong_shard, "enc.b");
  auto escape = index;
  escape["weight_map"]["head.w"] = "../elsewhere.safetensors";
  expect_error(escape, "relative to the index");
  test::write_text(tmp / "model.safetensors.index.json",
                   R"({"weight_map":{"enc.w":"a","enc.w":"b"}})");
  EXPECT_THROW(Checkpoint::open(tmp.path()), CheckpointError);
}

TEST(Checkpoint, FolderWithoutWeights) {
  TempDir tmp;
  try {
    Checkpoint::open(tmp.path());
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(tmp.path().string()), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos);
  }
}

}  // namespace
}  // namespace xlt::io
