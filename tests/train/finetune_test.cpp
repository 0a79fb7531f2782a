// End-to-end tests of xlt::train::finetune on a tiny random BERT and a synthetic task: it learns,
// two runs with one seed are identical, stop + --resume equals an uninterrupted run bit for bit,
// checkpoints reload with the same predictions and carry NLI labels, and bad inputs fail before
// training with exit code 2.
#include "xlt/train/finetune.h"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cmath>

#include "common/test_env.h"
#include "train_test_util.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/nli.h"
#include "xlt/eval/evaluate.h"
#include "xlt/text/tokenizer.h"
#include "xlt/version.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class Finetune : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);  // bit-exact comparisons need a fixed reduction order
    model_ = make_tiny_bert(tmp_ / "tiny");
    write_marker_task(tmp_ / "train.jsonl", 480, 1);
    write_marker_task(tmp_ / "dev.jsonl", 150, 2);
  }
  train::FinetuneConfig base(const std::string& out) {
    train::FinetuneConfig c;
    c.model = model_.string();
    c.train_specs = {"en=" + (tmp_ / "train.jsonl").string()};
    c.dev_specs = {"en=" + (tmp_ / "dev.jsonl").string()};
    c.out_dir = tmp_ / out;
    c.batch_size = 16;
    c.lr = 1e-3;
    c.max_length = 32;
    c.log_every = 1;
    c.progress = false;
    return c;
  }
  static json read_json(const fs::path& p) { return json::parse(read_text(p)); }
  TempDir tmp_;
  fs::path model_;
};

TEST_F(Finetune, LearnsSyntheticTaskAndWritesOutputs) {
  auto c = base("run");
  // 30 steps per epoch. A random 2-layer model first separates one marker from the other two;
  // at this rate all three are learnt by about step 180 (lr 1e-3 and above can get stuck in
  // that two-class plateau).
  c.epochs = 8;
  c.lr = 5e-4;
  c.warmup_ratio = 0.1;
  const auto r = train::finetune(c);
  EXPECT_EQ(r.total_steps, 240);
  EXPECT_EQ(r.steps, 240);
  EXPECT_GE(r.best_accuracy, 0.95);
  const auto losses = logged_losses(c.out_dir / "log.jsonl");
  ASSERT_EQ(losses.size(), 240u);
  double first = 0, final_loss = 0;
  for (int i = 0; i < 10; ++i) first += losses[static_cast<size_t>(i)] / 10;
  for (size_t i = losses.size() - 10; i < losses.size(); ++i) final_loss += losses[i] / 10;
  EXPECT_GT(first, 1.0);        // ~ln 3 at the start
  EXPECT_LT(final_loss, 0.65);  // training loss includes dropout's noise

  // log.jsonl: one train record per step with the documented fields, one eval per epoch.
  int evals = 0;
  std::vector<double> dev_losses;
  std::istringstream in(read_text(c.out_dir / "log.jsonl"));
  double prev_lr = -1;
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line);
    if (j["type"] == "eval") {
      ++evals;
      dev_losses.push_back(j["dev_loss"].get<double>());
      EXPECT_EQ(j["step"].get<int>() % 30, 0);
      EXPECT_TRUE(j.contains("dev_accuracy") && j.contains("dev_loss") && j.contains("best"));
      continue;
    }
    for (const char* k : {"step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_s"})
      EXPECT_TRUE(j.contains(k)) << k;
    // Warm-up (24 steps) then linear decay: lr of step s (1-based) = 5e-4 * f(s - 1).
    const int s = j["step"].get<int>();
    const double f = s - 1 < 24 ? (s - 1) / 24.0 : (240.0 - (s - 1)) / 216.0;
    EXPECT_NEAR(j["learning_rate"].get<double>(), 5e-4 * f, 1e-12) << s;
    if (s > 25) {
      EXPECT_LT(j["learning_rate"].get<double>(), prev_lr);
    }
    prev_lr = j["learning_rate"].get<double>();
  }
  EXPECT_EQ(evals, 8);
  ASSERT_EQ(dev_losses.size(), 8u);
  EXPECT_LT(dev_losses.back(), 0.6);  // from ln 3 = 1.0986 (the model is still gaining confidence)
  EXPECT_GT(dev_losses.front(), 1.05);

  for (const char* d : {"best", "last"}) {
    for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
      EXPECT_TRUE(fs::exists(c.out_dir / d / f)) << d << "/" << f;
    const auto cfg = read_json(c.out_dir / d / "config.json");
    EXPECT_EQ(cfg["id2label"],
              json({{"0", "entailment"}, {"1", "neutral"}, {"2", "contradiction"}}));
    EXPECT_EQ(cfg["label2id"], json({{"entailment", 0}, {"neutral", 1}, {"contradiction", 2}}));
    EXPECT_EQ(cfg["architectures"], json({"BertForSequenceClassification"}));
  }
  const auto res = read_json(c.out_dir / "results.json");
  EXPECT_EQ(res["best"]["dev_accuracy"].get<double>(), r.best_accuracy);
  EXPECT_EQ(res["last"]["step"], 240);
  EXPECT_EQ(res["last"]["dev"]["n"], 150);
  const auto tc = read_json(c.out_dir / "train_config.json");
  EXPECT_EQ(tc["config"]["lr"], 5e-4);
  EXPECT_EQ(tc["resolved"]["warmup_steps"], 24);
  EXPECT_EQ(tc["xlt_version"], XLT_VERSION);
  EXPECT_FALSE(tc["model"]["head_initialized"].get<bool>());

  // The saved checkpoints reload in xlt and give exactly the recorded dev results.
  const auto dev = data::read_nli_file(tmp_ / "dev.jsonl", "en");
  for (const char* d : {"best", "last"}) {
    auto m = models::load_model(c.out_dir / d);
    auto tok = text::load_tokenizer(c.out_dir / d);
    auto map = eval::map_labels(m->config(), dev.labels);
    EXPECT_TRUE(map.by_name && map.identity());
    eval::EvalOptions eo;
    eo.progress = false;
    eo.max_length = 32;
    auto p = eval::evaluate_nli(*m, *tok, dev, eo);
    const double acc = eval::accuracy(p.gold, p.pred);
    if (std::string(d) == "best") {
      EXPECT_EQ(acc, r.best_accuracy);
    } else {
      EXPECT_EQ(acc, res["last"]["dev"]["accuracy"].get<double>());
    }
  }
  // last/ holds exactly the weights of the final training state.
  const auto last = read_safetensors(c.out_dir / "last" / "model.safetensors");
  const auto state = read_safetensors(c.out_dir / "state" / "model.safetensors");
  ASSERT_EQ(last.size(), state.size());
  for (auto& [n, t] : last) EXPECT_TRUE(at::equal(t, state.at(n))) << n;
}

std::map<std::string, at::Tensor> last_weights(const fs::path& out) {
  return read_safetensors(out / "last" / "model.safetensors");
}

void expect_same_weights(const std::map<std::string, at::Tensor>& a,
                         const std::map<std::string, at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (auto& [n, t] : a) EXPECT_TRUE(at::equal(t, b.at(n))) << n << " differs";
}

TEST_F(Finetune, SameSeedSameRunAndResumeIsBitExact) {
  auto full = base("full");
  full.max_steps = 24;  // 30 batches per epoch: the stop below falls mid-epoch
  full.grad_accum = 2;
  full.warmup_steps = 3;
  full.eval_every = 5;
  full.samples = 400;
  const auto r1 = train::finetune(full);
  ASSERT_EQ(r1.steps, 24);

  auto again = full;
  again.out_dir = tmp_ / "again";
  train::finetune(again);
  EXPECT_EQ(logged_losses(full.out_dir / "log.jsonl"), logged_losses(again.out_dir / "log.jsonl"));
  expect_same_weights(last_weights(full.out_dir), last_weights(again.out_dir));

  // A different seed changes the trajectory (the test above could not fail otherwise).
  auto other = full;
  other.out_dir = tmp_ / "other";
  other.seed = 43;
  train::finetune(other);
  EXPECT_NE(logged_losses(full.out_dir / "log.jsonl"), logged_losses(other.out_dir / "log.jsonl"));

  // Stop at step 9 (state saved at 8 too: save_every), then resume to the end.
  auto part = full;
  part.out_dir = tmp_ / "part";
  part.stop_after = 9;
  part.save_every = 4;
  const auto rp = train::finetune(part);
  EXPECT_TRUE(rp.stopped);
  EXPECT_EQ(rp.steps, 9);
  EXPECT_EQ(read_json(part.out_dir / "state" / "trainer_state.json")["global_step"], 9);
  EXPECT_FALSE(read_json(part.out_dir / "results.json")["complete"].get<bool>());
  part.stop_after = 0;
  part.resume = true;
  const auto rr = train::finetune(part);
  EXPECT_EQ(rr.steps, 24);
  EXPECT_FALSE(rr.stopped);
  EXPECT_EQ(logged_losses(full.out_dir / "log.jsonl"), logged_losses(part.out_dir / "log.jsonl"));
  expect_same_weights(last_weights(full.out_dir), last_weights(part.out_dir));
  expect_same_weights(read_safetensors(full.out_dir / "best" / "model.safetensors"),
                      read_safetensors(part.out_dir / "best" / "model.safetensors"));
  const auto res_full = read_json(full.out_dir / "results.json");
  const auto res_part = read_json(part.out_dir / "results.json");
  EXPECT_EQ(res_full["best"], res_part["best"]);
  EXPECT_EQ(read_text(full.out_dir / "log.jsonl").size() > 0, true);

  // Resuming with options that change the trajectory is refused, naming the option.
  auto changed = part;
  changed.lr = 5e-4;
  EXPECT_TRUE(throws_with<ConfigError>([&] { train::finetune(changed); }, {"lr"}));
}

// --resume compares inputs by what their paths name: another spelling of the same model or data
// resumes, another tokenizer is refused. A caller that checked the contents itself (the study)
// may name them by other paths.
TEST_F(Finetune, ResumeComparesInputsByWhatTheirPathsName) {
  auto part = base("part");
  part.max_steps = 6;
  part.stop_after = 3;
  part.save_every = 1;
  ASSERT_TRUE(train::finetune(part).stopped);
  auto expect_refused = [&](train::FinetuneConfig c, const std::string& key) {
    EXPECT_TRUE(throws_with<ConfigError>([&] { train::finetune(c); }, {"\n  " + key + ": saved"}))
        << key;
  };
  part.stop_after = 0;
  part.resume = true;
  // A copy of the model folder is another model (for all the trainer knows).
  fs::copy(model_, tmp_ / "copy");
  auto copy = part;
  copy.model = (tmp_ / "copy").string();
  expect_refused(copy, "model");
  auto tok = part;
  tok.tokenizer = (tmp_ / "copy").string();
  expect_refused(tok, "tokenizer");
  auto data = part;
  data.train_specs = {"en=" + (tmp_ / "dev.jsonl").string()};
  expect_refused(data, "train");
  // The same path holding other examples: the data changed under the run.
  const std::string train_text = read_text(tmp_ / "train.jsonl");
  size_t cut = 0;
  for (int line = 0; line < 240; ++line) cut = train_text.find('\n', cut) + 1;
  write_text(tmp_ / "train.jsonl", train_text.substr(0, cut));
  EXPECT_TRUE(throws_with<ConfigError>(
      [&] { train::finetune(part); },
      {"\n  train_data: the --train examples differ from the saved run's (a file changed since: "
       "480 examples then, 240 now)"}));
  write_text(tmp_ / "train.jsonl", train_text);
  // Other spellings of the same paths, and the model folder named as the tokenizer it defaults
  // to, are the same run.
  auto same = part;
  same.model = (tmp_ / "x" / ".." / "tiny").string();
  same.tokenizer = model_.string();
  same.train_specs = {"en=" + (tmp_ / "." / "train.jsonl").string()};
  fs::create_directories(tmp_ / "x");
  const auto r = train::finetune(same);
  EXPECT_EQ(r.steps, 6);
  EXPECT_FALSE(r.stopped);
  // The fingerprint holds absolute paths: a relative spelling from another working folder is
  // compared by what it names there.
  const json saved = read_json(part.out_dir / "state" / "trainer_state.json")["config"];
  EXPECT_EQ(saved["model"], model_.lexically_normal().string());
  EXPECT_EQ(saved["train"][0], "en=" + (tmp_ / "train.jsonl").lexically_normal().string());

  auto part2 = base("part2");
  part2.max_steps = 6;
  part2.stop_after = 3;
  ASSERT_TRUE(train::finetune(part2).stopped);
  part2.stop_after = 0;
  part2.resume = true;
  part2.model = (tmp_ / "copy").string();
  part2.managed_by_caller = true;
  EXPECT_EQ(train::finetune(part2).steps, 6);
}

// --stop-after N on a resume already at step N takes no step (each such resume took one more).
TEST_F(Finetune, ResumeAtStopAfterTakesNoStep) {
  auto c = base("stop");
  c.max_steps = 8;
  c.stop_after = 3;
  ASSERT_TRUE(train::finetune(c).stopped);
  c.resume = true;
  auto r = train::finetune(c);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.steps, 3);
  c.stop_after = 2;
  r = train::finetune(c);
  EXPECT_EQ(r.steps, 3);
  c.stop_after = 0;
  r = train::finetune(c);
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.steps, 8);
}

// --skip-bad-rows says what it skipped (stderr and train_config.json), and an unlabelled row is
// named in its own file when several --train files are given (it named the joined list).
TEST_F(Finetune, SkippedRowsAreReportedAndBadRowsNameTheirFile) {
  write_text(tmp_ / "bad.jsonl", read_text(tmp_ / "train.jsonl") +
                                     "{\"premise\": \"x\", \"hypothesis\": \"y\", \"label\": 7}\n"
                                     "garbage\n");
  auto c = base("skip");
  c.train_specs = {"en=" + (tmp_ / "bad.jsonl").string()};
  c.skip_bad_rows = true;
  c.max_steps = 1;
  train::finetune(c);
  const json train = read_json(c.out_dir / "train_config.json")["data"]["train"];
  EXPECT_EQ(train["examples"], 480);
  EXPECT_EQ(train["bad_rows_skipped"].dump(), R"({"malformed":1,"unknown_label":1})") << train;
  write_text(tmp_ / "unl.jsonl",
             "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": 0}\n"
             "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": -1}\n");
  auto two = base("two");
  two.train_specs.push_back("de=" + (tmp_ / "unl.jsonl").string());
  EXPECT_TRUE(throws_with<DataError>(
      [&] { train::finetune(two); },
      {"--train " + (tmp_ / "unl.jsonl").string() + ":2: example has no gold label"}));
}

// Bad input found before training leaves no folder behind where there was none (it left one
// holding the lock file), and --resume into a folder that does not exist makes none.
TEST_F(Finetune, BadInputLeavesNoNewFolder) {
  write_text(tmp_ / "broken.jsonl", "garbage\n");
  auto c = base("fresh");
  c.train_specs = {"en=" + (tmp_ / "broken.jsonl").string()};
  EXPECT_THROW(train::finetune(c), DataError);
  EXPECT_FALSE(fs::exists(c.out_dir));
  auto r = base("nowhere");
  r.resume = true;
  EXPECT_TRUE(throws_with<ConfigError>([&] { train::finetune(r); },
                                       {"--resume: --out ", "does not exist"}));
  EXPECT_FALSE(fs::exists(r.out_dir));
  // A folder that was there stays, with what it held.
  fs::create_directories(tmp_ / "mine");
  c.out_dir = tmp_ / "mine";
  EXPECT_THROW(train::finetune(c), DataError);
  EXPECT_TRUE(fs::exists(c.out_dir));
}

// A multilingual dev file (XNLI 1.0's xnli.dev.tsv layout) without --langs selects the checkpoint
// on the training languages only: its other languages used to be merged into the dev accuracy,
// leaking the zero-shot targets into model selection.
TEST_F(Finetune, MultilingualDevFileIsReadInTheTrainingLanguages) {
  std::string tsv = "language\tgold_label\tsentence1\tsentence2\n";
  std::istringstream in(read_text(tmp_ / "dev.jsonl"));
  const char* names[] = {"entailment", "neutral", "contradiction"};
  std::string fr;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    const std::string row = std::string(names[j["label"].get<int>()]) + "\t" +
                            j["premise"].get<std::string>() + "\t" +
                            j["hypothesis"].get<std::string>() + "\n";
    tsv += "en\t" + row;
    fr += "fr\t" + row;
  }
  write_text(tmp_ / "xnli.dev.tsv", tsv + fr);
  auto c = base("multi");
  c.dev_specs = {(tmp_ / "xnli.dev.tsv").string()};
  c.max_steps = 4;
  c.stop_after = 2;
  c.save_every = 1;
  train::finetune(c);
  const json cfg = read_json(c.out_dir / "train_config.json");
  EXPECT_EQ(cfg["data"]["dev"]["examples"], 150) << cfg["data"].dump();
  // A run an older xlt saved (no dev digest in its state) resumes with the dev set it started
  // with, every language, so its best checkpoint is chosen on one measure throughout.
  json state = read_json(c.out_dir / "state" / "trainer_state.json");
  state["config"].erase("dev_data");
  write_text(c.out_dir / "state" / "trainer_state.json", state.dump(2));
  c.resume = true;
  c.stop_after = 0;
  EXPECT_EQ(train::finetune(c).steps, 4);
  EXPECT_EQ(read_json(c.out_dir / "train_config.json")["data"]["dev"]["examples"], 300);
  // A dev file without the training language: nothing to select on.
  write_text(tmp_ / "fr.dev.tsv", "language\tgold_label\tsentence1\tsentence2\n" + fr);
  auto none = base("none");
  none.dev_specs = {(tmp_ / "fr.dev.tsv").string()};
  EXPECT_TRUE(throws_with<DataError>([&] { train::finetune(none); },
                                     {"no rows in the training languages (en)"}));
}

// Input paths are saved absolute: a run started with relative paths resumes from another working
// folder with other relative spellings. A fingerprint that an older xlt saved with relative paths
// resumes from the working folder it was made in, and is saved absolute from then on.
TEST_F(Finetune, ResumesFromAnotherWorkingFolder) {
  const fs::path cwd = fs::current_path();
  fs::create_directories(tmp_ / "sub");
  fs::current_path(tmp_.path());
  auto c = base("rel");
  c.model = "tiny";
  c.train_specs = {"en=train.jsonl"};
  c.dev_specs = {"en=dev.jsonl"};
  c.out_dir = "rel";
  c.max_steps = 6;
  c.stop_after = 2;
  c.save_every = 1;
  ASSERT_TRUE(train::finetune(c).stopped);
  const fs::path state = tmp_ / "rel" / "state" / "trainer_state.json";
  const std::string model = (tmp_ / "tiny").lexically_normal().string();
  EXPECT_EQ(read_json(state)["config"]["model"], model);
  EXPECT_EQ(read_json(state)["config"]["train"][0],
            "en=" + (tmp_ / "train.jsonl").lexically_normal().string());

  fs::current_path(tmp_ / "sub");
  c.model = "../tiny";
  c.train_specs = {"en=../train.jsonl"};
  c.dev_specs = {"en=../dev.jsonl"};
  c.out_dir = "../rel";
  c.stop_after = 4;
  c.resume = true;
  EXPECT_EQ(train::finetune(c).steps, 4);

  json s = read_json(state);
  s["config"]["model"] = "tiny";
  s["config"]["train"] = {"en=train.jsonl"};
  s["config"]["dev"] = {"en=dev.jsonl"};
  write_text(state, s.dump());
  c.stop_after = 5;
  EXPECT_THROW(train::finetune(c), ConfigError);  // "tiny" in sub/ is not the model
  fs::current_path(tmp_.path());
  c.model = "tiny";
  c.train_specs = {"en=train.jsonl"};
  c.dev_specs = {"en=dev.jsonl"};
  c.out_dir = "rel";
  EXPECT_EQ(train::finetune(c).steps, 5);
  EXPECT_EQ(read_json(state)["config"]["model"], model);
  fs::current_path(cwd);
}

// A run that stopped before its first save of state/ has nothing to resume; both ways of
// rerunning it say to start over with --overwrite, which does.
TEST_F(Finetune, RunWithoutSavedStateIsStartedOverWithOverwrite) {
  auto c = base("died");
  c.max_steps = 2;
  fs::create_directories(c.out_dir);
  write_text(c.out_dir / "log.jsonl", "{\"step\": 1}\n");
  for (bool resume : {false, true}) {
    auto again = c;
    again.resume = resume;
    EXPECT_TRUE(throws_with<ConfigError>([&] { train::finetune(again); },
                                         {"before its first save", "--overwrite"}))
        << "resume=" << resume;
  }
  c.overwrite = true;
  EXPECT_EQ(train::finetune(c).steps, 2);
}

// A pair longer than the model's positions fails before the output folder holds anything, not
// in the middle of training.
TEST_F(Finetune, PairsLongerThanThePositionsAreRefusedBeforeTraining) {
  std::string premise;
  for (int i = 0; i < 80; ++i) premise += "cat ";
  write_text(tmp_ / "long.jsonl",
             read_text(tmp_ / "train.jsonl") +
                 json{{"premise", premise}, {"hypothesis", "very cat"}, {"label", 0}}.dump() +
                 "\n");
  auto c = base("long");
  c.train_specs = {"en=" + (tmp_ / "long.jsonl").string()};
  c.max_length = 128;  // the tiny model has 64 positions
  EXPECT_TRUE(
      throws_with<DataError>([&] { train::finetune(c); },
                             {"--train: a pair has 85 tokens at --max-length 128", "cover 64"}));
  EXPECT_FALSE(fs::exists(c.out_dir / "log.jsonl"));
  EXPECT_FALSE(fs::exists(c.out_dir / "train_config.json"));
  // Within the positions the same data trains (truncated as Hugging Face does).
  c.max_length = 64;
  c.max_steps = 1;
  c.dev_specs.clear();
  EXPECT_EQ(train::finetune(c).steps, 1);
}

// Token-budget batches (--max-tokens): the plan goes into train_config.json, stop + resume is
// bit-exact as with row batches, and packed execution learns as the padded path does (their
// dropout masks differ, so the curves agree statistically, not bit for bit).
TEST_F(Finetune, TokenBudgetResumesExactlyAndPackingLearnsLikePadded) {
  auto full = base("budget");
  full.max_tokens = 256;  // max_length 32: at least 8 rows, ~20 at the task's lengths
  full.epochs = 6;
  full.lr = 5e-4;
  full.warmup_ratio = 0.1;
  const auto r = train::finetune(full);
  const auto cfg = read_json(full.out_dir / "train_config.json");
  EXPECT_EQ(cfg["config"]["max_tokens"], 256);
  EXPECT_EQ(cfg["resolved"]["global_max_tokens"], 256);
  EXPECT_TRUE(cfg["resolved"]["global_batch_size"].is_null());
  int64_t planned = 0;
  for (const auto& n : cfg["resolved"]["batches_per_epoch_each"]) planned += n.get<int64_t>();
  EXPECT_EQ(planned, r.total_steps);
  EXPECT_LT(r.total_steps, 6 * 30);  // fewer, larger batches than 16 rows each
  EXPECT_GE(r.best_accuracy, 0.95);

  auto part = full;
  part.out_dir = tmp_ / "budget_part";
  part.stop_after = r.total_steps / 2 + 1;  // mid-epoch
  EXPECT_TRUE(train::finetune(part).stopped);
  part.stop_after = 0;
  part.resume = true;
  // The kernel may change on resume (a run moved to a GPU); eager is kAuto's choice on the CPU.
  part.attention = models::ForwardOptions::Attention::kEager;
  EXPECT_EQ(train::finetune(part).steps, r.total_steps);
  EXPECT_EQ(read_json(part.out_dir / "train_config.json")["config"]["attention"], "eager");
  EXPECT_FALSE(read_json(full.out_dir / "train_config.json")["config"].contains("attention"));
  EXPECT_EQ(logged_losses(full.out_dir / "log.jsonl"), logged_losses(part.out_dir / "log.jsonl"));
  expect_same_weights(last_weights(full.out_dir), last_weights(part.out_dir));

  auto padded = full;
  padded.out_dir = tmp_ / "budget_padded";
  padded.packed = false;
  const auto rp = train::finetune(padded);
  EXPECT_GE(rp.best_accuracy, 0.95);
  const auto a = logged_losses(full.out_dir / "log.jsonl");
  const auto b = logged_losses(padded.out_dir / "log.jsonl");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_NE(a, b);  // the padded path really ran
  auto mean = [](const std::vector<double>& v, size_t from, size_t to) {
    double m = 0;
    for (size_t i = from; i < to; ++i) m += v[i];
    return m / static_cast<double>(to - from);
  };
  const size_t n = a.size();
  EXPECT_NEAR(mean(a, 0, 5), mean(b, 0, 5), 0.05);  // both start at ~ln 3
  EXPECT_NEAR(mean(a, n / 2, n), mean(b, n / 2, n), 0.15);
}

// A checkpoint without a classification head (a pretrained encoder) gets a fresh head, reported
// in train_config.json; a 2-label head cannot produce NLI's 3 labels and is refused up front.
TEST_F(Finetune, HeadlessCheckpointAndWrongHeadSize) {
  const fs::path headless = tmp_ / "headless";
  fs::create_directories(headless);
  for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json"})
    fs::copy_file(model_ / f, headless / f);
  auto w = read_safetensors(model_ / "model.safetensors");
  std::vector<at::Tensor> keep;
  std::vector<io::TensorView> views;
  for (auto& [n, t] : w) {
    if (n.rfind("classifier.", 0) == 0) continue;
    io::TensorView v;
    v.name = n;
    v.dtype = io::DType::F32;
    v.shape.assign(t.sizes().begin(), t.sizes().end());
    v.data = static_cast<const std::byte*>(t.data_ptr());
    v.nbytes = t.nbytes();
    views.push_back(v);
  }
  io::write_safetensors(headless / "model.safetensors", views);
  auto c = base("headless-run");
  c.model = headless.string();
  c.max_steps = 2;
  train::finetune(c);
  const auto tc = read_json(c.out_dir / "train_config.json");
  EXPECT_TRUE(tc["model"]["head_initialized"].get<bool>());
  EXPECT_EQ(tc["model"]["initialized"], json({"classifier.weight", "classifier.bias"}));

  const fs::path two = make_tiny_bert(tmp_ / "two-labels", 7, 2);
  auto c2 = base("two-run");
  c2.model = two.string();
  EXPECT_THROW(train::finetune(c2), CheckpointError);
  EXPECT_FALSE(fs::exists(c2.out_dir / "log.jsonl"));
}

// XLM-R: a tiny random model over the fixtures' SentencePiece vocabulary trains (its loss falls),
// and its checkpoints carry the XLM-R class name, NLI labels and the SentencePiece model.
TEST_F(Finetune, XlmRobertaTrainsAndSavesHfLayout) {
  const fs::path spm = fixtures_dir() / "spm" / "xlmr_unigram";
  XLT_REQUIRE_PATH(spm / "sentencepiece.bpe.model");
  auto tok = text::load_tokenizer(spm);
  auto c = io::ModelConfig::defaults(io::ModelType::kXlmRoberta);
  c.architectures = {"XLMRobertaForSequenceClassification"};
  c.vocab_size = static_cast<int64_t>(tok->vocab_size());
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 64;
  c.max_position_embeddings = 66;  // RoBERTa positions start at pad_token_id + 1
  c.num_labels = 3;
  c.raw = c.to_json();
  auto model = models::create_model(c, 3);
  models::SaveOptions so;
  so.tokenizer_dir = spm;
  models::save_model(*model, tmp_ / "xlmr", so);

  // Eight epochs of the marker task. A random 2-layer model sits on a two-class plateau (dev
  // accuracy 0.63-0.7) for a seed-dependent while: measured at 120 steps, seed 42 was still there
  // packed and seed 1 padded; at 240 steps seeds 42, 1 and 3 reach 1.0 (last-10 loss 0.02-0.08),
  // packed or padded alike (seed 2 stays at 0.7 both ways). lr 5e-4 stays on the ln 3 plateau.
  auto fc = base("xlmr-run");
  fc.model = (tmp_ / "xlmr").string();
  fc.max_steps = 240;
  fc.lr = 2e-3;
  fc.warmup_ratio = 0.1;
  fc.eval_every = 60;
  const auto r = train::finetune(fc);
  EXPECT_EQ(r.steps, 240);
  const auto losses = logged_losses(fc.out_dir / "log.jsonl");
  ASSERT_EQ(losses.size(), 240u);
  double first = 0, last = 0;
  for (size_t i = 0; i < 10; ++i) {
    first += losses[i] / 10;
    last += losses[losses.size() - 1 - i] / 10;
  }
  for (double l : losses) EXPECT_TRUE(std::isfinite(l)) << l;
  std::cerr << "[xlmr] mean loss of the first 10 steps " << first << ", of the last 10 " << last
            << ", best dev accuracy " << r.best_accuracy << "\n";
  EXPECT_GT(first, 1.0);  // ~ln 3 at the start
  EXPECT_LT(last, 0.8);   // it learns
  EXPECT_GE(r.best_accuracy, 0.9);
  for (const char* d : {"best", "last"}) {
    EXPECT_TRUE(fs::exists(fc.out_dir / d / "sentencepiece.bpe.model")) << d;
    const auto cfg = read_json(fc.out_dir / d / "config.json");
    EXPECT_EQ(cfg["architectures"], json({"XLMRobertaForSequenceClassification"}));
    EXPECT_EQ(cfg["id2label"]["2"], "contradiction");
    auto m = models::load_model(fc.out_dir / d);
    EXPECT_EQ(m->type(), io::ModelType::kXlmRoberta);
  }
}

// ops.csv's calls per name (its names here hold no commas).
std::map<std::string, int> profiled_calls(const fs::path& csv) {
  std::map<std::string, int> calls;
  for (const auto& line : lines_of(read_text(csv))) {
    const auto first = line.find(',');
    const auto second = line.find(',', first + 1);
    const auto third = line.find(',', second + 1);
    if (line.compare(0, first, "name") == 0) continue;
    calls[line.substr(0, first)] = std::stoi(line.substr(second + 1, third - second - 1));
  }
  return calls;
}

// --profile: a window of steps through libtorch's profiler, written as three files, without
// changing what is trained; a run too short for the window says so and writes nothing.
TEST_F(Finetune, ProfileRecordsItsWindowAndLeavesTrainingAlone) {
  auto plain = base("plain");
  plain.max_steps = 6;
  plain.dev_specs.clear();
  auto profiled = plain;
  profiled.out_dir = tmp_ / "profiled";
  profiled.profile.dir = tmp_ / "prof";
  profiled.profile.skip = 2;
  profiled.profile.steps = 3;
  train::finetune(plain);
  train::finetune(profiled);
  expect_same_weights(last_weights(plain.out_dir), last_weights(profiled.out_dir));

  const auto prof = read_json(tmp_ / "prof" / "profile.json");
  EXPECT_EQ(prof["steps"], 3);
  EXPECT_EQ(prof["device"], "cpu");
  EXPECT_GT(prof["wall_ms_per_step"].get<double>(), 0);
  auto calls = profiled_calls(tmp_ / "prof" / "ops.csv");
  // One micro-batch per step: each phase once per recorded step.
  for (const char* phase :
       {"xlt::collate", "xlt::forward_backward", "xlt::clip_grad_norm", "xlt::optimizer_step"})
    EXPECT_EQ(calls[phase], 3) << phase;
  EXPECT_GT(calls["aten::addmm"] + calls["aten::mm"] + calls["aten::matmul"], 0);
  EXPECT_NO_THROW(json::parse(read_text(tmp_ / "prof" / "trace.json")));
  // Not a setting of the trained weights: a resume may add or drop it.
  const auto tc = read_json(profiled.out_dir / "train_config.json");
  EXPECT_EQ(tc["config"]["profile"]["steps"], 3);

  if (!fs::exists(cli_path())) GTEST_SKIP() << "xlt binary not built: " << cli_path();
  const std::string args = "finetune " + shell_quote(model_.string()) +
                           " --quiet --threads 1 --max-length 32 --batch-size 16 --train en=" +
                           shell_quote((tmp_ / "train.jsonl").string());
  auto r =
      run_xlt(args + " --max-steps 4 --profile " + shell_quote((tmp_ / "p2").string()) +
              " --profile-skip 1 --profile-steps 2 --out " + shell_quote((tmp_ / "cli").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("profile of steps 2..3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("xlt::forward_backward"), std::string::npos) << r.err;
  EXPECT_EQ(read_json(tmp_ / "p2" / "profile.json")["steps"], 2);

  r = run_xlt(args + " --max-steps 2 --profile " + shell_quote((tmp_ / "p3").string()) + " --out " +
              shell_quote((tmp_ / "cli3").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("ended after 2 steps, before the window (3 skipped + 5 recorded)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "p3" / "profile.json"));

  r = run_xlt(args + " --max-steps 2 --profile-steps 0 --profile " +
              shell_quote((tmp_ / "p4").string()) + " --out " +
              shell_quote((tmp_ / "cli4").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--profile-steps"), std::string::npos) << r.err;
  r = run_xlt(args + " --max-steps 2 --profile " + shell_quote((tmp_ / "train.jsonl").string()) +
              " --out " + shell_quote((tmp_ / "cli5").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--profile"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "cli5" / "log.jsonl"));

  // eval: batches are the steps; the predictions are those of a run without the profiler.
  const std::string eval = "eval " + shell_quote(model_.string()) +
                           " --threads 1 --no-progress --max-length 32 --batch-size 16 --data en=" +
                           shell_quote((tmp_ / "dev.jsonl").string());
  const auto before = run_xlt(eval);
  ASSERT_EQ(before.exit_code, 0) << before.err;
  r = run_xlt(eval + " --profile " + shell_quote((tmp_ / "pe").string()) +
              " --profile-skip 1 --profile-steps 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, before.out);
  EXPECT_NE(r.err.find("profile of batches 2..3"), std::string::npos) << r.err;
  EXPECT_EQ(read_json(tmp_ / "pe" / "profile.json")["steps"], 2);
  calls = profiled_calls(tmp_ / "pe" / "ops.csv");
  EXPECT_EQ(calls["xlt::forward"], 2);
  EXPECT_EQ(calls["xlt::collate"], 2);
}

// CLI: bad inputs exit with 2 and a message naming the problem, before any training output.
TEST_F(Finetune, CliRejectsBadInputsBeforeTraining) {
  if (!fs::exists(cli_path())) GTEST_SKIP() << "xlt binary not built: " << cli_path();
  const std::string common = shell_quote(model_.string()) + " --quiet --threads 1 --max-length 32";
  auto run = [&](const std::string& args, const std::string& out) {
    auto r =
        run_xlt("finetune " + common + " " + args + " --out " + shell_quote((tmp_ / out).string()));
    EXPECT_FALSE(fs::exists(tmp_ / out / "log.jsonl")) << out;
    EXPECT_FALSE(fs::exists(tmp_ / out / "last")) << out;
    return r;
  };
  const std::string train = "--train en=" + shell_quote((tmp_ / "train.jsonl").string());

  auto r = run("--train en=" + shell_quote((tmp_ / "missing.jsonl").string()), "o1");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("missing.jsonl"), std::string::npos) << r.err;

  write_text(tmp_ / "empty.jsonl", "");
  r = run("--train en=" + shell_quote((tmp_ / "empty.jsonl").string()), "o2");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("empty.jsonl"), std::string::npos) << r.err;

  write_text(tmp_ / "label5.jsonl",
             "{\"premise\": \"a cat\", \"hypothesis\": \"a car\", \"label\": 0}\n"
             "{\"premise\": \"a cat\", \"hypothesis\": \"a dog\", \"label\": 5}\n");
  r = run("--train en=" + shell_quote((tmp_ / "label5.jsonl").string()), "o3");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("label5.jsonl:2"), std::string::npos) << r.err;

  // A dev file in a layout the reader cannot parse as the format asked for.
  write_text(tmp_ / "dev.tsv", "just one column\nand another\n");
  r = run(train + " --dev en=" + shell_quote((tmp_ / "dev.tsv").string()), "o4");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("dev.tsv"), std::string::npos) << r.err;

  const fs::path two = make_tiny_bert(tmp_ / "two", 7, 2);
  r = run_xlt("finetune " + shell_quote(two.string()) + " --quiet " + train + " --out " +
              shell_quote((tmp_ / "o5").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "o5" / "log.jsonl"));

  r = run(train + " --resume", "o6");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;

  r = run(train + " --eval-every sometimes", "o7");
  EXPECT_EQ(r.exit_code, 1) << r.err;

  // A token budget that cannot hold one example of --max-length tokens.
  r = run(train + " --max-tokens 16", "o8");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--max-tokens 16 is below --max-length 32"), std::string::npos) << r.err;

  // --langs where every value names its language would be ignored: refused.
  r = run(train + " --langs es", "o9");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("every value here is LANG=PATH"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "o9"));  // an argument check: no folder made

  // A short successful run, then the same --out again without --resume/--overwrite.
  r = run_xlt("finetune " + common + " " + train + " --max-steps 2 --out " +
              shell_quote((tmp_ / "ok").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("steps 2/2"), std::string::npos) << r.out;
  r = run_xlt("finetune " + common + " " + train + " --max-steps 2 --out " +
              shell_quote((tmp_ / "ok").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.err;

  // --overwrite with a bad input fails before the earlier run is removed: it is still whole.
  const std::string before = read_text(tmp_ / "ok" / "results.json");
  write_text(tmp_ / "bad.jsonl", "{\"gold_label\": \"neutral\", \"sentence1\": \"a\"\n");
  r = run_xlt("finetune " + common + " --train en=" + shell_quote((tmp_ / "bad.jsonl").string()) +
              " --max-steps 2 --overwrite --out " + shell_quote((tmp_ / "ok").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bad.jsonl:1"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(tmp_ / "ok" / "results.json"), before);
  for (const char* kept : {"best", "last", "state", "log.jsonl"}) {
    EXPECT_TRUE(fs::exists(tmp_ / "ok" / kept)) << kept;
  }
  // Continuing from the run's own best/ into the same folder with --overwrite would delete the
  // model (and tokenizer) it starts from: refused up front.
  r = run_xlt("finetune " + shell_quote((tmp_ / "ok" / "best").string()) +
              " --quiet --threads 1 --max-length 32 " + train +
              " --max-steps 2 --overwrite --out " + shell_quote((tmp_ / "ok").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--overwrite would delete"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(tmp_ / "ok" / "best" / "model.safetensors"));
}

}  // namespace
}  // namespace xlt::test
