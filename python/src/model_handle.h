// The object behind xlt.Model, shared by the model bindings and the pipelines that accept an
// xlt.Model instead of a path (evaluate, embed, align, perplexity).
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "xlt/models/model.h"

namespace xlt::python {

struct ModelHandle {
  std::unique_ptr<models::Model> model;
  std::filesystem::path path;  // resolved folder or file it was loaded from
  std::string spec;            // as given (folder or hub id)
  std::mutex mutex;            // one forward/evaluation at a time (Model is not thread-safe)

  static std::shared_ptr<ModelHandle> load(const std::string& spec,
                                           const models::LoadOptions& options);
};

}  // namespace xlt::python
