// The original study's notebook as one short C++ program against xlt's public headers: load a
// tokenizer and a model, English training data and per-language evaluation sets, baseline
// accuracy per language, sentence embeddings + t-SNE of parallel sentences, head-averaged
// attention of a parallel pair, English fine-tuning, zero-shot accuracy per language.
//
//   example_notebook [DEMO_DIR [WORK_DIR]]     (defaults: examples/demo, a temp folder)
//
// It runs on the demo data with a randomly initialised tiny BERT; point DEMO_DIR's files at a
// real checkpoint and XNLI/MultiNLI to run the real thing (or use `xlt study`).
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "xlt/analysis/tsne.h"
#include "xlt/data/nli.h"
#include "xlt/eval/collate.h"
#include "xlt/eval/evaluate.h"
#include "xlt/eval/metrics.h"
#include "xlt/io/config.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"
#include "xlt/train/finetune.h"

namespace fs = std::filesystem;
using namespace xlt;

// Mean of the non-special tokens' last hidden states, one row per sentence. (A public
// sentence-embedding helper would replace these lines; see the study runner.)
static analysis::Matrix embed(models::Model& model, const text::Tokenizer& tok,
                              const std::vector<std::string>& sentences) {
  c10::InferenceMode guard;
  const auto encs = tok.encode_batch(sentences);
  const auto in = eval::collate(encs, eval::collate_options_for(tok));
  models::ForwardOptions fo;
  fo.compute_logits = false;
  const auto h = model.forward(in, fo).last_hidden_state;
  analysis::Matrix m(h.size(0), h.size(2));
  for (int64_t i = 0; i < h.size(0); ++i) {
    const auto& e = encs[static_cast<size_t>(i)];
    std::vector<int64_t> keep;
    for (size_t t = 0; t < e.size(); ++t) {
      if (!e.special_tokens_mask[t]) keep.push_back(static_cast<int64_t>(t));
    }
    const auto row = h[i].index_select(0, at::tensor(keep, at::kLong)).mean(0).contiguous();
    std::copy(row.data_ptr<float>(), row.data_ptr<float>() + m.cols, m.row(i));
  }
  return m;
}

static void print_accuracy(const char* title, models::Model& model, const text::Tokenizer& tok,
                           const std::vector<data::NliDataset>& sets) {
  std::printf("%s:", title);
  for (const auto& ds : sets) {
    eval::EvalOptions opt;
    opt.label_map = eval::map_labels(model.config(), ds.labels).model_to_data;
    opt.progress = false;
    const auto p = eval::evaluate_nli(model, tok, ds, opt);
    std::printf("  %s %.1f%%", ds.lang.c_str(), 100.0 * eval::accuracy(p.gold, p.pred));
  }
  std::printf("\n");
}

int main(int argc, char** argv) try {
  const fs::path demo = argc > 1 ? argv[1] : "examples/demo";
  const fs::path work = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / "xlt-notebook";
  const std::vector<std::string> langs = {"en", "es", "fr", "hi"};

  // 1. Tokenizer and model (random tiny BERT with a 3-way NLI head, saved so training can load it).
  auto tok = text::load_tokenizer(demo);
  auto config = io::ModelConfig::load(demo / "bert-config.json");
  config.num_labels = 3;
  auto model = models::create_model(config, /*seed=*/42);
  model->eval();  // no dropout outside training
  models::SaveOptions save;
  save.tokenizer_dir = demo;
  models::save_model(*model, work / "init", save);

  // 2. English training data and per-language evaluation sets.
  const auto train = data::read_nli_file(demo / "train-en.jsonl", "en");
  std::vector<data::NliDataset> dev;
  for (const auto& lang : langs)
    dev.push_back(data::read_nli_file(demo / ("dev-" + lang + ".tsv"), lang));
  std::printf("train: %lld English pairs; eval: %lld pairs per language\n",
              static_cast<long long>(train.size()), static_cast<long long>(dev[0].size()));

  // 3. Baseline accuracy per language (before fine-tuning).
  print_accuracy("baseline ", *model, *tok, dev);

  // 4. Sentence embeddings of the first parallel sentences and their t-SNE map.
  const std::vector<std::string> parallel = {"The cat is sleeping on the mat.",
                                             "El gato est\u00e1 durmiendo en la alfombra.",
                                             "Le chat dort sur le tapis.",
                                             "This restaurant has amazing food.",
                                             "Este restaurante tiene una comida incre\u00edble.",
                                             "Ce restaurant a une nourriture incroyable."};
  const auto emb = embed(*model, *tok, parallel);
  analysis::TsneOptions topt;
  topt.perplexity = 1.5;  // 6 points
  const auto map = analysis::tsne(emb.view(), topt);
  std::printf("t-SNE of %lld sentences: KL %.3f\n", static_cast<long long>(map.n),
              map.kl_divergence);

  // 5. Head-averaged attention of a parallel pair at the last layer.
  for (const std::string s : {"The black cat sat down.", "El gato negro se sent\u00f3."}) {
    c10::InferenceMode guard;
    const auto in = eval::collate({tok->encode(s)}, eval::collate_options_for(*tok));
    models::ForwardOptions fo;
    fo.output_attentions = true;
    const auto att = model->forward(in, fo).attentions.back()[0].mean(0);
    std::printf("attention [%lld x %lld] of \"%s\": first token attends %.2f to itself\n",
                static_cast<long long>(att.size(0)), static_cast<long long>(att.size(1)), s.c_str(),
                att[0][0].item<float>());
  }

  // 6. Fine-tune on English only.
  train::FinetuneConfig ft;
  ft.model = (work / "init").string();
  ft.train_specs = {"en=" + (demo / "train-en.jsonl").string()};
  ft.out_dir = work / "finetuned";
  ft.epochs = 3;
  ft.lr = 5e-4;
  ft.batch_size = 16;
  ft.max_length = 64;
  ft.overwrite = true;
  ft.progress = false;
  const auto result = train::finetune(ft);
  std::printf("fine-tuned: %lld steps\n", static_cast<long long>(result.steps));

  // 7. Zero-shot accuracy per language with the fine-tuned model.
  auto tuned = models::load_model(work / "finetuned" / "best");
  print_accuracy("zero-shot", *tuned, *tok, dev);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "notebook: %s\n", e.what());
  return 1;
}
