// Regression tests for inputs that the libFuzzer targets (fuzz/) found to crash or misbehave in
// the io parsers. Each one must now be refused with a typed input error (CLI exit code 2).
#include <zip.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/io/config.h"
#include "xlt/io/safetensors.h"
#include "xlt/io/torch_pickle.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;
using test::TempDir;
using test::throws_with;
using test::write_text;

// fuzz/model_config_fuzz: a number beyond double range escaped nlohmann's parser as
// json::out_of_range (an "internal error", exit 3) instead of a ConfigError naming the file.
TEST(FuzzRegression, ConfigNumberOverflowIsAConfigError) {
  TempDir tmp;
  write_text(tmp / "config.json", R"({"model_type": "bert", "vocab_size": 2e6666666666650002})");
  EXPECT_TRUE(throws_with<ConfigError>([&] { ModelConfig::load(tmp / "config.json"); },
                                       {"config.json", "number overflow"}, 2));
}

// fuzz/safetensors_index_fuzz: the same overflow in model.safetensors.index.json.
TEST(FuzzRegression, IndexNumberOverflowIsACheckpointError) {
  TempDir tmp;
  write_text(tmp / "model.safetensors.index.json",
             R"({"metadata": {"total_size": 1e999}, "weight_map": {}})");
  EXPECT_TRUE(throws_with<CheckpointError>([&] { Checkpoint::open(tmp.path()); },
                                           {"model.safetensors.index.json", "number overflow"}, 2));
}

// fuzz/torch_pickle_fuzz: a zip whose central directory claims a huge uncompressed size made the
// reader allocate that much (3.4 GB for a 60-byte file) before reading a byte.
TEST(FuzzRegression, ZipRecordSizeIsNotTrustedBeforeAllocating) {
  TempDir tmp;
  const fs::path file = tmp / "pytorch_model.bin";
  int err = 0;
  zip_t* z = zip_open(file.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  static const char kPickle[] = "\x80\x02}.";
  zip_source_t* s = zip_source_buffer(z, kPickle, sizeof kPickle - 1, 0);
  zip_int64_t idx = zip_file_add(z, "archive/data.pkl", s, 0);
  ASSERT_GE(idx, 0);
  ASSERT_EQ(zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), ZIP_CM_STORE, 0), 0);
  ASSERT_EQ(zip_close(z), 0);

  // The sane file reads (an empty state dict); then patch the central directory's uncompressed
  // size (offset 24 of the "PK\1\2" header) to 3,000,000,000.
  EXPECT_TRUE(TorchBinCheckpoint::open(file).names().empty());
  std::string bytes = test::read_text(file);
  const auto cd = bytes.find(std::string("PK\x01\x02", 4));
  ASSERT_NE(cd, std::string::npos);
  const uint32_t huge = 3'000'000'000u;
  std::memcpy(&bytes[cd + 24], &huge, 4);
  write_text(file, bytes);
  EXPECT_TRUE(throws_with<CheckpointError>([&] { TorchBinCheckpoint::open(file); },
                                           {"claims 3000000000 bytes", "corrupt zip"}, 2));

  // The compressed size (offset 20) is a claim too: with both set to 1.9 GB the ratio check alone
  // passed and the reader allocated 1.9 GB for a 1 KB file (found by fuzz/torch_pickle_fuzz).
  const uint32_t big = 1'900'000'000u;
  std::memcpy(&bytes[cd + 20], &big, 4);
  std::memcpy(&bytes[cd + 24], &big, 4);
  write_text(file, bytes);
  EXPECT_TRUE(throws_with<CheckpointError>([&] { TorchBinCheckpoint::open(file); },
                                           {"claims 1900000000 bytes", "corrupt zip"}));
}

}  // namespace
}  // namespace xlt::io
