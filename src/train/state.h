// Private to xlt::train: the resumable training state under OUT/state/ (weights and AdamW moments
// as safetensors, counters and positions as JSON), written as a whole folder that replaces the
// previous one atomically.
#pragma once

#include <torch/optim/adamw.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>

#include "xlt/models/model.h"

namespace xlt::train::detail {

struct TrainerState {
  int64_t global_step = 0;     // optimizer steps done
  int64_t epoch = 0;           // epoch the next step belongs to
  int64_t batch_in_epoch = 0;  // next micro-batch index in that epoch's order
  int64_t total_steps = 0;
  int64_t last_eval_step = -1;
  int64_t best_step = -1;
  double best_accuracy = -1;
  double best_macro_f1 = 0;
  // Logging window not yet written (so a resumed run logs the same means).
  double pending_loss = 0;
  int64_t pending_steps = 0;
  int64_t tokens_seen = 0;     // real training tokens since the start of the run
  double train_seconds = 0;    // time in training steps since the start of the run
  nlohmann::json fingerprint;  // config_to_json's trajectory-relevant keys

  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j, const std::string& source);
};

// OUT/state: model.safetensors (HF names), optimizer.safetensors, trainer_state.json. The folder
// is built beside `dir` and swapped in with one rename, so `dir` always holds a complete state.
void save_state(const std::filesystem::path& dir, const models::Model& model,
                torch::optim::AdamW& optimizer, const TrainerState& state);

// True when `dir` holds a state. Loads the weights into `model` and the moments into `optimizer`
// (which must have been created for `model`). CheckpointError for a damaged or mismatched state.
bool has_state(const std::filesystem::path& dir);
TrainerState load_state(const std::filesystem::path& dir, models::Model& model,
                        torch::optim::AdamW& optimizer);

}  // namespace xlt::train::detail
