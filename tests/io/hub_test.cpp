// Hub downloads against a fake hub on 127.0.0.1 (tests/io/fake_hub.h), serving the tiny fixture
// checkpoints: cache layout as huggingface_hub writes it, resume after a dropped connection,
// checksum rejection, offline mode, request counts, and the 401/404/no-network messages.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include "common/test_env.h"
#include "io/fake_hub.h"
#include "io/hub_http.h"
#include "xlt/io/hub.h"
#include "xlt/io/safetensors.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;
using test::FakeHub;
using test::read_text;
using test::TempDir;

const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
const char* kRepo = "xlt-test/bert-tiny";

struct HubFixture : ::testing::Test {
  FakeHub hub;
  TempDir tmp;
  HubOptions opts;
  std::string weights, config;

  void SetUp() override {
    fs::path dir = test::fixtures_dir() / "bert_tiny";
    XLT_REQUIRE_PATH(dir / "model.safetensors");
    weights = read_text(dir / "model.safetensors");
    config = read_text(dir / "config.json");
    hub.add_repo(kRepo, kCommit,
                 {{"config.json", config},
                  {"model.safetensors", weights},
                  {"pytorch_model.bin", "not wanted when safetensors exist"},
                  {"vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n"},
                  {"tokenizer_config.json", R"({"do_lower_case": false})"},
                  {"README.md", "# tiny"},
                  {"onnx/model.onnx", "onnx bytes"},
                  {"flax_model.msgpack", "flax bytes"}},
                 {"main", "v1.0"});
    opts.endpoint = hub.url();
    opts.cache_dir = tmp / "hub";
    opts.progress = false;
    opts.timeout_seconds = 5;
    opts.max_retries = 3;
  }
  fs::path repo_dir() const { return repo_cache_path(opts.cache_dir, kRepo); }
};

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST_F(HubFixture, DownloadsDefaultFilesInHuggingFaceLayout) {
  SnapshotDownload d = download_model(kRepo, "main", {}, opts);
  EXPECT_EQ(d.commit, kCommit);
  EXPECT_EQ(d.snapshot_dir, repo_dir() / "snapshots" / kCommit);
  EXPECT_EQ(sorted(d.files), (std::vector<std::string>{"config.json", "model.safetensors",
                                                       "tokenizer_config.json", "vocab.txt"}));
  EXPECT_EQ(d.files_downloaded, 4);
  EXPECT_EQ(read_text(repo_dir() / "refs" / "main"), kCommit);  // no newline, as huggingface_hub

  // LFS file: blob named by its sha256, pointer is a relative symlink into blobs/.
  std::string sha = sha256_hex(weights);
  fs::path pointer = d.snapshot_dir / "model.safetensors";
  ASSERT_TRUE(fs::is_symlink(pointer));
  EXPECT_EQ(fs::read_symlink(pointer).string(), "../../blobs/" + sha);
  EXPECT_EQ(read_text(repo_dir() / "blobs" / sha), weights);
  // Small file: blob named by the (unquoted, weak prefix stripped) git etag.
  EXPECT_EQ(fs::read_symlink(d.snapshot_dir / "config.json").string(),
            "../../blobs/" + FakeHub::git_etag(config));
  EXPECT_EQ(read_text(d.snapshot_dir / "config.json"), config);
  // Nothing temporary left behind; the checkpoint opens through the symlink.
  for (const auto& e : fs::directory_iterator(repo_dir() / "blobs")) {
    EXPECT_EQ(e.path().extension(), "") << e.path();
  }
  auto st = SafetensorsFile::open(pointer);
  EXPECT_FALSE(st->names().empty());
  EXPECT_EQ(d.bytes_downloaded,
            static_cast<int64_t>(weights.size() + config.size() +
                                 read_text(d.snapshot_dir / "vocab.txt").size() +
                                 read_text(d.snapshot_dir / "tokenizer_config.json").size()));
  // The CDN request carried no token header (there was none), the hub saw HEADs then GETs.
  EXPECT_EQ(hub.count("HEAD", "/resolve/" + std::string(kCommit) + "/"), 4);
  EXPECT_EQ(hub.count("GET", "/cdn/" + sha), 1);
}

TEST_F(HubFixture, SecondDownloadIsOneListingRequest) {
  download_model(kRepo, "main", {}, opts);
  hub.clear_log();
  SnapshotDownload again = download_model(kRepo, "main", {}, opts);
  EXPECT_EQ(again.files_downloaded, 0);
  EXPECT_EQ(again.bytes_downloaded, 0);
  ASSERT_EQ(hub.count(""), 1);
  EXPECT_EQ(hub.count("GET", "/api/models/" + std::string(kRepo) + "/revision/main"), 1);
  // A tag resolving to the same commit reuses the snapshot and records its ref.
  download_model(kRepo, "v1.0", {}, opts);
  EXPECT_EQ(read_text(repo_dir() / "refs" / "v1.0"), kCommit);
  EXPECT_EQ(hub.count("HEAD"), 0);
}

// --force: a damaged cached blob (here truncated) is fetched again and the snapshot reads whole.
TEST_F(HubFixture, ForceDownloadReplacesADamagedBlob) {
  download_model(kRepo, "main", {}, opts);
  const fs::path blob = repo_dir() / "blobs" / sha256_hex(weights);
  fs::resize_file(blob, 100);
  hub.clear_log();
  EXPECT_EQ(download_model(kRepo, "main", {}, opts).files_downloaded, 0);  // not noticed
  opts.force_download = true;
  SnapshotDownload d = download_model(kRepo, "main", {}, opts);
  EXPECT_EQ(d.files_downloaded, 4);
  EXPECT_EQ(read_text(blob), weights);
  EXPECT_EQ(read_text(d.snapshot_dir / "config.json"), config);
  EXPECT_EQ(hub.count("GET", "/cdn/" + sha256_hex(weights)), 1);
  opts.offline = true;
  EXPECT_THROW(download_model(kRepo, "main", {}, opts), UsageError);
}

TEST_F(HubFixture, IncludeGlobsOverrideTheSelection) {
  SnapshotDownload d = download_model(kRepo, "main", {"*.json", "onnx/*"}, opts);
  EXPECT_EQ(sorted(d.files),
            (std::vector<std::string>{"config.json", "onnx/model.onnx", "tokenizer_config.json"}));
  // One more ../ for a file in a folder.
  EXPECT_EQ(fs::read_symlink(d.snapshot_dir / "onnx" / "model.onnx").string(),
            "../../../blobs/" + FakeHub::git_etag("onnx bytes"));
  EXPECT_FALSE(fs::exists(d.snapshot_dir / "model.safetensors"));
  try {
    download_model(kRepo, "main", {"*.h5"}, opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_NE(std::string(e.what()).find("matches --include"), std::string::npos) << e.what();
  }
}

TEST_F(HubFixture, ResumesWithRangeAfterADroppedConnection) {
  std::string sha = sha256_hex(weights);
  hub.drop_connection("/cdn/" + sha, 100000);
  SnapshotDownload d = download_model(kRepo, "main", {"model.safetensors"}, opts);
  EXPECT_EQ(read_text(d.snapshot_dir / "model.safetensors"), weights);
  std::vector<std::string> ranges;
  for (const auto& r : hub.requests()) {
    if (r.method == "GET" && r.target == "/cdn/" + sha) ranges.push_back(r.range);
  }
  EXPECT_EQ(ranges, (std::vector<std::string>{"", "bytes=100000-"}));
  // Every byte crossed the wire once.
  EXPECT_EQ(d.bytes_downloaded, static_cast<int64_t>(weights.size()));
}

TEST_F(HubFixture, ResumesAnInterruptedDownloadOnTheNextRun) {
  std::string sha = sha256_hex(weights);
  opts.max_retries = 0;
  hub.drop_connection("/cdn/" + sha, 50000);
  try {
    download_model(kRepo, "main", {"model.safetensors"}, opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_NE(std::string(e.what()).find("resumes"), std::string::npos) << e.what();
  }
  fs::path partial = repo_dir() / "blobs" / (sha + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), 50000u);
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / sha));
  hub.clear_log();
  SnapshotDownload d = download_model(kRepo, "main", {"model.safetensors"}, opts);
  EXPECT_EQ(read_text(d.snapshot_dir / "model.safetensors"), weights);
  EXPECT_EQ(d.bytes_downloaded, static_cast<int64_t>(weights.size() - 50000));
  auto reqs = hub.requests();
  auto cdn = std::find_if(reqs.begin(), reqs.end(),
                          [](auto& r) { return r.target.rfind("/cdn/", 0) == 0; });
  ASSERT_NE(cdn, reqs.end());
  EXPECT_EQ(cdn->range, "bytes=50000-");
  EXPECT_FALSE(fs::exists(partial));
}

// huggingface_hub truncates and starts over when a resumed GET gets 200 instead of 206. With
// CURLOPT_RESUME_FROM libcurl stopped such an answer with CURLE_RANGE_ERROR instead, kept the
// partial file and said rerunning resumes: every rerun failed the same way.
TEST_F(HubFixture, RestartsFromByteZeroWhenTheServerIgnoresRange) {
  std::string sha = sha256_hex(weights);
  hub.ignore_range("/cdn/");
  opts.max_retries = 0;
  hub.drop_connection("/cdn/" + sha, 50000);
  EXPECT_THROW(download_model(kRepo, "main", {"model.safetensors"}, opts), HubError);
  fs::path partial = repo_dir() / "blobs" / (sha + ".incomplete");
  ASSERT_EQ(fs::file_size(partial), 50000u);

  // The next run asks for the rest, gets the whole file, and keeps only that.
  hub.clear_log();
  SnapshotDownload d = download_model(kRepo, "main", {"model.safetensors"}, opts);
  EXPECT_EQ(read_text(d.snapshot_dir / "model.safetensors"), weights);
  EXPECT_EQ(d.bytes_downloaded, static_cast<int64_t>(weights.size()));
  EXPECT_FALSE(fs::exists(partial));
  std::vector<std::string> ranges;
  for (const auto& r : hub.requests()) {
    if (r.method == "GET" && r.target == "/cdn/" + sha) ranges.push_back(r.range);
  }
  EXPECT_EQ(ranges, (std::vector<std::string>{"bytes=50000-"}));

  // Within one run: the retry after a dropped connection gets 200 and starts over too.
  fs::remove_all(opts.cache_dir);
  opts.max_retries = 3;
  hub.drop_connection("/cdn/" + sha, 100000);
  hub.clear_log();
  d = download_model(kRepo, "main", {"model.safetensors"}, opts);
  EXPECT_EQ(read_text(d.snapshot_dir / "model.safetensors"), weights);
  EXPECT_EQ(d.bytes_downloaded, static_cast<int64_t>(100000 + weights.size()));
  EXPECT_EQ(hub.count("GET", "/cdn/" + sha), 2);
}

TEST_F(HubFixture, ChecksumMismatchLeavesNothingUnderTheFinalName) {
  std::string sha = sha256_hex(weights);
  hub.corrupt("/cdn/");
  try {
    download_model(kRepo, "main", {}, opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("checksum mismatch"), std::string::npos) << msg;
    EXPECT_NE(msg.find(sha), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / sha));
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / (sha + ".incomplete")));
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots" / kCommit / "model.safetensors"));
  EXPECT_FALSE(fs::is_symlink(repo_dir() / "snapshots" / kCommit / "model.safetensors"));
}

TEST_F(HubFixture, WrongSizeIsRejectedAndTooLargeIsDiskFull) {
  hub.lie_about_size("model.safetensors", static_cast<int64_t>(weights.size()) + 1);
  try {
    download_model(kRepo, "main", {"model.safetensors"}, opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_NE(std::string(e.what()).find("size mismatch"), std::string::npos) << e.what();
  }
  hub.lie_about_size("model.safetensors", int64_t{1} << 60);  // an exabyte: no disk has it
  try {
    download_model(kRepo, "main", {"model.safetensors"}, opts);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("disk full"), std::string::npos) << e.what();
  }
}

TEST_F(HubFixture, OfflineModeMakesNoRequest) {
  opts.offline = true;
  try {
    download_model(kRepo, "main", {}, opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_NE(std::string(e.what()).find("HF_HUB_OFFLINE"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_or_download(kRepo, opts), HubError);
  EXPECT_EQ(hub.count(""), 0);

  opts.offline = false;
  download_model(kRepo, "main", {}, opts);
  hub.clear_log();
  opts.offline = true;
  SnapshotDownload d = download_model(kRepo, "main", {}, opts);
  EXPECT_EQ(d.commit, kCommit);
  ModelLocation loc = resolve_or_download(kRepo, opts);
  EXPECT_EQ(loc.path, repo_dir() / "snapshots" / kCommit);
  EXPECT_EQ(loc.commit, kCommit);
  EXPECT_EQ(download_hub_file(kRepo, "config.json", "main", opts), loc.path / "config.json");
  EXPECT_EQ(hub.count(""), 0);
}

// Offline, --include matches the snapshot's file names, as huggingface_hub's offline
// snapshot_download(allow_patterns=...) does; fs::relative resolved the snapshot symlinks and
// every name became ../../blobs/<etag>, so no pattern ever matched.
TEST_F(HubFixture, OfflineIncludeMatchesRepositoryFileNames) {
  download_model(kRepo, "main", {"*.json", "*.safetensors", "vocab.txt", "onnx/*"}, opts);
  hub.clear_log();
  opts.offline = true;
  EXPECT_EQ(download_model(kRepo, "main", {"*.safetensors"}, opts).files,
            (std::vector<std::string>{"model.safetensors"}));
  EXPECT_EQ(download_model(kRepo, "main", {"onnx/*", "config.json"}, opts).files,
            (std::vector<std::string>{"config.json", "onnx/model.onnx"}));
  EXPECT_EQ(download_model(kRepo, "main", {}, opts).files,
            (std::vector<std::string>{"config.json", "model.safetensors", "onnx/model.onnx",
                                      "tokenizer_config.json", "vocab.txt"}));
  EXPECT_THROW(download_model(kRepo, "main", {"*.h5"}, opts), HubError);
  EXPECT_EQ(hub.count(""), 0);
}

// `xlt convert org/name`: the pickle weights are fetched, not the model.safetensors the default
// selection prefers (which convert would then refuse to convert, after a possibly huge download).
TEST_F(HubFixture, IncludeSelectsThePickleWeightsForConvert) {
  const ModelLocation loc = resolve_or_download(kRepo, opts, {"config.json", "pytorch_model.bin"});
  EXPECT_EQ(loc.path, repo_dir() / "snapshots" / kCommit);
  EXPECT_EQ(read_text(loc.path / "pytorch_model.bin"), "not wanted when safetensors exist");
  EXPECT_FALSE(fs::exists(loc.path / "model.safetensors"));
  EXPECT_EQ(hub.count("GET", "/cdn/" + sha256_hex(weights)), 0);
}

// A cache path through a file ended in std::filesystem's "Not a directory" (exit 3).
TEST_F(HubFixture, CacheDirThatIsAFileIsAUsageError) {
  test::write_text(tmp / "afile", "not a folder");
  for (const fs::path& cache : {tmp / "afile", tmp / "afile" / "sub"}) {
    opts.cache_dir = cache;
    EXPECT_TRUE(test::throws_with<UsageError>(
        [&] { download_model(kRepo, "main", {}, opts); },
        {"hub cache folder " + cache.string(),
         (tmp / "afile").string() + " exists and is not a folder", "--cache-dir"},
        1));
    EXPECT_TRUE(test::throws_with<UsageError>(
        [&] { download_hub_file(kRepo, "config.json", "main", opts); }, {"is not a folder"}, 1));
    EXPECT_TRUE(test::throws_with<UsageError>([&] { resolve_or_download(kRepo, opts); },
                                              {"is not a folder"}, 1));
  }
  EXPECT_EQ(read_text(tmp / "afile"), "not a folder");
  EXPECT_EQ(hub.count(""), 0);
}

TEST_F(HubFixture, ResolveOrDownloadFetchesOnceThenUsesTheCache) {
  // Local folders are used as they are.
  EXPECT_EQ(resolve_or_download(tmp.path().string(), opts).path, tmp.path());
  ModelLocation first = resolve_or_download(std::string(kRepo) + "@v1.0", opts);
  EXPECT_TRUE(first.from_hub_cache);
  EXPECT_EQ(first.revision, "v1.0");
  EXPECT_TRUE(snapshot_has_model(first.path));
  hub.clear_log();
  ModelLocation again = resolve_or_download(std::string(kRepo) + "@v1.0", opts);
  EXPECT_EQ(again.path, first.path);
  EXPECT_EQ(hub.count(""), 0);
}

TEST_F(HubFixture, TokenIsSentToTheHubButNotToTheCdn) {
  hub.require_token(kRepo, "hf_secret");
  try {
    download_model(kRepo, "main", {}, opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_EQ(e.http_status(), 401);
    EXPECT_NE(std::string(e.what()).find("HF_TOKEN"), std::string::npos) << e.what();
    EXPECT_EQ(exit_code_for(e), 2);
  }
  opts.token = "hf_secret";
  download_model(kRepo, "main", {}, opts);
  for (const auto& r : hub.requests()) {
    if (r.target.rfind("/cdn/", 0) == 0) {
      EXPECT_EQ(r.authorization, "") << r.target;
    } else if (r.method == "HEAD" || r.target.rfind("/api/", 0) == 0) {
      if (r.authorization.empty()) continue;  // the first, refused attempt
      EXPECT_EQ(r.authorization, "Bearer hf_secret") << r.target;
    }
  }
  EXPECT_GT(hub.count("GET", "/cdn/"), 0);
}

TEST_F(HubFixture, RenamedRepositoryIsFollowedWithTheToken) {
  hub.rename_repo("xlt-test/old-name", kRepo);
  hub.require_token(kRepo, "hf_secret");
  opts.token = "hf_secret";
  SnapshotDownload d = download_model("xlt-test/old-name", "main", {}, opts);
  EXPECT_EQ(d.snapshot_dir,
            repo_cache_path(opts.cache_dir, "xlt-test/old-name") / "snapshots" / kCommit);
  EXPECT_EQ(read_text(d.snapshot_dir / "config.json"), config);
  // Both the redirected HEAD and the follow-up kept the token (same host).
  EXPECT_GT(hub.count("HEAD", "/" + std::string(kRepo) + "/resolve/"), 0);
  for (const auto& r : hub.requests()) {
    if (r.target.rfind("/cdn/", 0) != 0) {
      EXPECT_EQ(r.authorization, "Bearer hf_secret") << r.target;
    }
  }
}

TEST_F(HubFixture, NotFoundNamesTheRepositoryAndRevision) {
  try {
    download_model("xlt-test/no-such-model", "main", {}, opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_EQ(e.http_status(), 404);
    std::string msg = e.what();
    EXPECT_NE(msg.find("xlt-test/no-such-model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'main'"), std::string::npos) << msg;
  }
  try {
    download_model(kRepo, "no-such-branch", {}, opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_NE(std::string(e.what()).find("revision 'no-such-branch' not found"), std::string::npos)
        << e.what();
  }
  try {
    download_hub_file(kRepo, "missing.json", "main", opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    EXPECT_NE(std::string(e.what()).find("file 'missing.json' not found"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(download_model("../etc", "main", {}, opts), UsageError);
}

TEST_F(HubFixture, NoNetworkSuggestsOfflineMode) {
  // A port that nothing listens on: bind, read the port, close.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  opts.endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  try {
    download_model(kRepo, "main", {}, opts);
    FAIL() << "expected HubError";
  } catch (const HubError& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.http_status(), 0);
    EXPECT_NE(msg.find("cannot reach 127.0.0.1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("HF_HUB_OFFLINE=1"), std::string::npos) << msg;
  }
}

TEST_F(HubFixture, ShardedCheckpointFetchesEveryShard) {
  std::string index =
      R"({"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors",
          "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}})";
  hub.add_repo("xlt-test/sharded", kCommit,
               {{"config.json", config},
                {"model.safetensors.index.json", index},
                {"model-00001-of-00002.safetensors", "shard one"},
                {"model-00002-of-00002.safetensors", "shard two"},
                {"model-00003-of-00003.safetensors", "stale shard of another layout"}});
  SnapshotDownload d = download_model("xlt-test/sharded", "main", {}, opts);
  EXPECT_EQ(sorted(d.files),
            (std::vector<std::string>{"config.json", "model-00001-of-00002.safetensors",
                                      "model-00002-of-00002.safetensors",
                                      "model.safetensors.index.json"}));
  EXPECT_EQ(read_text(d.snapshot_dir / "model-00002-of-00002.safetensors"), "shard two");
  EXPECT_TRUE(snapshot_has_model(d.snapshot_dir));
  fs::remove(d.snapshot_dir / "model-00002-of-00002.safetensors");
  EXPECT_FALSE(snapshot_has_model(d.snapshot_dir));
}

TEST_F(HubFixture, ConcurrentDownloadsTransferEachBlobOnce) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      try {
        download_model(kRepo, "main", {}, opts);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(hub.count("GET", "/cdn/"), 1);
  EXPECT_EQ(read_text(repo_dir() / "snapshots" / kCommit / "model.safetensors"), weights);
}

// huggingface_hub takes <cache>/.locks/models--<org>--<name>/<etag>.lock around fetching a blob.
// A process holding that lock (here a forked child, as a Python download would) makes xlt wait
// for it instead of fetching the same blob into the same .incomplete file at the same time; the
// lock file stays for the next holder, as Python's filelock expects.
TEST_F(HubFixture, WaitsForHuggingFaceHubsLockOnTheBlob) {
  const fs::path lock =
      opts.cache_dir / ".locks" / repo_dir().filename() / (sha256_hex(weights) + ".lock");
  fs::create_directories(lock.parent_path());
  const fs::path ready = tmp / "holder-ready";
  const auto hold = std::chrono::milliseconds(1500);
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(1);
    const int r = ::open(ready.c_str(), O_WRONLY | O_CREAT, 0644);
    if (r >= 0) ::close(r);
    std::this_thread::sleep_for(hold);
    ::_exit(0);  // the kernel releases the flock
  }
  while (!fs::exists(ready)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto t0 = std::chrono::steady_clock::now();
  download_model(kRepo, "main", {}, opts);
  const auto waited = std::chrono::steady_clock::now() - t0;
  int status = 0;
  ASSERT_EQ(::waitpid(holder, &status, 0), holder);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // Half the hold: the test notices `ready` only at its next poll, and a busy machine may run it
  // later still; a download that did not wait at all takes a few ms.
  EXPECT_GE(waited, hold / 2);
  EXPECT_EQ(read_text(repo_dir() / "snapshots" / kCommit / "model.safetensors"), weights);
  EXPECT_TRUE(fs::exists(lock));
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / (sha256_hex(weights) + ".lock")));
}

TEST(HubFiles, DefaultSelectionPrefersSafetensorsAndSkipsFolders) {
  std::vector<std::string> all = {"README.md",
                                  "config.json",
                                  "pytorch_model.bin",
                                  "model.safetensors",
                                  "tf_model.h5",
                                  "sentencepiece.bpe.model",
                                  "special_tokens_map.json",
                                  "onnx/config.json",
                                  "tokenizer.json"};
  EXPECT_EQ(select_model_files(all),
            (std::vector<std::string>{"config.json", "model.safetensors", "sentencepiece.bpe.model",
                                      "special_tokens_map.json", "tokenizer.json"}));
  EXPECT_EQ(select_model_files({"config.json", "pytorch_model.bin", "flax_model.msgpack"}),
            (std::vector<std::string>{"config.json", "pytorch_model.bin"}));
  EXPECT_EQ(select_model_files({"pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin",
                                "model.safetensors.index.json"}),
            (std::vector<std::string>{"model.safetensors.index.json"}));
  EXPECT_EQ(filter_files({"a.json", "b/c.json", "d.bin"}, {"*.json"}),
            (std::vector<std::string>{"a.json", "b/c.json"}));
}

TEST(HubOptionsEnv, ReadsHuggingFaceVariables) {
  TempDir tmp;
  ::setenv("HF_ENDPOINT", "http://mirror.example/", 1);
  ::setenv("HF_TOKEN", " hf_abc \n", 1);
  ::setenv("HF_HUB_OFFLINE", "yes", 1);
  ::setenv("HF_HUB_CACHE", (tmp / "c").c_str(), 1);
  HubOptions o = HubOptions::from_env();
  EXPECT_EQ(o.endpoint, "http://mirror.example");
  EXPECT_EQ(o.token, "hf_abc");
  EXPECT_TRUE(o.offline);
  EXPECT_EQ(o.cache_dir, tmp / "c");
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  ::unsetenv("HF_TOKEN");
  ::setenv("HF_TOKEN_PATH", (tmp / "token").c_str(), 1);
  test::write_text(tmp / "token", "hf_from_file\n");
  o = HubOptions::from_env();
  EXPECT_FALSE(o.offline);
  EXPECT_EQ(o.token, "hf_from_file");
  for (const char* v : {"HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN_PATH"})
    ::unsetenv(v);
}

// Loopback throughput of a full download (HEAD, GET, write, sha256, fsync, rename) against a
// plain in-memory GET of the same bytes measured in the same run.
TEST(HubThroughput, LoopbackDownloadRate) {
  std::string big(16u << 20, '\0');
  std::mt19937_64 rng(7);
  for (std::size_t i = 0; i + 8 <= big.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(&big[i], &v, 8);
  }
  FakeHub hub;
  hub.add_repo("xlt-test/big", kCommit, {{"config.json", "{}"}, {"model.safetensors", big}});
  TempDir tmp;
  HubOptions o;
  o.endpoint = hub.url();
  o.cache_dir = tmp / "hub";
  o.progress = false;
  auto t0 = std::chrono::steady_clock::now();
  detail::HttpClient client({10, ""});
  auto raw = client.get(hub.url() + "/cdn/" + sha256_hex(big), {});
  double base = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(raw.body.size(), big.size());
  SnapshotDownload d = download_model("xlt-test/big", "main", {}, o);
  double mbps = static_cast<double>(big.size()) / d.seconds / 1e6;
  double base_mbps = static_cast<double>(big.size()) / base / 1e6;
  std::cout << "[ throughput ] xlt download " << mbps << " MB/s, plain GET " << base_mbps
            << " MB/s, ratio " << mbps / base_mbps << " (16 MiB over loopback)\n";
  RecordProperty("download_MBps", std::to_string(mbps));
  EXPECT_EQ(sha256_file(d.snapshot_dir / "model.safetensors"), sha256_hex(big));
}

}  // namespace
}  // namespace xlt::io
