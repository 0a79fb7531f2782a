// The object behind xlt.Model, shared by the model bindings and the pipelines that accept an
// xlt.Model instead of a path (evaluate, embed, align, perplexity).
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "xlt/core/error.h"
#include "xlt/models/model.h"

namespace xlt::python {

struct ModelHandle {
  std::unique_ptr<models::Model> model;
  std::filesystem::path path;  // resolved folder or file it was loaded from
  std::string spec;            // as given (folder or hub id)
  std::mutex mutex;            // one forward/evaluation at a time (Model is not thread-safe)
  std::atomic<std::thread::id> owner{};  // the thread holding `mutex`, if any

  static std::shared_ptr<ModelHandle> load(const std::string& spec,
                                           const models::LoadOptions& options);
};

// Takes a model for one call; take it without the GIL (a call holding it takes the GIL for its
// progress reports). Another thread waits; the thread that already holds it (a progress callback
// using the model its call reports on) gets a UsageError instead of waiting forever.
class ModelLock {
 public:
  explicit ModelLock(ModelHandle& h) : h_(h) {
    if (h_.owner.load() == std::this_thread::get_id()) {
      throw UsageError(
          "this xlt.Model is in use by the call whose progress is being reported; a progress "
          "callback cannot use the model of that call (use another xlt.Model, or wait until the "
          "call returns)");
    }
    h_.mutex.lock();
    h_.owner.store(std::this_thread::get_id());
  }
  ~ModelLock() {
    h_.owner.store(std::thread::id{});
    h_.mutex.unlock();
  }
  ModelLock(const ModelLock&) = delete;
  ModelLock& operator=(const ModelLock&) = delete;

 private:
  ModelHandle& h_;
};

}  // namespace xlt::python
