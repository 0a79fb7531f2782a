// Real-data check of xlt finetune (slow: minutes): a small randomly initialised BERT (4 layers,
// hidden 128, 4 heads) with the real mBERT vocabulary, trained on the MultiNLI sample
// (10k pairs) and selected on English XNLI dev, must clearly beat chance (33.3%). Prints accuracy,
// time and tokens/s. Set XLT_FINETUNE_REAL_OUT to keep the run folder.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "common/test_env.h"
#include "train_test_util.h"
#include "xlt/train/finetune.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;

TEST(FinetuneReal, SmallBertOnMultiNliBeatsChanceOnXnliDev) {
  const fs::path mbert = shared_dir() / "data" / "bert-base-multilingual-cased";
  const fs::path train = shared_dir() / "data" / "multinli" / "train.jsonl";
  const fs::path dev = shared_dir() / "data" / "xnli" / "xtreme_format" / "dev-en.tsv";
  XLT_REQUIRE_PATH(mbert / "vocab.txt");
  XLT_REQUIRE_PATH(train);
  XLT_REQUIRE_PATH(dev);
  at::set_num_threads(2);

  TempDir tmp;
  auto c = io::ModelConfig::load(mbert / "config.json");
  c.architectures = {"BertForSequenceClassification"};
  c.num_hidden_layers = 4;
  c.hidden_size = 128;
  c.num_attention_heads = 4;
  c.intermediate_size = 512;
  c.max_position_embeddings = 128;
  c.num_labels = 3;
  c.id2label = {{0, "LABEL_0"}, {1, "LABEL_1"}, {2, "LABEL_2"}};
  c.label2id = {{"LABEL_0", 0}, {"LABEL_1", 1}, {"LABEL_2", 2}};
  auto model = models::create_model(c, 1);
  models::SaveOptions so;
  so.tokenizer_dir = mbert;
  models::save_model(*model, tmp / "small-mbert", so);

  train::FinetuneConfig fc;
  fc.model = (tmp / "small-mbert").string();
  fc.train_specs = {"en=" + train.string()};
  fc.dev_specs = {"en=" + dev.string()};
  const char* keep = std::getenv("XLT_FINETUNE_REAL_OUT");
  fc.out_dir = keep && *keep ? fs::path(keep) : tmp / "run";
  fc.overwrite = true;
  fc.epochs = 3;
  fc.lr = 3e-4;
  fc.warmup_ratio = 0.1;
  fc.batch_size = 32;
  fc.max_length = 128;
  fc.log_every = 50;
  fc.eval_every = 150;
  fc.eval_batch_size = 128;
  const auto start = std::chrono::steady_clock::now();
  const auto r = train::finetune(fc);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[finetune-real] steps " << r.steps << ", best dev-en accuracy " << r.best_accuracy
            << " at step " << r.best_step << ", last " << r.last_accuracy << ", wall " << secs
            << " s, training " << r.train_seconds << " s, " << r.tokens_per_second()
            << " real tokens/s (2 threads)\n";
  EXPECT_GT(r.best_accuracy, 0.40);  // chance 0.333 on balanced XNLI dev (2490 pairs)
}

}  // namespace
}  // namespace xlt::test
