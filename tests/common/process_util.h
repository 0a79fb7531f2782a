// Running `xlt` as a child process that a test can signal, limit and kill: fork + exec with
// stdout/stderr to files, an optional RLIMIT_FSIZE (to simulate a full disk), and waits that
// report whether the child exited or was killed; plus the check for temp files an interrupted
// atomic write left behind. Shared by the crash-safety tests of `xlt finetune` and `xlt study`.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/test_env.h"

namespace xlt::test {

struct Child {
  pid_t pid = -1;
  std::filesystem::path out, err;
  bool reaped = false;  // waitpid already returned its status
  int status = 0;
};

struct ChildStatus {
  bool exited = false;  // false: killed by `signal`
  int exit_code = -1;
  int signal = 0;
  std::string out, err;
};

// Starts the built xlt with `args`. `fsize_limit` > 0 sets RLIMIT_FSIZE (bytes) in the child
// only; SIGXFSZ keeps its default action there, so the child itself must ignore it.
inline Child spawn_xlt(const std::vector<std::string>& args, const std::filesystem::path& log_dir,
                       long fsize_limit = 0) {
  static int counter = 0;
  Child c;
  c.out = log_dir / ("child" + std::to_string(counter) + ".out");
  c.err = log_dir / ("child" + std::to_string(counter++) + ".err");
  const std::string exe = cli_path().string();
  std::vector<std::string> argv_s = {exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  c.pid = ::fork();
  if (c.pid == 0) {
    int o = ::open(c.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(c.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0) ::_exit(127);
    ::dup2(o, 1);
    ::dup2(e, 2);
    // The test runner may block or ignore signals; the child starts from the defaults.
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    if (fsize_limit > 0) {
      struct rlimit rl;
      rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(fsize_limit);
      if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(126);
    }
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return c;
}

inline ChildStatus wait_child(Child& c) {
  if (!c.reaped) {
    while (::waitpid(c.pid, &c.status, 0) < 0 && errno == EINTR) {
    }
    c.reaped = true;
  }
  const int status = c.status;
  ChildStatus s;
  s.exited = WIFEXITED(status);
  s.exit_code = s.exited ? WEXITSTATUS(status) : -1;
  s.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  s.out = read_text(c.out);
  s.err = read_text(c.err);
  return s;
}

// True when the child is still running (not yet reaped).
inline bool child_running(Child& c) {
  if (c.reaped) return false;
  if (::waitpid(c.pid, &c.status, WNOHANG) == c.pid) c.reaped = true;
  return !c.reaped;
}

// SIGKILLs the child if it is still running; true when a kill was sent.
inline bool kill_if_running(Child& c) {
  if (!child_running(c)) return false;
  ::kill(c.pid, SIGKILL);
  return true;
}

// Waits (up to `timeout`) until `pred` holds; false on timeout.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Every file or folder under `dir` whose name marks an unfinished atomic write
// (xlt::temp_path_for: ".<final name>.tmp.<pid>.<n>.<hex>").
inline std::vector<std::string> temp_leftovers(const std::filesystem::path& dir) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) {
      found.push_back(e.path().string());
    }
  }
  return found;
}

}  // namespace xlt::test
