// The resumable training state folder (see state.h). Weights and moments are stored bit-exactly
// (float32 as float32), so a resumed run continues from exactly the numbers it stopped with.
#include "train/state.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <system_error>

#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/io/safetensors.h"
#include "xlt/train/optimizer.h"

namespace xlt::train::detail {
namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kFormat = "xlt-finetune-state";
constexpr int kFormatVersion = 1;

io::DType io_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return io::DType::F32;
    case at::kLong:
      return io::DType::I64;
    case at::kBFloat16:
      return io::DType::BF16;
    case at::kDouble:
      return io::DType::F64;
    default:
      throw std::logic_error("save_state: unsupported tensor dtype");
  }
}

at::ScalarType torch_dtype(io::DType t, const std::string& where) {
  switch (t) {
    case io::DType::F32:
      return at::kFloat;
    case io::DType::I64:
      return at::kLong;
    case io::DType::BF16:
      return at::kBFloat16;
    case io::DType::F64:
      return at::kDouble;
    default:
      throw CheckpointError(where + ": unexpected dtype " + std::string(io::dtype_name(t)));
  }
}

void write_tensors(const fs::path& path, const std::map<std::string, at::Tensor>& tensors) {
  std::vector<at::Tensor> keep;
  std::vector<io::TensorView> views;
  for (const auto& [name, t0] : tensors) {
    auto t = t0.detach().to(at::kCPU).contiguous();
    keep.push_back(t);
    io::TensorView v;
    v.name = name;
    v.dtype = io_dtype(t.scalar_type());
    v.shape.assign(t.sizes().begin(), t.sizes().end());
    v.data = static_cast<const std::byte*>(t.data_ptr());
    v.nbytes = t.nbytes();
    views.push_back(std::move(v));
  }
  io::write_safetensors(path, views, {{"format", "pt"}});
}

std::map<std::string, at::Tensor> read_tensors(const fs::path& path) {
  auto file = io::SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& name : file->names()) {
    const auto& v = file->tensor(name);
    auto t = at::empty(v.shape,
                       at::TensorOptions().dtype(torch_dtype(v.dtype, path.string() + " " + name)));
    if (v.nbytes != t.nbytes()) throw CheckpointError(path.string() + ": " + name + ": bad size");
    if (v.nbytes > 0) std::memcpy(t.data_ptr(), v.data, v.nbytes);
    out.emplace(name, std::move(t));
  }
  return out;
}

// Puts `fresh` at `target`: an atomic exchange where the kernel supports it, so that `target`
// names a complete folder at every instant; otherwise the old folder is moved aside first.
void replace_folder(const fs::path& fresh, const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(target)) {
    fs::rename(fresh, target);
    return;
  }
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(fresh, ec);  // now holds the previous state
    return;
  }
  const fs::path old = temp_path_for(target);
  fs::rename(target, old);
  fs::rename(fresh, target);
  fs::remove_all(old, ec);
}

}  // namespace

nlohmann::json TrainerState::to_json() const {
  return {{"format", kFormat},
          {"format_version", kFormatVersion},
          {"global_step", global_step},
          {"epoch", epoch},
          {"batch_in_epoch", batch_in_epoch},
          {"total_steps", total_steps},
          {"last_eval_step", last_eval_step},
          {"best_step", best_step},
          {"best_accuracy", best_accuracy},
          {"best_macro_f1", best_macro_f1},
          {"pending_loss", pending_loss},
          {"pending_steps", pending_steps},
          {"tokens_seen", tokens_seen},
          {"train_seconds", train_seconds},
          {"rng",
           {{"data_order", "length_grouped_batches(derive_seed(derive_seed(seed, order), epoch))"},
            {"dropout", "manual_seed(derive_seed(derive_seed(seed, drop), global_step))"}}},
          {"config", fingerprint}};
}

TrainerState TrainerState::from_json(const nlohmann::json& j, const std::string& source) {
  try {
    if (j.value("format", "") != kFormat || j.value("format_version", 0) != kFormatVersion) {
      throw CheckpointError(source + ": not an xlt fine-tuning state (format " +
                            j.value("format", std::string("?")) + ")");
    }
    TrainerState s;
    s.global_step = j.at("global_step").get<int64_t>();
    s.epoch = j.at("epoch").get<int64_t>();
    s.batch_in_epoch = j.at("batch_in_epoch").get<int64_t>();
    s.total_steps = j.at("total_steps").get<int64_t>();
    s.last_eval_step = j.at("last_eval_step").get<int64_t>();
    s.best_step = j.at("best_step").get<int64_t>();
    s.best_accuracy = j.at("best_accuracy").get<double>();
    s.best_macro_f1 = j.at("best_macro_f1").get<double>();
    s.pending_loss = j.at("pending_loss").get<double>();
    s.pending_steps = j.at("pending_steps").get<int64_t>();
    s.tokens_seen = j.at("tokens_seen").get<int64_t>();
    s.train_seconds = j.at("train_seconds").get<double>();
    s.fingerprint = j.at("config");
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(source + ": malformed training state: " + e.what());
  }
}

void save_state(const fs::path& dir, const models::Model& model, torch::optim::AdamW& optimizer,
                const TrainerState& state) {
  const fs::path target = fs::absolute(dir);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  const fs::path tmp = temp_path_for(target);
  fs::create_directory(tmp, ec);
  if (ec) throw IoError(tmp.string() + ": cannot create folder: " + ec.message());
  try {
    std::map<std::string, at::Tensor> weights;
    for (const auto& [name, p] : model.named_parameters()) weights.emplace(name, p);
    write_tensors(tmp / "model.safetensors", weights);
    write_tensors(tmp / "optimizer.safetensors", optimizer_state_tensors(model, optimizer));
    write_file_atomic(tmp / kStateFile, state.to_json().dump(2) + "\n");
    fsync_path(tmp);
    replace_folder(tmp, target);
    fsync_path(target.parent_path());
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw IoError("saving training state to " + target.string() + ": " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

bool has_state(const fs::path& dir) {
  return fs::is_regular_file(dir / kStateFile);
}

TrainerState load_state(const fs::path& dir, models::Model& model, torch::optim::AdamW& optimizer) {
  const fs::path json_path = dir / kStateFile;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(json_path));
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(json_path.string() + ": invalid JSON: " + e.what());
  }
  TrainerState state = TrainerState::from_json(j, json_path.string());

  const fs::path weights_path = dir / "model.safetensors";
  auto weights = read_tensors(weights_path);
  std::vector<std::string> problems;
  at::NoGradGuard no_grad;
  for (auto& [name, p] : model.named_parameters()) {
    auto it = weights.find(name);
    if (it == weights.end()) {
      problems.push_back("missing " + name);
    } else if (it->second.sizes() != p.sizes()) {
      problems.push_back(name + ": shape differs from the model's");
    } else {
      p.copy_(it->second.to(p.device(), p.scalar_type()));
    }
  }
  if (!problems.empty()) {
    std::string msg = weights_path.string() + ": saved weights do not fit the model:";
    for (size_t i = 0; i < problems.size() && i < 10; ++i) msg += "\n  " + problems[i];
    throw CheckpointError(msg);
  }
  const fs::path opt_path = dir / "optimizer.safetensors";
  load_optimizer_state(model, optimizer, read_tensors(opt_path), opt_path.string());
  return state;
}

}  // namespace xlt::train::detail
