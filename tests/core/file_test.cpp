// Tests for atomic writes and error-to-exit-code mapping in xlt_core.
#include "xlt/core/file.h"

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "common/test_env.h"
#include "xlt/core/error.h"

namespace fs = std::filesystem;
using xlt::test::TempDir;

TEST(AtomicFile, WritesContentAndLeavesNoTempFiles) {
  TempDir dir;
  xlt::write_file_atomic(dir / "out.txt", "hello");
  EXPECT_EQ(xlt::read_file(dir / "out.txt"), "hello");
  int entries = 0;
  for (auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, UncommittedWriteKeepsPreviousContent) {
  TempDir dir;
  xlt::write_file_atomic(dir / "out.txt", "old");
  {
    xlt::AtomicFile f(dir / "out.txt");
    f.stream() << "new but abandoned";
  }
  EXPECT_EQ(xlt::read_file(dir / "out.txt"), "old");
  int entries = 0;
  for (auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, DiskFullIsAnIoErrorAndKeepsOldFile) {
  TempDir dir;
  xlt::write_file_atomic(dir / "out.txt", "old");
  // Simulate a full disk with RLIMIT_FSIZE; ignore SIGXFSZ so the write fails with EFBIG.
  struct rlimit old_limit;
  getrlimit(RLIMIT_FSIZE, &old_limit);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = {1024, old_limit.rlim_max};
  setrlimit(RLIMIT_FSIZE, &small);
  std::string big(1 << 20, 'x');
  EXPECT_THROW(xlt::write_file_atomic(dir / "out.txt", big), xlt::IoError);
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(xlt::read_file(dir / "out.txt"), "old");
  int entries = 0;
  for (auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, MissingFolderIsAnIoError) {
  TempDir dir;
  EXPECT_THROW(xlt::write_file_atomic(dir / "nope" / "out.txt", "x"), xlt::IoError);
}

TEST(ReadFile, MissingFileNamesThePath) {
  // FileNotFound (Python: FileNotFoundError) for a path that does not exist.
  EXPECT_TRUE(xlt::test::throws_with<xlt::FileNotFound>(
      [] { xlt::read_file("/nonexistent/xlt/file.json"); }, {"/nonexistent/xlt/file.json"}, 2));
}

// A folder opens as an ifstream and reads as ""; `xlt study FOLDER` then planned the default
// study as if an empty config had been given.
TEST(ReadFile, FolderIsAnErrorNotAnEmptyFile) {
  TempDir dir;
  EXPECT_TRUE(xlt::test::throws_with<xlt::IoError>([&] { xlt::read_file(dir.path()); },
                                                   {dir.path().string(), "is a folder"}, 2));
}

TEST(Error, ExitCodes) {
  EXPECT_EQ(xlt::exit_code_for(xlt::UsageError("u")), 1);
  EXPECT_EQ(xlt::exit_code_for(xlt::CheckpointError("c")), 2);
  EXPECT_EQ(xlt::exit_code_for(xlt::DataError("d")), 2);
  EXPECT_EQ(xlt::exit_code_for(std::runtime_error("x")), 3);
}

TEST(PrepareOutputFolder, CreatedFoldersGoAgainOnlyWhenEmptyAndOnlyOnFailure) {
  TempDir dir;
  const fs::path out = dir / "a" / "b" / "c";
  auto created = xlt::prepare_output_folder(out / "");
  ASSERT_EQ(created, (std::vector<fs::path>{out, dir / "a" / "b", dir / "a"}));
  EXPECT_TRUE(fs::is_directory(out));
  EXPECT_TRUE(fs::is_empty(out));  // the probe file is gone
  EXPECT_TRUE(xlt::prepare_output_folder(out).empty());
  { xlt::CreatedFolders kept(created); }  // left normally: kept
  EXPECT_TRUE(fs::is_directory(out));
  try {
    xlt::CreatedFolders undo(created);
    throw std::runtime_error("the command failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(fs::exists(dir / "a"));

  // A folder that received a file stays, and so do its parents.
  created = xlt::prepare_output_folder(out);
  try {
    xlt::CreatedFolders undo(created);
    xlt::write_file_atomic(out / "results.json", "{}");
    throw std::runtime_error("failed after writing");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(fs::exists(out / "results.json"));

  xlt::write_file_atomic(dir / "file", "x");
  EXPECT_THROW(xlt::prepare_output_folder(dir / "file"), xlt::UsageError);
}

// The sweeps of killed runs' leftovers (study folder, unit folders, fine-tuning --out) remove
// exactly what temp_path_for names: a user's hidden "*.tmp.*" file stays.
TEST(TempFiles, OnlyTempPathNamesAreSwept) {
  TempDir tmp;
  const fs::path made = xlt::temp_path_for(tmp / "results.json");
  EXPECT_TRUE(xlt::is_temp_name(made.filename().string())) << made;
  EXPECT_TRUE(xlt::is_temp_name(xlt::temp_path_for(made).filename().string()));
  for (const char* name :
       {".notes.tmp.txt", ".tmp.1.2.ab", "x.json.tmp.1.2.ab", ".x.tmp.1.2.", ".x.tmp.1.2.ab~",
        ".x.tmp.a.2.ab", ".x.tmp.1..ab", "results.json", ".x.tmp.12"}) {
    EXPECT_FALSE(xlt::is_temp_name(name)) << name;
  }
  xlt::test::write_text(made, "{");
  fs::create_directories(xlt::temp_path_for(tmp / "best") / "inner");
  xlt::test::write_text(tmp / ".notes.tmp.txt", "mine");
  xlt::test::write_text(tmp / "results.json", "{}");
  xlt::remove_temp_files(tmp.path());
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.path())) left.push_back(e.path().filename());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{".notes.tmp.txt", "results.json"}));
}
