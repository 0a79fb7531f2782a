// File helpers shared by every module: whole-file reads with clear errors, and atomic writes
// (temp file in the same folder + fsync + rename) so a crash or a full disk never leaves a
// half-written file under its final name.
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace xlt {

// Reads a whole file. Throws IoError naming the path when it cannot be opened or read.
std::string read_file(const std::filesystem::path& path);

// Writes `content` to `path` atomically. Throws IoError (naming the path and the OS reason).
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Streams into a temp file beside `path`, then renames it into place on commit(). If the writer
// is destroyed without commit() (an exception unwound past it), the temp file is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ostream& stream();
  const std::filesystem::path& temp_path() const { return temp_; }
  // Flushes, fsyncs and renames. Throws IoError on any failure (e.g. disk full).
  void commit();

 private:
  struct Impl;
  std::filesystem::path path_;
  std::filesystem::path temp_;
  Impl* impl_;
  bool committed_ = false;
};

// A unique temp path next to `path` (same file system, so rename is atomic).
std::filesystem::path temp_path_for(const std::filesystem::path& path);

// Whether `name` (a file name, no folder) is one temp_path_for makes.
bool is_temp_name(const std::string& name);

// Removes what writes killed before their rename left directly in `dir` (temp files and temp
// folders, by is_temp_name). Only for a folder this process holds the lock of: another writer's
// temp files look the same. Errors are ignored (a leftover that stays is harmless).
void remove_temp_files(const std::filesystem::path& dir);

// fsync a file or folder by path; errors are reported as IoError.
void fsync_path(const std::filesystem::path& path);

// Makes sure `dir` can receive outputs before any work starts: creates it (and its parents) and
// writes and removes a probe file. UsageError when `dir` exists and is not a folder; IoError
// "FLAG DIR: cannot create folder: ..." / "FLAG DIR is not writable: ..." otherwise. Returns the
// folders it created, innermost first (empty when `dir` existed).
std::vector<std::filesystem::path> prepare_output_folder(const std::filesystem::path& dir,
                                                         std::string_view flag = "--out");

// Holds the folders prepare_output_folder created; when its scope is left by an exception it
// removes those still empty, so a command that fails after preparing --out leaves no empty folder
// behind (one that existed before, or holds anything, stays).
class CreatedFolders {
 public:
  explicit CreatedFolders(std::vector<std::filesystem::path> created);
  ~CreatedFolders();
  CreatedFolders(const CreatedFolders&) = delete;
  CreatedFolders& operator=(const CreatedFolders&) = delete;

 private:
  std::vector<std::filesystem::path> created_;
  int exceptions_;  // std::uncaught_exceptions() at construction
};

}  // namespace xlt
