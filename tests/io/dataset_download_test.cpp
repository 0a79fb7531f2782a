// Dataset archives against the fake hub's plain-file server: a small XNLI-shaped zip built here
// with libzip, checksum pinning and overrides, unpacking (zip-slip and macOS junk), the manifest,
// and dataset specs resolved against the data home.
#include <gtest/gtest.h>
#include <zip.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <thread>

#include "common/test_env.h"
#include "io/fake_hub.h"
#include "xlt/core/error.h"
#include "xlt/io/dataset_download.h"
#include "xlt/io/hub.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;
using test::read_text;
using test::TempDir;

// Builds a zip of (name, content) entries and returns its bytes.
std::string make_zip(const fs::path& where,
                     const std::vector<std::pair<std::string, std::string>>& entries) {
  int err = 0;
  zip_t* z = zip_open(where.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  EXPECT_NE(z, nullptr);
  for (const auto& [name, content] : entries) {
    zip_source_t* s = zip_source_buffer(z, content.data(), content.size(), 0);
    EXPECT_GE(zip_file_add(z, name.c_str(), s, ZIP_FL_ENC_UTF_8), 0) << name;
  }
  EXPECT_EQ(zip_close(z), 0);
  return read_text(where);
}

const char* kHeader = "language\tgold_label\tsentence1\tsentence2\tpairID\n";

struct DatasetFixture : ::testing::Test {
  test::FakeHub hub;
  TempDir tmp;
  std::string zip;
  DatasetDownloadOptions opts;

  void SetUp() override {
    zip = make_zip(tmp / "x.zip",
                   {{"XNLI-1.0/xnli.dev.tsv", std::string(kHeader) + "hi\tneutral\tए\tबी\t1\n"},
                    {"XNLI-1.0/xnli.test.tsv", std::string(kHeader) + "en\tentailment\ta\tb\t2\n"},
                    {"__MACOSX/XNLI-1.0/._xnli.dev.tsv", "junk"}});
    hub.add_raw("/XNLI/XNLI-1.0.zip", zip);
    ::setenv("XLT_XNLI_URL", (hub.url() + "/XNLI/XNLI-1.0.zip").c_str(), 1);
    ::setenv("XLT_XNLI_SHA256", sha256_hex(zip).c_str(), 1);
    opts.dir = tmp / "data";
    opts.progress = false;
  }
  void TearDown() override {
    ::unsetenv("XLT_XNLI_URL");
    ::unsetenv("XLT_XNLI_SHA256");
    ::unsetenv("XLT_MULTINLI_URL");
    ::unsetenv("XLT_MULTINLI_SHA256");
  }
  // Rewrites our manifest entry's `field` (after a first download).
  void set_manifest_field(const std::string& field, const nlohmann::json& value) {
    auto m = nlohmann::json::parse(read_text(opts.dir / "manifest.json"));
    m["xnli"][field] = value;
    test::write_text(opts.dir / "manifest.json", m.dump(2));
  }
};

TEST_F(DatasetFixture, DownloadsVerifiesUnpacksAndRecords) {
  DatasetDownloadResult r = download_dataset("xnli", opts);
  EXPECT_FALSE(r.already_present);
  EXPECT_EQ(r.sha256, sha256_hex(zip));
  EXPECT_EQ(r.bytes, static_cast<int64_t>(zip.size()));
  EXPECT_EQ(r.checksum_source, "XLT_XNLI_SHA256");
  EXPECT_EQ(r.files, (std::vector<std::string>{"XNLI-1.0/xnli.dev.tsv", "XNLI-1.0/xnli.test.tsv"}));
  EXPECT_EQ(r.dataset_dir, opts.dir / "xnli");
  EXPECT_EQ(read_text(r.dataset_dir / "XNLI-1.0" / "xnli.test.tsv"),
            std::string(kHeader) + "en\tentailment\ta\tb\t2\n");
  EXPECT_FALSE(fs::exists(r.dataset_dir / "__MACOSX"));
  EXPECT_FALSE(fs::exists(opts.dir / ".downloads" / "XNLI-1.0.zip"));  // not kept by default
  auto manifest = nlohmann::json::parse(read_text(opts.dir / "manifest.json"));
  EXPECT_EQ(manifest["xnli"]["sha256"], sha256_hex(zip));
  EXPECT_EQ(manifest["xnli"]["url"], hub.url() + "/XNLI/XNLI-1.0.zip");

  hub.clear_log();
  DatasetDownloadResult again = download_dataset("xnli", opts);
  EXPECT_TRUE(again.already_present);
  EXPECT_EQ(hub.count(""), 0);

  DatasetFiles f = resolve_dataset_spec("xnli:lang=hi:split=dev", opts.dir);
  EXPECT_EQ(f.files, (std::vector<fs::path>{opts.dir / "xnli" / "XNLI-1.0" / "xnli.dev.tsv"}));
  EXPECT_EQ(f.language(), "hi");
  EXPECT_EQ(f.split, "dev");
  EXPECT_EQ(f.format, "xnli-tsv");
}

TEST_F(DatasetFixture, DamagedManifestIsReportedNotReplaced) {
  // Replacing a damaged record with a fresh one would forget the other datasets' entries.
  fs::create_directories(opts.dir);
  test::write_text(opts.dir / "manifest.json", R"({"multinli": {"bytes": 1}, "multinli": {}})");
  try {
    download_dataset("xnli", opts);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("manifest.json: duplicate key 'multinli'"),
              std::string::npos)
        << e.what();
  }
  test::write_text(opts.dir / "manifest.json", "{\"multinli\": ");
  EXPECT_THROW(download_dataset("xnli", opts), DataError);
  EXPECT_EQ(read_text(opts.dir / "manifest.json"), "{\"multinli\": ");
}

TEST_F(DatasetFixture, ChecksumMismatchUnpacksNothing) {
  ::setenv("XLT_XNLI_SHA256", std::string(64, 'a').c_str(), 1);
  try {
    download_dataset("xnli", opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(opts.dir / "xnli"));
  EXPECT_FALSE(fs::exists(opts.dir / "manifest.json"));
  EXPECT_FALSE(fs::exists(opts.dir / ".downloads" / "XNLI-1.0.zip"));
  EXPECT_FALSE(fs::exists(opts.dir / ".downloads" / "XNLI-1.0.zip.incomplete"));
}

TEST_F(DatasetFixture, PinnedChecksumAppliesToAMirrorUrl) {
  ::unsetenv("XLT_XNLI_SHA256");  // the test zip is not the real XNLI archive
  try {
    download_dataset("xnli", opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_NE(std::string(e.what()).find("expected 17865352 bytes"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(opts.dir / "xnli"));
}

TEST_F(DatasetFixture, ResumesAfterADroppedConnection) {
  hub.drop_connection("/XNLI/", 100);
  DatasetDownloadResult r = download_dataset("xnli", opts);
  EXPECT_EQ(r.sha256, sha256_hex(zip));
  auto reqs = hub.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].range, "bytes=100-");
}

// --force must not resume a partial archive of an earlier run: here 100 bytes that are no
// prefix of the archive, which resuming turned into a checksum mismatch.
TEST_F(DatasetFixture, ForceDiscardsALeftoverPartialDownload) {
  fs::create_directories(opts.dir / ".downloads");
  test::write_text(opts.dir / ".downloads" / "XNLI-1.0.zip.incomplete", std::string(100, 'x'));
  opts.force = true;
  DatasetDownloadResult r = download_dataset("xnli", opts);
  EXPECT_EQ(r.sha256, sha256_hex(zip));
  auto reqs = hub.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].range, "");
  EXPECT_FALSE(fs::exists(opts.dir / ".downloads" / "XNLI-1.0.zip.incomplete"));
}

// The override was compared as given with the lower-case sum of a kept archive, so an
// upper-case one deleted a valid archive as a "checksum mismatch".
TEST_F(DatasetFixture, ChecksumOverrideIsCaseInsensitiveAndValidated) {
  std::string upper = sha256_hex(zip);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ::setenv("XLT_XNLI_SHA256", upper.c_str(), 1);
  opts.keep_archive = true;
  download_dataset("xnli", opts);
  fs::remove_all(opts.dir / "xnli");  // unpack again from the kept archive
  hub.clear_log();
  DatasetDownloadResult r = download_dataset("xnli", opts);
  EXPECT_FALSE(r.already_present);
  EXPECT_EQ(r.sha256, sha256_hex(zip));
  EXPECT_EQ(hub.count(""), 0);
  EXPECT_TRUE(fs::exists(opts.dir / ".downloads" / "XNLI-1.0.zip"));
  EXPECT_TRUE(fs::exists(opts.dir / "xnli" / "XNLI-1.0" / "xnli.test.tsv"));

  for (const std::string& bad :
       std::vector<std::string>{"abc", std::string(63, 'a') + "g", std::string(65, 'a')}) {
    ::setenv("XLT_XNLI_SHA256", bad.c_str(), 1);
    EXPECT_TRUE(test::throws_with<ConfigError>(
        [&] { download_dataset("xnli", opts); },
        {"XLT_XNLI_SHA256", "64 hexadecimal digits", "'" + bad + "'"}, 2));
  }
}

// A hand-edited entry of the wrong type was a raw json type_error (exit 3).
TEST_F(DatasetFixture, MalformedManifestEntryNamesTheFileAndField) {
  download_dataset("xnli", opts);
  const std::string manifest = (opts.dir / "manifest.json").string();
  set_manifest_field("files", {1, 2});
  EXPECT_TRUE(test::throws_with<DataError>(
      [&] { download_dataset("xnli", opts); },
      {manifest + ": entry 'xnli', field 'files': expected a list of file names",
       "found an integer"},
      2));
  set_manifest_field("files", {"XNLI-1.0/xnli.dev.tsv"});
  set_manifest_field("bytes", "370");
  EXPECT_TRUE(test::throws_with<DataError>(
      [&] { download_dataset("xnli", opts); },
      {manifest + ": entry 'xnli', field 'bytes': expected an integer", "found a string"}, 2));
  set_manifest_field("bytes", 370);
  set_manifest_field("sha256", nullptr);
  EXPECT_TRUE(test::throws_with<DataError>([&] { download_dataset("xnli", opts); },
                                           {"field 'sha256': expected a string"}, 2));
  // --force replaces the entry.
  opts.force = true;
  download_dataset("xnli", opts);
  auto m = nlohmann::json::parse(read_text(opts.dir / "manifest.json"));
  EXPECT_EQ(m["xnli"]["sha256"], sha256_hex(zip));
  EXPECT_EQ(m["xnli"]["bytes"], zip.size());
}

// A --dir that is a file ended in std::filesystem's "Not a directory" (exit 3).
TEST_F(DatasetFixture, DirThatIsAFileIsAUsageError) {
  test::write_text(tmp / "afile", "x");
  opts.dir = tmp / "afile";
  EXPECT_TRUE(test::throws_with<UsageError>(
      [&] { download_dataset("xnli", opts); },
      {"--dir " + (tmp / "afile").string() + " exists and is not a folder"}, 1));
  EXPECT_EQ(read_text(tmp / "afile"), "x");
  EXPECT_EQ(hub.count(""), 0);
  // A first download that fails leaves no empty data home behind.
  opts.dir = tmp / "new" / "data";
  ::setenv("XLT_XNLI_SHA256", "abc", 1);
  EXPECT_THROW(download_dataset("xnli", opts), ConfigError);
  EXPECT_FALSE(fs::exists(tmp / "new"));
}

// Two datasets into one folder at once: each held its own dataset lock and wrote back the
// manifest it had read at its start, so the one finishing last dropped the other's entry.
TEST_F(DatasetFixture, ConcurrentDatasetsKeepBothManifestEntries) {
  std::string mnli =
      make_zip(tmp / "m.zip", {{"multinli_1.0/multinli_1.0_train.jsonl", "{}\n"},
                               {"multinli_1.0/multinli_1.0_dev_matched.jsonl", "{}\n"},
                               {"multinli_1.0/multinli_1.0_dev_mismatched.jsonl", "{}\n"}});
  hub.add_raw("/MNLI/multinli_1.0.zip", mnli);
  ::setenv("XLT_MULTINLI_URL", (hub.url() + "/MNLI/multinli_1.0.zip").c_str(), 1);
  ::setenv("XLT_MULTINLI_SHA256", sha256_hex(mnli).c_str(), 1);
  hub.hold("/XNLI/");  // xnli has read the manifest and waits for its archive
  std::exception_ptr failed;
  std::thread xnli([&] {
    try {
      download_dataset("xnli", opts);
    } catch (...) {
      failed = std::current_exception();
    }
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (hub.count("GET", "/XNLI/") == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(hub.count("GET", "/XNLI/"), 1);
  download_dataset("multinli", opts);  // finishes first
  hub.release();
  xnli.join();
  if (failed) std::rethrow_exception(failed);
  auto m = nlohmann::json::parse(read_text(opts.dir / "manifest.json"));
  EXPECT_EQ(m["xnli"]["sha256"], sha256_hex(zip));
  EXPECT_EQ(m["multinli"]["sha256"], sha256_hex(mnli));
}

TEST_F(DatasetFixture, ArchiveWithoutTheExpectedFilesOrWithEscapingPathsIsRefused) {
  std::string wrong = make_zip(tmp / "w.zip", {{"XNLI-1.0/xnli.dev.tsv", kHeader}});
  hub.add_raw("/wrong.zip", wrong);
  ::setenv("XLT_XNLI_URL", (hub.url() + "/wrong.zip").c_str(), 1);
  ::setenv("XLT_XNLI_SHA256", sha256_hex(wrong).c_str(), 1);
  try {
    download_dataset("xnli", opts);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("has no XNLI-1.0/xnli.test.tsv"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(opts.dir / "xnli"));

  make_zip(tmp / "slip.zip", {{"../escaped.txt", "x"}});
  try {
    unzip_archive(tmp / "slip.zip", tmp / "out");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("refusing entry '../escaped.txt'"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp / "escaped.txt"));
}

TEST(DatasetSpec, ParsesAndValidates) {
  TempDir tmp;
  fs::create_directories(tmp / "xnli" / "XNLI-1.0");
  test::write_text(tmp / "xnli" / "XNLI-1.0" / "xnli.test.tsv", kHeader);
  DatasetFiles f = resolve_dataset_spec("xnli:lang=en,hi", tmp.path());
  EXPECT_EQ(f.split, "test");  // the default
  EXPECT_EQ(f.languages, (std::vector<std::string>{"en", "hi"}));
  f = resolve_dataset_spec("xnli:split=test:limit=10", tmp.path());
  EXPECT_TRUE(f.languages.empty());
  EXPECT_EQ(f.options.at("limit"), "10");

  EXPECT_TRUE(is_dataset_spec("xnli:lang=hi"));
  EXPECT_TRUE(is_dataset_spec("mnli:split=train"));
  EXPECT_FALSE(is_dataset_spec("xnli.test.tsv"));
  EXPECT_FALSE(is_dataset_spec("en=dev-en.tsv"));

  EXPECT_THROW(resolve_dataset_spec("xnli:lang=xx", tmp.path()), UsageError);
  EXPECT_THROW(resolve_dataset_spec("xnli:split=train", tmp.path()), UsageError);
  EXPECT_THROW(resolve_dataset_spec("xnli:lang", tmp.path()), UsageError);
  EXPECT_THROW(resolve_dataset_spec("multinli:lang=de", tmp.path()), UsageError);
  EXPECT_THROW(resolve_dataset_spec("squad:split=dev", tmp.path()), UsageError);
  try {
    resolve_dataset_spec("multinli:split=validation_matched", tmp.path());
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("multinli_1.0_dev_matched.jsonl"), std::string::npos) << msg;
    EXPECT_NE(msg.find("xlt download-data multinli"), std::string::npos) << msg;
  }
}

TEST(DatasetSpec, DataHomeFromEnvironment) {
  ::setenv("XLT_DATA_HOME", "/somewhere/data", 1);
  EXPECT_EQ(default_data_home(), fs::path("/somewhere/data"));
  ::unsetenv("XLT_DATA_HOME");
  ::setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(default_data_home(), fs::path("/xdg/xlt/data"));
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(default_data_home(), fs::path("/home/u/.cache/xlt/data"));
}

}  // namespace
}  // namespace xlt::io
