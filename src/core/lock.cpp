// FolderLock and FileLock (see lock.h): flock on a lock file; FolderLock also writes an
// informative "pid host start-time" line into it.
#include "xlt/core/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>

#include "xlt/core/error.h"

namespace xlt {

namespace {

std::string holder_line() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "unknown host");
  std::time_t now = std::time(nullptr);
  char when[32] = {0};
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return "pid " + std::to_string(::getpid()) + " on " + host + ", started " + when;
}

int open_lock_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw IoError(path.string() + ": cannot create the lock file: " + std::strerror(errno));
  }
  return fd;
}

}  // namespace

FolderLock::FolderLock(const std::filesystem::path& dir, const std::string& name,
                       const std::string& what)
    : path_(dir / name) {
  fd_ = open_lock_file(path_);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[512] = {0};
    std::string holder;
    ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    if (n > 0) holder = std::string(buf, static_cast<size_t>(n));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    throw IoError(dir.string() + " is in use by another xlt " + what +
                  (holder.empty() ? "" : " (" + holder + ")") + "; lock file " + path_.string() +
                  " (wait for it to finish, or use another output folder)");
  }
  const std::string me = holder_line() + "\n";
  // The holder line is informative only; the flock is what excludes.
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);
}

FileLock::FileLock(std::filesystem::path path, const std::string& what, bool remove_on_release)
    : path_(std::move(path)), remove_(remove_on_release) {
  bool told = false;
  for (;;) {
    fd_ = open_lock_file(path_);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (!told && !what.empty()) {
        std::cerr << "xlt: waiting for another process " << what << " (lock " << path_.string()
                  << ")\n";
        told = true;
      }
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
    // A previous holder that removes the file on release leaves us locking an unlinked inode,
    // which protects nothing: start over on the file now at `path_`.
    struct stat held {
    }, now{};
    if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &now) == 0 && held.st_ino == now.st_ino &&
        held.st_dev == now.st_dev) {
      return;
    }
    ::close(fd_);
    fd_ = -1;
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) {
    if (remove_) ::unlink(path_.c_str());
    ::close(fd_);
  }
}

}  // namespace xlt
