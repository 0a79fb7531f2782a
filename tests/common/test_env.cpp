// Implementation of the shared test helpers (see test_env.h).
#include "common/test_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace xlt::test {
namespace fs = std::filesystem;

fs::path source_dir() {
  return fs::path(XLT_SOURCE_DIR);
}

fs::path shared_dir() {
  if (const char* s = std::getenv("XLT_SHARED"); s && *s) return fs::path(s);
  return fs::weakly_canonical(source_dir() / ".." / "shared");
}

fs::path fixtures_dir() {
  if (const char* s = std::getenv("XLT_FIXTURES"); s && *s) return fs::path(s);
  return shared_dir() / "fixtures";
}

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) throw std::runtime_error("free_port: cannot bind a socket on 127.0.0.1");
  return ntohs(a.sin_port);
}

fs::path cli_path() {
  return fs::path(XLT_BINARY_DIR) / "xlt";
}

TempDir::TempDir() {
  std::random_device rd;
  std::ostringstream name;
  name << "xlt-test-" << ::getpid() << "-" << std::hex << rd() << rd();
  path_ = fs::temp_directory_path() / name.str();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  }
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

void write_text(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

CommandResult run_command(const std::string& command_line, const std::string& input) {
  TempDir tmp;
  fs::path in = tmp / "stdin", out = tmp / "stdout", err = tmp / "stderr";
  write_text(in, input);
  std::string full = "( " + command_line + " ) <" + shell_quote(in.string()) + " >" +
                     shell_quote(out.string()) + " 2>" + shell_quote(err.string());
  int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

CommandResult run_xlt(const std::string& args, const std::string& input) {
  return run_command(shell_quote(cli_path().string()) + " " + args, input);
}

}  // namespace xlt::test
