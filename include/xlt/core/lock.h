// Exclusive, advisory locks between processes (flock). FolderLock: on an output folder
// (flock on DIR/<name>), so that two runs never write the same folder; it refuses at once.
// FileLock: on a lock file next to something being produced (a download), waiting its turn. The
// lock file records who holds it (pid, host, start time) for the refusal message; the flock itself
// is what excludes, so a crashed run never leaves a stale lock (the kernel drops it with the
// process).
//
// Usage:
//   xlt::FolderLock lock(out_dir, ".xlt-finetune.lock", "fine-tuning run");  // IoError if held
//   xlt::FileLock lock(blob_path + ".lock", "downloading model.safetensors");  // waits if held
#pragma once

#include <filesystem>
#include <string>

namespace xlt {

class FolderLock {
 public:
  // Creates DIR/NAME if needed and takes the lock without waiting. Throws IoError
  // "DIR is in use by another xlt WHAT (pid P on HOST, started T); lock file DIR/NAME" when
  // another process holds it, IoError when the file cannot be created.
  FolderLock(const std::filesystem::path& dir, const std::string& name, const std::string& what);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// Waits for an exclusive flock on PATH (created if needed, its folder must exist). When it has to
// wait and `what` is not empty, prints "xlt: waiting for another process WHAT (lock PATH)" to
// stderr once. With remove_on_release the file is unlinked on release and an acquirer that
// finds it replaced retries, so a lock is never held on a stale inode; without, the file stays
// (what Python's filelock expects of a shared lock path). Throws IoError when PATH cannot be
// created.
class FileLock {
 public:
  FileLock(std::filesystem::path path, const std::string& what, bool remove_on_release = true);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool remove_ = true;
};

}  // namespace xlt
