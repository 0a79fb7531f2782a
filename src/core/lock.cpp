// FolderLock (see lock.h): flock + an informative "pid host start-time" line in the lock file.
#include "xlt/core/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

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

}  // namespace

FolderLock::FolderLock(const std::filesystem::path& dir, const std::string& name,
                       const std::string& what)
    : path_(dir / name) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw IoError(path_.string() + ": cannot create the lock file: " + std::strerror(errno));
  }
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

}  // namespace xlt
