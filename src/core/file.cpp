// Whole-file reads and atomic writes (temp file + fsync + rename); see include/xlt/core/file.h.
#include "xlt/core/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <random>
#include <sstream>

#include "xlt/core/error.h"

namespace xlt {
namespace fs = std::filesystem;

namespace {
std::string os_reason() {
  return std::strerror(errno);
}
}  // namespace

std::string read_file(const fs::path& path) {
  // An ifstream opens a folder and then reads nothing: a folder given as a config file read as
  // an empty config (every default).
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw IoError(path.string() + ": is a folder, expected a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int e = errno;
    if (e == ENOENT)
      throw FileNotFound(path.string() + ": cannot open for reading: " + os_reason());
    throw IoError(path.string() + ": cannot open for reading: " + os_reason());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(path.string() + ": read failed: " + os_reason());
  return ss.str();
}

fs::path temp_path_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  std::ostringstream name;
  name << "." << path.filename().string() << ".tmp." << ::getpid() << "." << counter++ << "."
       << std::hex << rd();
  return path.parent_path() / name.str();
}

bool is_temp_name(const std::string& name) {
  // ".<name>.tmp.<pid>.<counter>.<hex>", as temp_path_for writes it: a user's ".notes.tmp.txt"
  // is not one.
  const size_t at = name.rfind(".tmp.");
  if (name.size() < 2 || name[0] != '.' || at == std::string::npos || at < 2) return false;
  size_t i = at + 5;
  auto run = [&](auto ok) {
    const size_t start = i;
    while (i < name.size() && ok(static_cast<unsigned char>(name[i]))) ++i;
    return i > start;
  };
  auto dot = [&] { return i < name.size() && name[i++] == '.'; };
  return run(::isdigit) && dot() && run(::isdigit) && dot() && run(::isxdigit) && i == name.size();
}

void remove_temp_files(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (is_temp_name(e.path().filename().string())) found.push_back(e.path());
  }
  for (const auto& p : found) fs::remove_all(p, ec);
}

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw IoError(path.string() + ": cannot open to sync: " + os_reason());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems refuse fsync on folders (EINVAL); that is not a data-loss risk.
  if (rc != 0 && err != EINVAL)
    throw IoError(path.string() + ": fsync failed: " + std::strerror(err));
}

struct AtomicFile::Impl {
  std::ofstream out;
};

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)), impl_(new Impl) {
  if (path_.has_parent_path() && !fs::is_directory(path_.parent_path())) {
    delete impl_;
    throw IoError(path_.string() + ": folder " + path_.parent_path().string() + " does not exist");
  }
  temp_ = temp_path_for(path_);
  impl_->out.open(temp_, std::ios::binary | std::ios::trunc);
  if (!impl_->out) {
    std::string reason = os_reason();
    delete impl_;
    throw IoError(path_.string() + ": cannot create temporary file " + temp_.string() + ": " +
                  reason);
  }
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    impl_->out.close();
    std::error_code ec;
    fs::remove(temp_, ec);
  }
  delete impl_;
}

std::ostream& AtomicFile::stream() {
  return impl_->out;
}

void AtomicFile::commit() {
  impl_->out.flush();
  if (!impl_->out) {
    throw IoError(path_.string() + ": write failed (disk full or file too large?): " + os_reason());
  }
  impl_->out.close();
  if (impl_->out.fail()) throw IoError(path_.string() + ": closing failed: " + os_reason());
  fsync_path(temp_);
  std::error_code ec;
  fs::rename(temp_, path_, ec);
  if (ec)
    throw IoError(path_.string() + ": cannot move temporary file into place: " + ec.message());
  committed_ = true;
  fs::path dir = path_.has_parent_path() ? path_.parent_path() : fs::path(".");
  try {
    fsync_path(dir);
  } catch (const IoError&) {
    // The rename already happened; a folder that cannot be synced does not undo it.
  }
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  AtomicFile file(path);
  file.stream().write(content.data(), static_cast<std::streamsize>(content.size()));
  file.commit();
}

std::vector<fs::path> prepare_output_folder(const fs::path& dir, std::string_view flag) {
  const std::string what = std::string(flag) + " " + dir.string();
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw UsageError(what + " exists and is not a folder");
  }
  std::vector<fs::path> created;
  fs::path start = dir.lexically_normal();
  if (!start.has_filename() && start.has_parent_path()) start = start.parent_path();  // "a/b/"
  for (fs::path p = start; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    created.push_back(p);
    if (p == p.parent_path()) break;
  }
  CreatedFolders undo(created);  // nor a folder that proves unwritable, nor half a path
  fs::create_directories(start, ec);
  if (ec) throw IoError(what + ": cannot create folder: " + ec.message());
  try {
    // A temp name: what a run killed right here leaves is swept like any other temp file.
    const fs::path probe = temp_path_for(dir / "xlt-write-test");
    write_file_atomic(probe, "");
    fs::remove(probe, ec);
  } catch (const IoError& e) {
    throw IoError(what + " is not writable: " + e.what());
  }
  return created;
}

CreatedFolders::CreatedFolders(std::vector<fs::path> created)
    : created_(std::move(created)), exceptions_(std::uncaught_exceptions()) {}

CreatedFolders::~CreatedFolders() {
  if (std::uncaught_exceptions() <= exceptions_) return;
  std::error_code ec;
  for (const auto& dir : created_) {
    if (!fs::is_directory(dir, ec)) continue;  // never made (creation failed below it)
    if (!fs::is_empty(dir, ec)) break;
    fs::remove(dir, ec);
  }
}

}  // namespace xlt
