// Heartbeats of the ranks in the rendezvous TCPStore, and naming the lost rank(s) after a
// collective failed (see liveness.h). Each rank uses its own store connections: the beat thread
// may block on a hung store host, and the diagnosis must stay bounded by its own short timeout.
#include "distributed/liveness.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

namespace xlt::distributed::detail {
namespace {

// The diagnosis' store round trips: long enough for a loaded machine, short next to any
// --dist-timeout worth having.
constexpr std::chrono::milliseconds kDiagnosisTimeout{3000};

c10::intrusive_ptr<c10d::Store> connect(const std::string& host, int port,
                                        std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(port);
  o.isServer = false;
  o.waitWorkers = false;  // a side connection: not one of the group's workers
  o.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(host, o);
}

std::vector<uint8_t> bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::string key(const char* what, int rank) {
  return std::string("xlt/") + what + "/" + std::to_string(rank);
}

struct Beat {
  int64_t beat = 0, collectives = 0;
};

std::optional<Beat> read_beat(c10d::Store& store, int rank) {
  const std::string k = key("hb", rank);
  if (!store.check({k})) return std::nullopt;
  const auto v = store.get(k);
  std::istringstream in(std::string(v.begin(), v.end()));
  Beat b;
  if (!(in >> b.beat >> b.collectives)) return std::nullopt;
  return b;
}

std::string rank_list(const std::vector<int>& ranks, int size) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s + " of " + std::to_string(size);
}

}  // namespace

struct Liveness::State {
  std::string host;
  int port = 0, rank = 0, size = 0;
  std::atomic<int64_t> collectives{0};
  c10::intrusive_ptr<c10d::Store> store;  // the beat thread's connection
  std::mutex m;
  std::condition_variable cv;
  bool stop = false, finished = false;
  std::thread thread;

  void publish(int64_t beat) {
    store->set(key("hb", rank), bytes(std::to_string(beat) + " " + std::to_string(collectives)));
  }
};

Liveness::Liveness(const std::string& host, int port, int rank, int size)
    : state_(std::make_shared<State>()) {
  auto& s = *state_;
  s.host = host;
  s.port = port;
  s.rank = rank;
  s.size = size;
  // Beats are tiny; the generous timeout only matters when the store host hangs.
  s.store = connect(host, port, std::chrono::seconds(30));
  s.publish(0);
  s.thread = std::thread([state = state_] {
    std::unique_lock<std::mutex> lock(state->m);
    for (int64_t beat = 1; !state->stop; ++beat) {
      lock.unlock();
      try {
        state->publish(beat);
      } catch (const std::exception&) {
        lock.lock();
        break;  // the store host is gone: nothing left to tell
      }
      lock.lock();
      state->cv.wait_for(lock, kBeatPeriod, [&] { return state->stop; });
    }
    state->finished = true;
    state->cv.notify_all();
  });
}

Liveness::~Liveness() {
  auto& s = *state_;
  std::unique_lock<std::mutex> lock(s.m);
  s.stop = true;
  s.cv.notify_all();
  // A beat blocked on a hung store host must not hold up the exit: give up on it after a second
  // (the thread owns a reference to the state, so detaching is safe).
  if (s.cv.wait_for(lock, std::chrono::seconds(1), [&] { return s.finished; })) {
    lock.unlock();
    s.thread.join();
    try {
      s.store->set(key("exit", s.rank), bytes("1"));
    } catch (const std::exception&) {
    }
  } else {
    lock.unlock();
    s.thread.detach();
  }
}

void Liveness::entered_collective() {
  ++state_->collectives;
}

std::string Liveness::diagnose(std::chrono::milliseconds observe) {
  const auto& s = *state_;
  const std::string store_host = "rank 0 of " + std::to_string(s.size) +
                                 " (the host of the rendezvous store at " + s.host + ":" +
                                 std::to_string(s.port) + ") stopped responding";
  c10::intrusive_ptr<c10d::Store> store;
  std::vector<std::optional<Beat>> before(static_cast<size_t>(s.size)), after = before;
  std::vector<int> dead, exited, behind;
  try {
    store = connect(s.host, s.port, kDiagnosisTimeout);
    // Peers that read this know this rank is a survivor, not a loss.
    store->set(key("failed", s.rank), bytes("1"));
    for (int r = 0; r < s.size; ++r) before[static_cast<size_t>(r)] = read_beat(*store, r);
    std::this_thread::sleep_for(observe);
    for (int r = 0; r < s.size; ++r) {
      if (r == s.rank || store->check({key("failed", r)})) continue;
      const auto& b = before[static_cast<size_t>(r)];
      const auto a = read_beat(*store, r);
      if (store->check({key("exit", r)})) {
        exited.push_back(r);
      } else if (!a || !b || a->beat == b->beat) {
        dead.push_back(r);
      } else if (a->collectives < s.collectives) {
        behind.push_back(r);
      }
    }
  } catch (const std::exception&) {
    return s.rank == 0 ? "" : store_host;
  }
  std::vector<std::string> parts;
  if (!dead.empty()) {
    std::ostringstream o;
    o << rank_list(dead, s.size) << " stopped responding (no heartbeat for "
      << std::chrono::duration<double>(observe).count()
      << " s: the process was killed, crashed or hangs)";
    parts.push_back(o.str());
  }
  if (!exited.empty())
    parts.push_back(rank_list(exited, s.size) + " exited (see that rank's own error message)");
  if (!behind.empty()) {
    parts.push_back(rank_list(behind, s.size) +
                    " is alive but did not reach this collective in time (stuck, or much "
                    "slower than this rank)");
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "; " : "") + parts[i];
  return out;
}

std::string Liveness::wait_for_all(int64_t seq, std::chrono::milliseconds lost_after) {
  const auto& s = *state_;
  using Clock = std::chrono::steady_clock;
  const std::string base = "xlt/wait/" + std::to_string(seq) + "/";
  try {
    auto store = connect(s.host, s.port, std::chrono::seconds(30));
    // Waits until every rank (but this one) has set prefix<rank>; "" or why not.
    auto await = [&](const std::string& prefix) -> std::string {
      std::vector<std::optional<Beat>> last(static_cast<size_t>(s.size));
      std::vector<Clock::time_point> changed(static_cast<size_t>(s.size), Clock::now());
      auto pause = std::chrono::milliseconds(20);
      for (;;) {
        bool all = true;
        for (int r = 0; r < s.size; ++r) {
          if (r == s.rank || store->check({prefix + std::to_string(r)})) continue;
          all = false;
          if (store->check({key("exit", r)})) {
            return "rank " + std::to_string(r) + " of " + std::to_string(s.size) +
                   " exited (see that rank's own error message)";
          }
          const auto b = read_beat(*store, r);
          auto& prev = last[static_cast<size_t>(r)];
          if (b && (!prev || prev->beat != b->beat)) {
            prev = b;
            changed[static_cast<size_t>(r)] = Clock::now();
          } else if (Clock::now() - changed[static_cast<size_t>(r)] > lost_after) {
            std::ostringstream o;
            o << "rank " << r << " of " << s.size << " stopped responding (no heartbeat for "
              << std::chrono::duration<double>(lost_after).count()
              << " s: the process was killed, crashed or hangs)";
            return o.str();
          }
        }
        if (all) return "";
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::milliseconds(500));
      }
    };
    store->set(base + "in/" + std::to_string(s.rank), bytes("1"));
    std::string why = await(base + "in/");
    if (!why.empty()) return why;
    // Rank 0 hosts the store: it leaves last, or a rank still polling would find it gone.
    if (s.rank != 0) {
      store->set(base + "out/" + std::to_string(s.rank), bytes("1"));
      return "";
    }
    return await(base + "out/");
  } catch (const std::exception&) {
    return s.rank == 0
               ? "the rendezvous store failed on its own host"
               : "rank 0 of " + std::to_string(s.size) + " (the host of the rendezvous store at " +
                     s.host + ":" + std::to_string(s.port) + ") stopped responding";
  }
}

}  // namespace xlt::distributed::detail
