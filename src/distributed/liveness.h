// Private to xlt::distributed: which rank of a job is gone when a collective fails. Gloo only
// reports "connection reset" or a timeout, without the peer's rank; every rank therefore keeps a
// heartbeat in the rendezvous TCPStore, and the rank whose collective failed reads them to name
// the lost rank(s) — without any help from the launcher.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace xlt::distributed::detail {

// Store keys (under "xlt/"): hb/<rank> = "<beat> <collectives entered>", rewritten every
// kBeatPeriod by a background thread with its own store connection; failed/<rank> once this
// rank has seen a collective fail (a survivor, not a lost rank); exit/<rank> when the process
// leaves the group (destructor).
class Liveness {
 public:
  static constexpr std::chrono::milliseconds kBeatPeriod{250};

  // Connects to the store at host:port, publishes the first heartbeat (before the process group
  // exists, so every rank's key is there before the first collective) and starts the thread.
  Liveness(const std::string& host, int port, int rank, int size);
  ~Liveness();
  Liveness(const Liveness&) = delete;
  Liveness& operator=(const Liveness&) = delete;

  // Counts collectives, so that a rank that is alive but behind can be named.
  void entered_collective();

  // After a collective failed on this rank: watches the heartbeats for `observe` and describes
  // the lost ranks ("rank 1 of 2 stopped responding (...)"), ranks that are alive but did not
  // reach the collective, or "" when every peer looks healthy. Takes about `observe` plus a
  // bounded store round trip; never throws.
  std::string diagnose(std::chrono::milliseconds observe);

  // Barrier number `seq` through the store, without a deadline while the missing ranks beat.
  // Returns "" once every rank arrived, else why not (a rank exited, stopped beating for
  // `lost_after`, or the store host is gone).
  std::string wait_for_all(int64_t seq, std::chrono::milliseconds lost_after);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace xlt::distributed::detail
