// The built `xlt` binary's download, download-data and convert commands end to end, against the
// fake hub: exit codes, stdout (the folder), and the messages users see. Skipped locally when the
// binary has not been built (the io suite does not build it), required under CI=true. A "slow"
// test: each run of the binary pays libtorch's start-up (about 2.7 s on the 2-core dev machine).
#include <gtest/gtest.h>
#include <zip.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "common/test_env.h"
#include "io/fake_hub.h"
#include "xlt/io/hub.h"
#include "xlt/io/safetensors.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;
using test::read_text;
using test::shell_quote;
using test::TempDir;

const char* kCommit = "89abcdef0123456789abcdef0123456789abcdef";

#define XLT_REQUIRE_CLI() XLT_REQUIRE_PATH(test::cli_path())

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

fs::path torch_bin_dir() {
  return test::source_dir() / "tests" / "io" / "data" / "torch_bin";
}

struct CliFixture : ::testing::Test {
  test::FakeHub hub;
  TempDir tmp;
  std::string env;

  void SetUp() override {
    hub.add_repo("xlt-test/model", kCommit,
                 {{"config.json", R"({"model_type": "bert"})"}, {"model.safetensors", "weights"}});
    hub.require_token("xlt-test/gated", "hf_ok");
    hub.add_repo("xlt-test/gated", kCommit, {{"config.json", "{}"}});
    env = "HF_ENDPOINT=" + shell_quote(hub.url()) +
          " HF_HUB_CACHE=" + shell_quote((tmp / "hub").string()) +
          " HF_TOKEN= HF_HUB_OFFLINE= HF_HOME=" + shell_quote((tmp / "hf").string()) + " ";
  }
  test::CommandResult xlt(const std::string& prefix, const std::string& args) {
    return test::run_command(prefix + shell_quote(test::cli_path().string()) + " " + args);
  }
};

TEST_F(CliFixture, DownloadPrintsTheSnapshotFolder) {
  XLT_REQUIRE_CLI();
  auto r = xlt(env, "download xlt-test/model --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::path snap = tmp / "hub" / "models--xlt-test--model" / "snapshots" / kCommit;
  EXPECT_EQ(trim(r.out), snap.string());
  EXPECT_EQ(read_text(snap / "model.safetensors"), "weights");
  r = xlt(env, "download xlt-test/model@main --include '*.json'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("0 downloaded"), std::string::npos) << r.err;
}

TEST_F(CliFixture, DownloadErrorsExitTwoWithAdvice) {
  XLT_REQUIRE_CLI();
  auto r = xlt(env, "download xlt-test/gated --quiet");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("HF_TOKEN"), std::string::npos) << r.err;
  r = xlt(env + "HF_TOKEN=hf_ok ", "download xlt-test/gated --quiet");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = xlt(env + "HF_HUB_OFFLINE=1 ", "download xlt-test/model --quiet");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("HF_HUB_OFFLINE=1"), std::string::npos) << r.err;
  r = xlt(env, "download xlt-test/model --revision nope --quiet");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("revision 'nope' not found"), std::string::npos) << r.err;
  r = xlt(env, "download 'not a repo id'");
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

TEST_F(CliFixture, DownloadDataUnpacksIntoTheDataHome) {
  XLT_REQUIRE_CLI();
  int err = 0;
  fs::path zp = tmp / "x.zip";
  zip_t* z = zip_open(zp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  std::string tsv = "language\tgold_label\tsentence1\tsentence2\n";
  for (const char* name : {"XNLI-1.0/xnli.dev.tsv", "XNLI-1.0/xnli.test.tsv"}) {
    zip_file_add(z, name, zip_source_buffer(z, tsv.data(), tsv.size(), 0), 0);
  }
  ASSERT_EQ(zip_close(z), 0);
  std::string bytes = read_text(zp);
  hub.add_raw("/XNLI-1.0.zip", bytes);
  std::string e = "XLT_XNLI_URL=" + shell_quote(hub.url() + "/XNLI-1.0.zip") +
                  " XLT_XNLI_SHA256=" + sha256_hex(bytes) + " ";
  auto r = xlt(e, "download-data xnli --dir " + shell_quote((tmp / "data").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(trim(r.out), (tmp / "data" / "xnli").string());
  EXPECT_TRUE(fs::exists(tmp / "data" / "xnli" / "XNLI-1.0" / "xnli.test.tsv"));
  EXPECT_NE(r.err.find("xnli:lang=hi:split=test"), std::string::npos) << r.err;
  r = xlt("XLT_XNLI_URL=" + shell_quote(hub.url() + "/XNLI-1.0.zip") + " ",
          "download-data xnli --force --quiet --dir " + shell_quote((tmp / "d2").string()));
  EXPECT_EQ(r.exit_code, 2);  // the pinned checksum is not this zip's
  EXPECT_NE(r.err.find("size mismatch"), std::string::npos) << r.err;
  r = xlt("", "download-data squad");
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

TEST_F(CliFixture, ConvertWritesSafetensorsAndRefusesMaliciousPickles) {
  XLT_REQUIRE_CLI();
  fs::path model = tmp / "model";
  fs::create_directories(model);
  fs::copy_file(torch_bin_dir() / "state_dict.bin", model / "pytorch_model.bin");
  test::write_text(model / "config.json", R"({"model_type": "bert"})");
  test::write_text(model / "vocab.txt", "[PAD]\n");
  auto r = xlt("", "convert " + shell_quote(model.string()) + " --to safetensors --out " +
                       shell_quote((tmp / "out").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(tmp / "out" / "config.json"), R"({"model_type": "bert"})");
  EXPECT_EQ(read_text(tmp / "out" / "vocab.txt"), "[PAD]\n");
  auto got = SafetensorsFile::open(tmp / "out" / "model.safetensors");
  auto want = SafetensorsFile::open(torch_bin_dir() / "state_dict.safetensors");
  EXPECT_EQ(got->metadata().at("format"), "pt");
  // The same tensors; xlt orders them widest dtype first (safetensors' own writer does), the
  // hand-written reference by name.
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  ASSERT_EQ(sorted(got->names()), sorted(want->names()));
  const std::byte* data_start = got->tensor(got->names().front()).data;
  for (const auto& name : got->names()) {
    const TensorView& t = got->tensor(name);
    EXPECT_EQ((t.data - data_start) % dtype_size(t.dtype), 0) << name << " is not aligned";
  }
  for (const auto& name : want->names()) {
    const TensorView& a = got->tensor(name);
    const TensorView& b = want->tensor(name);
    EXPECT_EQ(a.dtype, b.dtype) << name;
    EXPECT_EQ(a.shape, b.shape) << name;
    ASSERT_EQ(a.nbytes, b.nbytes) << name;
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << name;
  }

  // Sharded output: each shard at most 0.0000002 GB = 200 bytes (of 430) of tensor data.
  r = xlt("", "convert " + shell_quote(model.string()) + " --out " +
                  shell_quote((tmp / "sharded").string()) + " --max-shard-size 0.0000002 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto index = nlohmann::json::parse(read_text(tmp / "sharded" / "model.safetensors.index.json"));
  EXPECT_EQ(index["weight_map"].size(), want->names().size());
  std::set<std::string> shards;
  for (auto& [name, file] : index["weight_map"].items()) {
    shards.insert(file.get<std::string>());
    EXPECT_TRUE(SafetensorsFile::open(tmp / "sharded" / file.get<std::string>())->contains(name));
  }
  EXPECT_GE(shards.size(), 2u);
  EXPECT_FALSE(fs::exists(tmp / "sharded" / "model.safetensors"));

  // Converting again into that folder as one file removes the shards and their index: left
  // there, they were read instead of the new weights.
  r = xlt("", "convert " + shell_quote(model.string()) + " --out " +
                  shell_quote((tmp / "sharded").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("removed the earlier model.safetensors.index.json model-00001-of-"),
            std::string::npos)
      << r.err;
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp / "sharded")) {
    left.insert(e.path().filename().string());
  }
  EXPECT_EQ(left, (std::set<std::string>{"config.json", "model.safetensors", "vocab.txt"}));
  // Loaders take the single file where both forms are present, as transformers does.
  test::write_text(tmp / "sharded" / "model.safetensors.index.json",
                   R"({"weight_map": {"missing": "model-00001-of-00009.safetensors"}})");
  auto sorted_names = want->names();
  std::sort(sorted_names.begin(), sorted_names.end());
  EXPECT_EQ(Checkpoint::open(tmp / "sharded").names(), sorted_names);

  fs::path evil = tmp / "evil";
  fs::create_directories(evil);
  fs::copy_file(torch_bin_dir() / "evil_os_system.bin", evil / "pytorch_model.bin");
  r = xlt("", "convert " + shell_quote(evil.string()) + " --to safetensors --out " +
                  shell_quote((tmp / "evil_out").string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("refused pickle global 'os.system'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "evil_out" / "model.safetensors"));
}

}  // namespace
}  // namespace xlt::io
