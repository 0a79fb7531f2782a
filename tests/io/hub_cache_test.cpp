// Model location resolution on a Hugging Face cache tree built here the way huggingface_hub lays
// it out (refs, snapshots of symlinks into blobs), and the cache-root environment precedence.
#include "xlt/io/hub_cache.h"

#include <cstdlib>
#include <cstring>
#include <optional>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/io/config.h"
#include "xlt/io/safetensors.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;
using test::TempDir;
using test::write_text;

const std::string kCommitA = "0123456789abcdef0123456789abcdef01234567";
const std::string kCommitB = "fedcba9876543210fedcba9876543210fedcba98";

// Sets (or unsets, for nullopt) environment variables and restores them on destruction.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, std::optional<std::string>>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
      if (value) {
        ::setenv(name, value->c_str(), 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// <cache>/models--org--tiny: main -> A (config + weights), v1 and refs/pr/1 -> B (config only).
void build_cache(const fs::path& cache) {
  fs::path repo = cache / "models--org--tiny";
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "refs" / "refs" / "pr");
  write_text(repo / "refs" / "main", kCommitA);  // huggingface_hub writes no newline
  write_text(repo / "refs" / "v1", kCommitB + "\n");
  write_text(repo / "refs" / "refs" / "pr" / "1", kCommitB);
  write_text(repo / "blobs" / "cfgA",
             R"({"model_type":"bert","hidden_size":8,"num_attention_heads":2})");
  write_text(repo / "blobs" / "cfgB", R"({"model_type":"xglm","d_model":16,"attention_heads":2})");
  float w[2] = {1.5f, -2.0f};
  write_safetensors(repo / "blobs" / "weightsA",
                    {{"w", DType::F32, {2}, reinterpret_cast<const std::byte*>(w), 8}});
  fs::create_directories(repo / "snapshots" / kCommitA);
  fs::create_directories(repo / "snapshots" / kCommitB);
  fs::create_symlink("../../blobs/cfgA", repo / "snapshots" / kCommitA / "config.json");
  fs::create_symlink("../../blobs/weightsA", repo / "snapshots" / kCommitA / "model.safetensors");
  fs::create_symlink("../../blobs/cfgB", repo / "snapshots" / kCommitB / "config.json");
}

TEST(HubCache, RepoIdsAndFolderNames) {
  EXPECT_TRUE(is_valid_repo_id("bert-base-multilingual-cased"));
  EXPECT_TRUE(is_valid_repo_id("facebook/xglm-564M"));
  EXPECT_TRUE(is_valid_repo_id("FacebookAI/xlm-roberta-base"));
  EXPECT_FALSE(is_valid_repo_id("a/b/c"));
  EXPECT_FALSE(is_valid_repo_id("org--x/name"));
  EXPECT_FALSE(is_valid_repo_id("org/../x"));
  EXPECT_FALSE(is_valid_repo_id("-org/x"));
  EXPECT_FALSE(is_valid_repo_id("org/x y"));
  EXPECT_FALSE(is_valid_repo_id(""));
  EXPECT_FALSE(is_valid_repo_id(std::string(97, 'a')));
  EXPECT_EQ(repo_folder_name("facebook/xglm-564M"), "models--facebook--xglm-564M");
  EXPECT_EQ(repo_folder_name("bert-base-multilingual-cased"),
            "models--bert-base-multilingual-cased");
  EXPECT_EQ(repo_folder_name("facebook/xnli", RepoType::kDataset), "datasets--facebook--xnli");
  EXPECT_TRUE(is_commit_hash(kCommitA));
  EXPECT_FALSE(is_commit_hash("main"));
  EXPECT_FALSE(is_commit_hash(kCommitA.substr(1)));

  RepoRef r = RepoRef::parse("org/tiny@v1");
  EXPECT_EQ(r.repo_id, "org/tiny");
  EXPECT_EQ(r.revision, "v1");
  EXPECT_EQ(RepoRef::parse("org/tiny").revision, "main");
  EXPECT_THROW(RepoRef::parse("org/tiny@../../etc"), UsageError);
  EXPECT_THROW(RepoRef::parse("a/b/c"), UsageError);
}

TEST(HubCache, ResolvesRefsCommitsAndSymlinkedBlobs) {
  TempDir tmp;
  build_cache(tmp / "hub");
  HubCacheDir cache{tmp / "hub", "HF_HUB_CACHE"};
  fs::path repo = tmp / "hub" / "models--org--tiny";

  ModelLocation main = resolve_model_location("org/tiny", cache);
  EXPECT_TRUE(main.from_hub_cache);
  EXPECT_EQ(main.path, repo / "snapshots" / kCommitA);
  EXPECT_EQ(main.commit, kCommitA);
  EXPECT_EQ(main.revision, "main");
  // Files are read through the snapshot's symlinks into blobs/.
  EXPECT_EQ(ModelConfig::load(main.path).hidden_size, 8);
  Checkpoint ck = Checkpoint::open(main.path);
  float w0;
  std::memcpy(&w0, ck.tensor("w").data, 4);
  EXPECT_EQ(w0, 1.5f);

  for (const std::string& spec :
       std::vector<std::string>{"org/tiny@v1", "org/tiny@refs/pr/1", "org/tiny@" + kCommitB}) {
    SCOPED_TRACE(spec);
    ModelLocation loc = resolve_model_location(spec, cache);
    EXPECT_EQ(loc.path, repo / "snapshots" / kCommitB);
    EXPECT_EQ(loc.commit, kCommitB);
    EXPECT_EQ(ModelConfig::load(loc.path).model_type, ModelType::kXglm);
  }
  EXPECT_EQ(cached_revisions(cache.path, "org/tiny"),
            (std::vector<std::string>{"refs/main", "refs/refs/pr/1", "refs/v1",
                                      "snapshots/" + kCommitA, "snapshots/" + kCommitB}));
}

TEST(HubCache, MissingModelSaysWhereItLooked) {
  TempDir tmp;
  build_cache(tmp / "hub");
  HubCacheDir cache{tmp / "hub", "HF_HOME"};
  try {
    resolve_model_location("org/absent", cache);
    FAIL();
  } catch (const IoError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("org/absent"), std::string::npos) << msg;
    EXPECT_NE(msg.find((tmp / "hub").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("$HF_HOME"), std::string::npos) << msg;
    EXPECT_NE(msg.find("models--org--absent"), std::string::npos) << msg;
  }
  try {
    resolve_model_location("org/tiny@v2", cache);
    FAIL();
  } catch (const IoError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("revision 'v2'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("refs/v1"), std::string::npos) << msg;  // lists what is there
    EXPECT_NE(msg.find("`xlt download org/tiny@v2`"), std::string::npos) << msg;  // the fix
  }
  // A ref pointing at a snapshot that is not there (interrupted download) is "not found".
  write_text(tmp / "hub" / "models--org--tiny" / "refs" / "broken", std::string(40, 'a'));
  EXPECT_THROW(resolve_model_location("org/tiny@broken", cache), IoError);
  // Paths that do not exist are reported as paths, not looked up in the cache.
  try {
    resolve_model_location((tmp / "no" / "such" / "dir").string(), cache);
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("no such file or folder"), std::string::npos);
  }
}

TEST(HubCache, LocalPathWinsOverCache) {
  TempDir tmp;
  build_cache(tmp / "hub");
  fs::create_directories(tmp / "org" / "tiny");
  ModelLocation loc = resolve_model_location((tmp / "org" / "tiny").string(),
                                             HubCacheDir{tmp / "hub", "HF_HUB_CACHE"});
  EXPECT_FALSE(loc.from_hub_cache);
  EXPECT_EQ(loc.path, tmp / "org" / "tiny");
}

TEST(HubCache, EnvironmentPrecedence) {
  using V = std::optional<std::string>;
  {
    ScopedEnv e({{"HF_HUB_CACHE", V("/a/hub")},
                 {"HUGGINGFACE_HUB_CACHE", V("/b")},
                 {"HF_HOME", V("/c")},
                 {"XDG_CACHE_HOME", V("/d")}});
    EXPECT_EQ(hub_cache_dir().path, "/a/hub");
    EXPECT_EQ(hub_cache_dir().decided_by, "HF_HUB_CACHE");
  }
  {
    ScopedEnv e(
        {{"HF_HUB_CACHE", std::nullopt}, {"HUGGINGFACE_HUB_CACHE", V("/b")}, {"HF_HOME", V("/c")}});
    EXPECT_EQ(hub_cache_dir().path, "/b");
  }
  {
    ScopedEnv e({{"HF_HUB_CACHE", std::nullopt},
                 {"HUGGINGFACE_HUB_CACHE", std::nullopt},
                 {"HF_HOME", V("/c")},
                 {"XDG_CACHE_HOME", V("/d")}});
    EXPECT_EQ(hub_cache_dir().path, fs::path("/c/hub"));
    EXPECT_EQ(hub_cache_dir().decided_by, "HF_HOME");
  }
  {
    ScopedEnv e({{"HF_HUB_CACHE", std::nullopt},
                 {"HUGGINGFACE_HUB_CACHE", std::nullopt},
                 {"HF_HOME", std::nullopt},
                 {"XDG_CACHE_HOME", V("/d")}});
    EXPECT_EQ(hub_cache_dir().path, fs::path("/d/huggingface/hub"));
  }
  {
    ScopedEnv e({{"HF_HUB_CACHE", std::nullopt},
                 {"HUGGINGFACE_HUB_CACHE", std::nullopt},
                 {"HF_HOME", std::nullopt},
                 {"XDG_CACHE_HOME", std::nullopt},
                 {"HOME", V("/home/u")}});
    EXPECT_EQ(hub_cache_dir().path, fs::path("/home/u/.cache/huggingface/hub"));
    EXPECT_EQ(hub_cache_dir().decided_by, "HOME");
  }
  {
    ScopedEnv e({{"HF_HUB_CACHE", V("~/hfc")}, {"HOME", V("/home/u")}});
    EXPECT_EQ(hub_cache_dir().path, fs::path("/home/u/hfc"));  // expanded like expanduser
  }

  // End to end: a model id resolved through $HF_HOME.
  TempDir tmp;
  build_cache(tmp / "home" / "hub");
  ScopedEnv e({{"HF_HUB_CACHE", std::nullopt},
               {"HUGGINGFACE_HUB_CACHE", std::nullopt},
               {"HF_HOME", V((tmp / "home").string())}});
  EXPECT_EQ(resolve_model_location("org/tiny").commit, kCommitA);
}

}  // namespace
}  // namespace xlt::io
