// Public model API: load a Hugging Face checkpoint folder (BERT, XLM-R, XGLM) into a libtorch
// model whose parameter names are HF's state-dict keys, run it with HF's semantics, and save it
// back in HF layout. Everything downstream (eval, finetune, embeddings, attention analysis,
// perplexity) goes through this header.
//
// Usage:
//   auto model = xlt::models::load_model("ckpt/", opts);  // LoadOptions opts; opts.num_labels = 3;
//   xlt::models::ModelInputs in{ids, mask};            // int64 [batch, seq]
//   auto out = model->forward(in);
//   out.logits;                                        // [batch, num_labels]
//
// Thread safety: a Model is not safe for concurrent forward calls from several threads (autograd
// state and the training flag are per model); use one model per thread or serialise calls.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "xlt/io/config.h"

namespace torch::nn {
class Module;
}

namespace xlt::models {

// Inputs, all on the model's device or on CPU (moved as needed).
struct ModelInputs {
  ModelInputs() = default;
  // ModelInputs{ids}, ModelInputs{ids, mask}, ...
  ModelInputs(at::Tensor ids, at::Tensor mask = {}, at::Tensor types = {}, at::Tensor lab = {})
      : input_ids(std::move(ids)),
        attention_mask(std::move(mask)),
        token_type_ids(std::move(types)),
        labels(std::move(lab)) {}

  at::Tensor input_ids;       // int64 [batch, seq]
  at::Tensor attention_mask;  // [batch, seq], 1 = token, 0 = padding (any dtype); undefined = all 1
  at::Tensor token_type_ids;  // int64 [batch, seq] (BERT/XLM-R); undefined = zeros
  // Classification: int64 [batch] class ids (float [batch] when num_labels == 1: regression;
  // float [batch, num_labels] multi-label). Causal LM: int64 [batch, seq], -100 = ignored; HF
  // XGLM's shift applies (target at t is labels[t+1], the last target is pad_token_id).
  at::Tensor labels;
};

struct ForwardOptions {
  bool output_hidden_states = false;
  bool output_attentions = false;
  // false skips the task head (logits/loss stay undefined): cheaper embedding extraction and
  // chunked LM scoring with output_embeddings().
  bool compute_logits = true;
  // Unpadded execution: embeddings, projections, feed-forward and LayerNorm run on the real
  // (attention-mask 1) tokens only; attention stays per sequence. Real-token outputs equal the
  // padded run's to float rounding; outputs at padding positions are zeros (HF computes values
  // there that nothing should read). Falls back to the padded path when it cannot be exact:
  // output_attentions, a mask with values other than 0/1, an encoder row whose first token is
  // padding (the classifier reads it), XGLM with labels (HF's loss reads the last position even
  // when it is padding). The pipelines (eval, finetune, embed, perplexity) turn it on.
  bool packed = false;
  // How attention scores are computed. kEager: HF's "eager" arithmetic (matmul, mask, softmax,
  // dropout, matmul); the only path that can return probabilities. kSdpa: PyTorch's
  // scaled_dot_product_attention (PyTorch 2.x; flash / memory-efficient kernels on CUDA, which
  // never materialise the T x T scores); on libtorch 1.13 it runs eager. kAuto: kSdpa on CUDA,
  // kEager elsewhere (on the CPU the eager path keeps xlt's reproducible parallel dropout).
  // kVarlen (Hugging Face's flash_attention_2 counterpart): a packed batch's attention in one
  // variable-length kernel call per layer over all its sequences (PyTorch 2.x on CUDA: flash
  // attention for bf16/fp16, memory-efficient for float32) instead of one call per length
  // group; on the CPU a per-sequence loop of the eager arithmetic (for tests, slow); a padded
  // batch runs kSdpa. kAuto uses the varlen kernels on CUDA where they qualify.
  // output_attentions always runs eager.
  enum class Attention { kAuto, kEager, kSdpa, kVarlen };
  Attention attention = Attention::kAuto;
};

// Whether this libtorch has scaled_dot_product_attention (PyTorch 2.x).
bool sdpa_available();

// The --attention values: "auto", "eager", "sdpa", "varlen"; anything else throws UsageError.
ForwardOptions::Attention parse_attention(const std::string& name);
const char* attention_name(ForwardOptions::Attention attention);

// Shapes: B = batch, T = seq, H = hidden, L = layers, A = heads.
struct ModelOutputs {
  at::Tensor logits;                      // classification [B, num_labels]; causal LM [B, T, vocab]
  at::Tensor last_hidden_state;           // [B, T, H]; XGLM: after the final LayerNorm (as HF)
  at::Tensor pooler_output;               // BERT only: tanh(dense(h[:, 0])) [B, H]
  std::vector<at::Tensor> hidden_states;  // L + 1 entries, [0] = embeddings output (HF order)
  std::vector<at::Tensor> attentions;     // L entries, softmax probabilities [B, A, T, T]
  // XGLM with output_hidden_states: raw output of every decoder layer (the last one before the
  // final LayerNorm, which hidden_states.back() includes). Empty for encoders.
  std::vector<at::Tensor> layer_outputs;
  at::Tensor loss;  // scalar, when labels were given and compute_logits
};

enum class ModelKind { kSequenceClassification, kCausalLM };

// What the loader did, for logs: every name the checkpoint had that was not used, and every
// parameter created fresh.
struct LoadReport {
  std::filesystem::path source;
  int64_t loaded = 0;                    // tensors copied from the checkpoint
  std::vector<std::string> ignored;      // pretraining heads / stale buffers (cls.*, lm_head.*)
  std::vector<std::string> initialized;  // new classification head parameters (HF init)
  std::vector<std::string> renamed;      // legacy names accepted ("...LayerNorm.gamma" -> weight)
  std::string summary() const;           // one line, for stderr
};

class Model {
 public:
  virtual ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Runs the model in its current mode (eval() by default after loading: no dropout).
  virtual ModelOutputs forward(const ModelInputs& inputs, const ForwardOptions& options = {}) = 0;
  // Causal LM: the [vocab, H] matrix logits are computed with (tied to the input embeddings).
  // Undefined for encoders.
  virtual at::Tensor output_embeddings() const { return {}; }

  ModelKind kind() const { return kind_; }
  io::ModelType type() const { return config_.model_type; }
  const io::ModelConfig& config() const { return config_; }
  io::ModelConfig& mutable_config() { return config_; }
  int64_t num_labels() const { return config_.num_labels; }

  // Parameters with their Hugging Face state-dict names, in registration (= HF) order.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  std::vector<at::Tensor> parameters() const;
  int64_t num_parameters() const;
  torch::nn::Module& module() { return *module_; }
  const torch::nn::Module& module() const { return *module_; }

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const;

  // Moves/casts every parameter. bfloat16 is for inference (training keeps float32 masters).
  void to(c10::Device device, c10::ScalarType dtype);
  c10::Device device() const { return device_; }
  c10::ScalarType dtype() const { return dtype_; }

  const LoadReport& load_report() const { return report_; }
  LoadReport& mutable_load_report() { return report_; }
  // Folder the model was loaded from (tokenizer files are copied from here on save); may be empty.
  const std::filesystem::path& source_dir() const { return source_dir_; }
  void set_source_dir(std::filesystem::path dir) { source_dir_ = std::move(dir); }

 protected:
  Model(ModelKind kind, io::ModelConfig config, std::shared_ptr<torch::nn::Module> module);

 private:
  ModelKind kind_;
  io::ModelConfig config_;
  std::shared_ptr<torch::nn::Module> module_;
  c10::Device device_{c10::kCPU};
  c10::ScalarType dtype_ = c10::kFloat;
  LoadReport report_;
  std::filesystem::path source_dir_;
};

struct LoadOptions {
  // Classification labels: 0 = as in the config (or the checkpoint's head). A different count
  // than the checkpoint's head is an error unless new_head is set.
  int64_t num_labels = 0;
  // Label names (size must equal num_labels when both are given); default LABEL_0, LABEL_1, ...
  std::vector<std::string> labels;
  // Discard any classification head in the checkpoint and initialise a fresh one.
  bool new_head = false;
  c10::Device device{c10::kCPU};
  c10::ScalarType dtype = c10::kFloat;  // kFloat or kBFloat16
  uint64_t seed = 42;                   // for a freshly initialised head
};

// Loads a checkpoint: a folder with config.json + model.safetensors (or sharded index), or a
// .safetensors file with config.json beside it. Strict: every missing, unexpected, misshapen or
// wrong-dtype tensor is reported in one CheckpointError. The model is returned in eval mode.
std::unique_ptr<Model> load_model(const std::filesystem::path& path,
                                  const LoadOptions& options = {});

// ConfigError when a tokenizer has more tokens than the model's vocab_size (a tokenizer of
// another model: its high ids would fail only once a sentence happens to produce one). A model
// may have more rows than tokens (vocabularies padded to a multiple of 8).
void check_tokenizer_fits(std::size_t tokenizer_vocab_size, const Model& model,
                          const std::filesystem::path& tokenizer_source);

// The longest input (tokens, special ones included) the model's position embeddings cover:
// max_position_embeddings for BERT, less pad_token_id + 1 for XLM-R (its positions start after
// the padding index); 0 for XGLM, whose sinusoidal positions extend as far as needed.
int64_t max_sequence_length(const Model& model);

// A randomly initialised model with Hugging Face's init scheme (normal(0, initializer_range)
// for Linear/Embedding weights, zero biases and padding rows, LayerNorm 1/0), on CPU, float32.
std::unique_ptr<Model> create_model(const io::ModelConfig& config, uint64_t seed = 42);

struct SaveOptions {
  // Tokenizer files (tokenizer.json, vocab.txt, tokenizer_config.json, special_tokens_map.json,
  // sentencepiece.bpe.model) are copied from here when present; default: model.source_dir().
  std::filesystem::path tokenizer_dir;
};

// Writes config.json + model.safetensors (HF names and layout; XGLM without a tied
// lm_head.weight) + tokenizer files into `dir`, atomically: everything goes to a temp folder
// beside it that is renamed into place. An existing `dir` is replaced, but files there that are
// not a model's (config, weights in any layout, tokenizer files) are kept, as save_pretrained
// keeps them. IoError for the current folder or one above it.
void save_model(const Model& model, const std::filesystem::path& dir,
                const SaveOptions& options = {});

// The names, in order, that save_model writes (checkpoint keys).
std::vector<std::string> checkpoint_names(const Model& model);

// "cpu", "cuda", "cuda:1". Throws UsageError naming the value; ConfigError when CUDA is asked
// for but unavailable.
c10::Device parse_device(const std::string& name);
// "float32" / "fp32" / "bfloat16" / "bf16".
c10::ScalarType parse_dtype(const std::string& name);
std::string dtype_name(c10::ScalarType dtype);
// at::set_num_threads; n <= 0 = xlt::default_threads (the cores not already busy). Returns the
// count in use. Also calls ensure_fast_blas(). UsageError above xlt::kMaxThreads.
int set_threads(int n);

// Debian 12's OpenBLAS falls back to SSE3 kernels on CPUs it does not recognise (recent Xeons),
// ~4.7x slower GEMM than the AVX-512 kernels they support. Switches (once per process, before
// heavy work) to SkylakeX/Haswell kernels as the CPU allows, unless OPENBLAS_CORETYPE is set.
// load_model, create_model and set_threads call it. Returns e.g. "OpenBLAS SkylakeX (was
// Prescott)" for logs. Thread-safe.
std::string ensure_fast_blas();

}  // namespace xlt::models
