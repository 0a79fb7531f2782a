// The strict checkpoint -> model mapping used by load_model (exposed to the tests).
#pragma once

#include "models/arch.h"
#include "xlt/io/safetensors.h"
#include "xlt/models/tensor_io.h"

namespace xlt::models {

// Copies every parameter of `model` from `checkpoint` (converting F16/BF16/F64 to the parameter's
// dtype). Accepts legacy `.gamma`/`.beta` LayerNorm names and checkpoints of the bare base model
// (names without base_prefix()). Ignores the tensors model.ignorable() names. Initialises the
// model's optional modules (task head, BERT pooler) with HF's init when the checkpoint has none
// of their tensors. Throws one CheckpointError listing every missing, unexpected, misshapen and
// wrong-dtype tensor.
LoadReport load_weights(ArchModel& model, const io::Checkpoint& checkpoint,
                        const LoadOptions& options);

}  // namespace xlt::models
