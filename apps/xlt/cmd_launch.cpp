// `xlt launch -n N [--] COMMAND...`: torchrun's single-node convenience. Starts N local ranks with
// RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, passes their
// output through, forwards SIGINT/SIGTERM, and when one rank fails (non-zero exit or a signal)
// stops the others and exits non-zero naming that rank. COMMAND is an xlt subcommand
// (`xlt launch -n 2 finetune ...`) or any program.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

#include "command.h"
#include "xlt/core/error.h"

namespace xlt::cli {
namespace {

// Local ranks on one machine: far above any core or GPU count, low enough that a typo fails fast.
constexpr int kMaxLocalRanks = 1024;

volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) {
  g_signal = sig;
}

struct LaunchOptions {
  int nproc = 0;
  int master_port = 0;
  std::string master_addr = "127.0.0.1";
  double grace = 10;
};

// A port the kernel just handed out on 127.0.0.1 (free unless someone races for it).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("xlt launch: socket(): " + std::string(std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw Error("xlt launch: cannot find a free port: " + std::string(std::strerror(errno)));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw Error("xlt launch: cannot resolve /proc/self/exe");
  return std::string(buf, static_cast<size_t>(n));
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

int exit_code_of(int status) {
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int run(const LaunchOptions& o, std::vector<std::string> command, bool after_dashes) {
  if (o.nproc < 1) throw UsageError("xlt launch: -n must be at least 1");
  if (o.nproc > kMaxLocalRanks) {
    throw UsageError("xlt launch: -n " + std::to_string(o.nproc) + " is more local ranks than " +
                     std::to_string(kMaxLocalRanks));
  }
  if (command.empty()) throw UsageError("xlt launch: COMMAND is required (e.g. finetune ...)");
  // Without `--`, an option launch does not know ends up first (torchrun's --master_port, a typo):
  // it is not a program to run.
  if (!after_dashes && command.front().size() > 1 && command.front()[0] == '-') {
    throw UsageError("xlt launch: unknown option '" + command.front() +
                     "' before COMMAND (launch's options: -n/--nproc, --master-port, "
                     "--master-addr, --grace; `--` before a COMMAND that starts with '-')");
  }
  // `xlt launch -n 2 -- xlt finetune ...` means this xlt, not whichever one PATH finds first.
  if (command.front() == "xlt") command.front() = self_exe();
  for (const auto& c : registry()) {
    if (c.name == command.front() && c.name != "launch") {
      command.insert(command.begin(), self_exe());
      break;
    }
  }
  const int port = o.master_port > 0 ? o.master_port : free_port();
  std::cerr << "xlt launch: " << o.nproc << " ranks, MASTER_ADDR=" << o.master_addr
            << " MASTER_PORT=" << port << "\n";

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<char*> argv;
  for (auto& a : command) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<pid_t> pids(static_cast<size_t>(o.nproc), -1);
  for (int r = 0; r < o.nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      const std::string why = std::strerror(errno);
      // The ranks already started would wait for their peers until --dist-timeout.
      for (int k = 0; k < r; ++k) {
        ::kill(-pids[static_cast<size_t>(k)], SIGKILL);  // its group (commands it started)
        ::kill(pids[static_cast<size_t>(k)], SIGKILL);   // before its setpgid, if it was that quick
      }
      for (int k = 0; k < r; ++k) ::waitpid(pids[static_cast<size_t>(k)], nullptr, 0);
      throw Error("xlt launch: fork() for rank " + std::to_string(r) + ": " + why + " (the " +
                  std::to_string(r) + " rank(s) started were stopped)");
    }
    if (pid == 0) {
      // Own process group: a terminal's Ctrl-C reaches the launcher, which forwards it once.
      ::setpgid(0, 0);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      // N ranks share the cores: libgomp's default spin-wait then starves the rank threads that
      // hold work (docs/finetune.md, "Threads"); an explicit setting is kept.
      ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
      ::execvp(argv[0], argv.data());
      std::cerr << "xlt launch: rank " << r << ": cannot run " << argv[0] << ": "
                << std::strerror(errno) << "\n";
      ::_exit(127);
    }
    pids[static_cast<size_t>(r)] = pid;
  }

  const std::vector<pid_t> pid_of_rank = pids;
  int alive = o.nproc, result = 0;
  bool stopping = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  auto signal_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };
  while (alive > 0) {
    if (g_signal != 0) {
      const int sig = g_signal;
      g_signal = 0;
      std::cerr << "xlt launch: " << strsignal(sig) << ": forwarding to " << alive << " rank(s)\n";
      signal_all(sig);
      if (result == 0) result = 128 + sig;
      if (!stopping) deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      stopping = true;
    }
    // Reap every rank that has ended. A rank killed by a signal is reported before ranks that
    // exited with an error in the same round: those usually failed because it vanished. A
    // broken pipe is itself such a consequence (a write to the rank that vanished), so it
    // ranks with the errors.
    std::vector<std::pair<size_t, int>> ended;
    for (int status = 0;;) {
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (size_t r = 0; r < pids.size(); ++r) {
        if (pids[r] != pid) continue;
        pids[r] = -1;
        --alive;
        ended.emplace_back(r, status);
      }
    }
    auto primary = [](int status) { return WIFSIGNALED(status) && WTERMSIG(status) != SIGPIPE; };
    std::stable_sort(ended.begin(), ended.end(), [&](const auto& a, const auto& b) {
      return primary(a.second) && !primary(b.second);
    });
    for (const auto& [r, status] : ended) {
      const bool failed = WIFSIGNALED(status) || WEXITSTATUS(status) != 0;
      if (failed && result == 0) {
        result = exit_code_of(status);
        std::cerr << "xlt launch: rank " << r << " (pid " << pid_of_rank[r] << ") "
                  << describe(status) << "; stopping the other " << alive << " rank(s)\n";
      }
      if (failed && !stopping) {
        stopping = true;
        signal_all(SIGTERM);
        deadline = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(o.grace * 1000));
      }
    }
    if (!ended.empty()) continue;
    if (stopping && std::chrono::steady_clock::now() > deadline) {
      std::cerr << "xlt launch: " << alive << " rank(s) still running after the grace period: "
                << "killing them\n";
      signal_all(SIGKILL);
      deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (result != 0) std::cerr << "xlt launch: failed (exit " << result << ")\n";
  return result;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<LaunchOptions>();
  sub.add_option("-n,--nproc", o->nproc, "Number of local ranks (processes)")->required();
  sub.add_option("--master-port", o->master_port,
                 "Rendezvous port on --master-addr (default: a free port)")
      ->check(CLI::Range(0, 65535));
  sub.add_option("--master-addr", o->master_addr, "Rendezvous host (rank 0's)")
      ->capture_default_str();
  sub.add_option("--grace", o->grace,
                 "Seconds the other ranks get after SIGTERM (when one failed) before SIGKILL")
      ->check(positive())
      ->capture_default_str();
  // Everything from COMMAND on belongs to the ranks, including its options.
  sub.prefix_command();
  sub.footer("COMMAND: an xlt subcommand (finetune, eval, ...) or any program with arguments.");
  CLI::App* app = &sub;
  return [o, app] {
    const auto& after_dashes = launch_command_after_dashes();
    if (after_dashes && !app->remaining().empty()) {
      // Words before `--` that launch does not know (torchrun's --master_port=1234, a typo).
      throw UsageError("xlt launch: unknown option '" + app->remaining().front() +
                       "' before -- (launch's options: -n/--nproc, --master-port, --master-addr, "
                       "--grace)");
    }
    return after_dashes ? run(*o, *after_dashes, true) : run(*o, app->remaining(), false);
  };
}

XLT_REGISTER_COMMAND("launch",
                     "Run N local ranks of a distributed command (torchrun-style environment), "
                     "forwarding signals and failing fast when a rank dies",
                     95, configure);

}  // namespace

std::optional<std::vector<std::string>>& launch_command_after_dashes() {
  static std::optional<std::vector<std::string>> command;
  return command;
}

std::optional<size_t> launch_separator(const CLI::App& launch,
                                       const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return i;
    if (a.size() < 2 || a[0] != '-') return std::nullopt;  // COMMAND: its `--` are its own
    const bool long_form = a.compare(0, 2, "--") == 0;
    const std::string name = long_form ? a.substr(0, a.find('=')) : a.substr(0, 2);
    const CLI::Option* opt = launch.get_option_no_throw(name);
    // "-n 2" and "--grace 5" take the next word; "-n2" and "--grace=5" do not.
    if (opt != nullptr && opt->get_type_size_max() > 0 && name.size() == a.size()) ++i;
  }
  return std::nullopt;
}
}  // namespace xlt::cli
