// `xlt forward MODEL --inputs IN.safetensors --output OUT.safetensors`: one forward pass of a
// model on given token ids, writing the same tensors Hugging Face returns (logits,
// last_hidden_state, pooler_output, hidden_states.{i}, attentions.{i}, loss) under the names the
// parity fixtures use, so outputs can be diffed against transformers directly.
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <iostream>

#include "command.h"
#include "xlt/core/error.h"
#include "xlt/models/model.h"
#include "xlt/models/tensor_io.h"
#include "xlt/version.h"

namespace xlt::cli {
namespace {

struct ForwardCliOptions {
  std::string model, inputs, output, dtype = "float32";
  bool hidden_states = false, attentions = false, labels = false;
  int64_t num_labels = 0;
  RuntimeOptions runtime;
};

models::ModelInputs read_inputs(const std::string& path, bool with_labels) {
  auto t = models::read_tensors(path);
  auto take = [&](const char* name, bool required) {
    auto it = t.find(name);
    if (it == t.end()) {
      if (required) throw DataError(path + ": no tensor '" + name + "'");
      return at::Tensor();
    }
    return it->second;
  };
  models::ModelInputs in;
  in.input_ids = take("input_ids", true);
  in.attention_mask = take("attention_mask", false);
  in.token_type_ids = take("token_type_ids", false);
  if (with_labels) in.labels = take("labels", true);
  return in;
}

// Outputs in float32 (whatever the compute dtype), scalars as [1] like the fixtures.
std::vector<std::pair<std::string, at::Tensor>> named_outputs(const models::ModelOutputs& o) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    if (!t.defined()) return;
    auto f = t.to(at::kCPU, at::kFloat);
    out.emplace_back(name, f.dim() == 0 ? f.reshape({1}) : f);
  };
  add("logits", o.logits);
  add("last_hidden_state", o.last_hidden_state);
  add("pooler_output", o.pooler_output);
  add("loss", o.loss);
  for (size_t i = 0; i < o.hidden_states.size(); ++i) {
    add("hidden_states." + std::to_string(i), o.hidden_states[i]);
  }
  for (size_t i = 0; i < o.attentions.size(); ++i) {
    add("attentions." + std::to_string(i), o.attentions[i]);
  }
  for (size_t i = 0; i < o.layer_outputs.size(); ++i) {
    add("layer_outputs." + std::to_string(i), o.layer_outputs[i]);
  }
  return out;
}

int run(const ForwardCliOptions& o) {
  const int threads = apply_runtime_options(o.runtime);
  models::LoadOptions lo;
  lo.num_labels = o.num_labels;
  lo.device = models::parse_device(o.runtime.device);
  lo.dtype = models::parse_dtype(o.dtype);
  const auto start = std::chrono::steady_clock::now();
  auto model = models::load_model(o.model, lo);
  std::cerr << "xlt forward: " << model->load_report().summary() << "\n";
  auto in = read_inputs(o.inputs, o.labels);

  models::ForwardOptions fo;
  fo.output_hidden_states = o.hidden_states;
  fo.output_attentions = o.attentions;
  models::ModelOutputs out;
  {
    c10::InferenceMode inference;
    out = model->forward(in, fo);
  }
  auto tensors = named_outputs(out);
  // The run's resolved settings travel in the output's header, so results are reproducible.
  std::map<std::string, std::string> meta = {{"xlt_version", XLT_VERSION},
                                             {"model", o.model},
                                             {"inputs", o.inputs},
                                             {"device", o.runtime.device},
                                             {"dtype", o.dtype},
                                             {"threads", std::to_string(threads)},
                                             {"num_labels", std::to_string(model->num_labels())}};
  models::write_tensors(o.output, tensors, meta);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "xlt forward: " << io::model_type_name(model->type()) << " on " << o.runtime.device
            << " (" << o.dtype << ", " << threads << " threads), input " << in.input_ids.size(0)
            << "x" << in.input_ids.size(1) << ": wrote " << tensors.size() << " tensors to "
            << o.output << " in " << secs << " s\n";
  if (out.loss.defined()) std::cout << "loss " << out.loss.item<double>() << "\n";
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<ForwardCliOptions>();
  sub.add_option("model", o->model, "Model folder (config.json + safetensors) or cached hub id")
      ->required();
  sub.add_option("--inputs", o->inputs,
                 "safetensors with input_ids [, attention_mask, token_type_ids, labels]")
      ->required()
      ->check(CLI::ExistingFile);
  sub.add_option("--output", o->output, "safetensors file to write the outputs to")->required();
  sub.add_flag("--hidden-states", o->hidden_states, "Also write hidden_states.{i}");
  sub.add_flag("--attentions", o->attentions, "Also write attentions.{i} (probabilities)");
  sub.add_flag("--labels", o->labels, "Compute the loss with the inputs' `labels` tensor");
  sub.add_option("--num-labels", o->num_labels,
                 "Classification labels (0 = from config.json; a new head is initialised when "
                 "the checkpoint has none)")
      ->check(non_negative());
  sub.add_option("--dtype", o->dtype, "Compute dtype: float32 or bfloat16")->capture_default_str();
  add_runtime_options(sub, o->runtime);
  return [o] { return run(*o); };
}

XLT_REGISTER_COMMAND("forward",
                     "Run a model on token ids from a safetensors file and write HF-named outputs "
                     "(logits, hidden states, attentions, loss)",
                     30, configure);

}  // namespace
}  // namespace xlt::cli
