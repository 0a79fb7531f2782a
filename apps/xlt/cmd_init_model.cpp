// `xlt init-model --arch ARCH --config CONFIG.json --out DIR`: a randomly initialised model with
// Hugging Face's init scheme, saved in HF layout (loadable by from_pretrained), for tests, demos
// and benchmarks at real sizes without downloading weights. The work is models::init_model.
#include <iostream>

#include "command.h"
#include "xlt/models/init_model.h"

namespace xlt::cli {
namespace {

int run(const models::InitModelOptions& o) {
  const int64_t n = models::init_model(o);
  std::cerr << "xlt init-model: " << o.arch << " with " << n << " parameters (seed " << o.seed
            << ") saved to " << o.out.string() << "\n";
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<models::InitModelOptions>();
  sub.add_option("--arch", o->arch, "Architecture")
      ->required()
      ->check(CLI::IsMember({"bert", "xlm-roberta", "xglm"}));
  sub.add_option("--config", o->config, "config.json (or a folder holding one) giving the sizes")
      ->required();
  sub.add_option("--out", o->out, "Folder to write (replaced atomically if it exists)")->required();
  sub.add_option("--seed", o->seed, "Random seed")->capture_default_str();
  // 0 stays the library's "from config", but on the command line it is a mistake, not that.
  sub.add_option("--num-labels", o->num_labels, "Classification labels (default: from config)")
      ->check(positive());
  return [o] { return run(*o); };
}

XLT_REGISTER_COMMAND("init-model",
                     "Write a randomly initialised model (HF init scheme) in Hugging Face layout",
                     31, configure);

}  // namespace
}  // namespace xlt::cli
