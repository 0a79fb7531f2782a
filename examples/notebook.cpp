// The original study's notebook as one short C++ program against xlt's public headers: load a
// tokenizer and a model, English training data and per-language evaluation sets, baseline
// accuracy per language, sentence embeddings + t-SNE of parallel sentences, head-averaged
// attention of a parallel pair, English fine-tuning, zero-shot accuracy per language.
//
//   example_notebook [DEMO_DIR [WORK_DIR]]     (defaults: examples/demo, a temp folder)
//
// It runs on the demo data with a randomly initialised tiny BERT; point DEMO_DIR's files at a
// real checkpoint and XNLI/MultiNLI to run the real thing (or use `xlt study`).

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "xlt/analysis/attention.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/analysis/tsne.h"
#include "xlt/data/nli.h"
#include "xlt/eval/evaluate.h"
#include "xlt/eval/metrics.h"
#include "xlt/io/config.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"
#include "xlt/train/finetune.h"

namespace fs = std::filesystem;
using namespace xlt;

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
  analysis::EmbeddingOptions eopt;  // mean over the non-special tokens of the last layer
  eopt.layers = {static_cast<int>(model->config().num_hidden_layers)};
  const auto emb = analysis::sentence_embeddings(*model, *tok, parallel, eopt);
  analysis::TsneOptions topt;
  topt.perplexity = 1.5;  // 6 points
  const auto map = analysis::tsne(emb.matrices[0].view(), topt);
  std::printf("t-SNE of %lld sentences: KL %.3f\n", static_cast<long long>(map.n),
              map.kl_divergence);

  // 5. Head-averaged attention of a parallel pair at the last layer.
  analysis::AttentionOptions aopt;
  aopt.layers = {static_cast<int>(model->config().num_hidden_layers)};
  for (const std::string s : {"The black cat sat down.", "El gato negro se sent\u00f3."}) {
    const auto att = analysis::sentence_attention(*model, *tok, s, aopt);
    const auto& layer = att.layers.front();  // [1, n, n] head mean
    std::printf(
        "attention [%zu x %zu] of \"%s\": first token attends %.2f to itself, entropy "
        "%.2f nats\n",
        att.tokens.size(), att.tokens.size(), s.c_str(), layer.weights[0], layer.measures.entropy);
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
