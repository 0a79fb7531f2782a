// An exclusive, advisory lock on an output folder (flock on DIR/<name>), so that two runs never
// write the same folder. The lock file records who holds it (pid, host, start time) for the
// refusal message; the flock itself is what excludes, so a crashed run never leaves a stale lock
// (the kernel drops it with the process).
//
// Usage:
//   xlt::FolderLock lock(out_dir, ".xlt-finetune.lock", "fine-tuning run");  // IoError if held
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

}  // namespace xlt
