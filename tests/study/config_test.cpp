// Tests of study config parsing: defaults, relative-path resolution, and that every kind of
// mistake (unknown key, wrong type, out-of-range value, missing file, inconsistent settings) is a
// ConfigError naming the key with its line, or the file, before anything runs.
#include "xlt/study/config.h"

#include <gtest/gtest.h>

#include "common/test_env.h"
#include "xlt/core/error.h"

namespace xlt::study {
namespace {

namespace fs = std::filesystem;

// Parses `text` as if it were <tmp>/study.toml, with demo-like files next to it.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp_ / "d");
    for (const char* f : {"d/train.jsonl", "d/dev-en.tsv", "d/dev-es.tsv", "d/par.tsv",
                          "d/bert.json", "d/t-en.txt"}) {
      test::write_text(tmp_ / f, "x\n");
    }
  }
  StudyConfig parse(const std::string& text) {
    return parse_study_config(text, tmp_ / "study.toml");
  }
  std::string error_of(const std::string& text) {
    try {
      parse(text);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }
  std::string minimal() const {
    return "[train]\ndata = \"d/train.jsonl\"\n[eval]\nfiles = { en = \"d/dev-en.tsv\", es = "
           "\"d/dev-es.tsv\" }\n[study]\nlanguages = [\"en\", \"es\"]\n";
  }
  test::TempDir tmp_;
};

// train.bf16: off by default; on, it reaches the config's JSON; anything but a boolean is named.
TEST_F(ConfigTest, TrainBf16IsABoolean) {
  EXPECT_FALSE(parse(minimal()).train.bf16);
  EXPECT_FALSE(parse(minimal()).to_json()["train"]["bf16"].get<bool>());
  const std::string on =
      "[train]\nbf16 = true\n" + minimal().substr(std::string("[train]\n").size());
  const StudyConfig c = parse(on);
  EXPECT_TRUE(c.train.bf16);
  EXPECT_TRUE(c.to_json()["train"]["bf16"].get<bool>());
  const std::string e =
      error_of("[train]\nbf16 = 1\n" + minimal().substr(std::string("[train]\n").size()));
  EXPECT_NE(e.find("study.toml:2: train.bf16: expected true or false, found an integer"),
            std::string::npos)
      << e;
}

TEST_F(ConfigTest, DefaultsAreTheOriginalStudy) {
  // Only the files that the default dataset specs would need are overridden.
  const StudyConfig c = parse(minimal());
  EXPECT_EQ(c.encoder.model, "bert-base-multilingual-cased");
  EXPECT_FALSE(c.encoder.model_is_path);
  EXPECT_EQ(c.causal_lm.model, "facebook/xglm-564M");
  EXPECT_EQ(c.train.samples, 5000);
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 2e-5);
  EXPECT_EQ(c.eval.samples, 1000);
  EXPECT_EQ(c.seeds, std::vector<uint64_t>{42});
  EXPECT_EQ(c.stages.size(), 7u);
  EXPECT_EQ(c.attention.layer, 12);
  EXPECT_EQ(c.attention.sentences[0], "The black cat sat down.");
  EXPECT_EQ(c.analysis.sentences.at("fr")[2], "Peux-tu m'aider avec ce probl\u00e8me ?");
  EXPECT_EQ(c.analysis.sentences.at("hi").size(), 3u);
  // Relative paths resolve against the config's folder.
  EXPECT_EQ(fs::path(c.train.data), (tmp_.path() / "d" / "train.jsonl").lexically_normal());
  EXPECT_EQ(fs::path(c.eval.files.at("es")), (tmp_.path() / "d" / "dev-es.tsv").lexically_normal());
  EXPECT_EQ(c.title, "study");
  // to_json carries every section.
  const auto j = c.to_json();
  for (const char* k : {"study", "encoder", "causal_lm", "train", "eval", "analysis", "attention",
                        "perplexity", "distance"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
}

// examples/mbert-xnli.toml reproduces the notebook (shared/reference/original_notebook.txt) step
// for step: its splits, row selection, [CLS] pooling, t-SNE settings and attention layer.
TEST_F(ConfigTest, OriginalStudyConfigFollowsTheNotebook) {
  // The dataset specs need the downloaded files: empty stand-ins in a private data home.
  fs::create_directories(tmp_ / "data" / "xnli" / "XNLI-1.0");
  fs::create_directories(tmp_ / "data" / "multinli" / "multinli_1.0");
  test::write_text(tmp_ / "data" / "xnli" / "XNLI-1.0" / "xnli.dev.tsv", "");
  test::write_text(tmp_ / "data" / "multinli" / "multinli_1.0" / "multinli_1.0_train.jsonl", "");
  const char* old = std::getenv("XLT_DATA_HOME");
  const std::string saved = old ? old : "";
  setenv("XLT_DATA_HOME", (tmp_ / "data").c_str(), 1);
  const fs::path file = test::source_dir() / "examples" / "mbert-xnli.toml";
  const StudyConfig c = load_study_config(file);
  old ? setenv("XLT_DATA_HOME", saved.c_str(), 1) : unsetenv("XLT_DATA_HOME");
  EXPECT_EQ(c.encoder.model, "bert-base-multilingual-cased");
  EXPECT_EQ(c.causal_lm.model, "facebook/xglm-564M");
  EXPECT_EQ(c.languages, (std::vector<std::string>{"en", "es", "fr", "hi"}));
  // multi_nli train .shuffle(seed=42).select(range(5000)), 3 epochs at 2e-5.
  EXPECT_EQ(c.train.data, "multinli:split=train");
  EXPECT_EQ(c.train.samples, 5000);
  ASSERT_TRUE(c.train.sample_seed.has_value());
  EXPECT_EQ(*c.train.sample_seed, 42u);
  EXPECT_EQ(c.train.sampling, "numpy");
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 2e-5);
  // xnli LANG validation .shuffle(seed=42).select(range(1000)).
  EXPECT_EQ(c.eval.data, "xnli:split=validation");
  EXPECT_EQ(c.eval.samples, 1000);
  EXPECT_EQ(c.eval.sample_seed, 42u);
  EXPECT_EQ(c.eval.sampling, "numpy");
  // outputs.last_hidden_state[0, 0] of the 12 sentences; TSNE(perplexity=5, random_state=42,
  // init='pca', learning_rate='auto').
  EXPECT_EQ(c.analysis.pooling, "cls");
  EXPECT_EQ(c.analysis.layer, -1);
  EXPECT_DOUBLE_EQ(c.analysis.tsne_perplexity, 5.0);
  ASSERT_TRUE(c.analysis.tsne_seed.has_value());
  EXPECT_EQ(*c.analysis.tsne_seed, 42u);
  EXPECT_EQ(c.analysis.tsne_iterations, 1000);  // sklearn's max_iter default
  ASSERT_EQ(c.analysis.sentences.size(), 4u);
  EXPECT_EQ(c.analysis.sentences.at("en")[0], "The cat is sleeping on the mat.");
  EXPECT_EQ(c.analysis.sentences.at("es")[1], "Este restaurante tiene comida incre\u00edble.");
  EXPECT_EQ(c.analysis.sentences.at("fr")[2], "Pouvez-vous m'aider avec ce probl\u00e8me ?");
  EXPECT_EQ(c.analysis.sentences.at("hi")[1],
            "\u0907\u0938 \u0930\u0947\u0938\u094d\u091f\u094b\u0930\u0947\u0902\u091f "
            "\u0915\u093e \u0916\u093e\u0928\u093e \u0905\u0926\u094d\u092d\u0941\u0924 "
            "\u0939\u0948\u0964");
  // outputs.attentions[12] of XGLM-564M = its 13th layer, on the notebook's pair.
  EXPECT_EQ(c.attention.layer, 13);
  EXPECT_EQ(c.attention.model, "causal_lm");
  EXPECT_EQ(c.attention.sentences,
            (std::vector<std::string>{"The black cat sat down.", "El gato negro se sent\u00f3."}));
  // The resolved config records the new keys.
  const auto j = c.to_json();
  EXPECT_EQ(j["train"]["sample_seed"], 42);
  EXPECT_EQ(j["eval"]["sampling"], "numpy");
  EXPECT_EQ(j["analysis"]["tsne_seed"], 42);
}

TEST_F(ConfigTest, SamplingAndSeedsAreChecked) {
  const StudyConfig d = parse(minimal());
  EXPECT_FALSE(d.train.sample_seed.has_value());  // default: each run's seed
  EXPECT_EQ(d.train.sampling, "xlt");
  EXPECT_FALSE(d.analysis.tsne_seed.has_value());
  EXPECT_NE(error_of(minimal() + "[analysis]\ntsne_seed = -1\n").find("tsne_seed"),
            std::string::npos);
  std::string text = minimal();
  text.replace(text.find("[eval]\n"), 7, "[eval]\nsampling = \"pandas\"\n");
  const std::string e = error_of(text);
  EXPECT_NE(e.find("sampling: expected \"xlt\" or \"numpy\", found \"pandas\""), std::string::npos)
      << e;
}

TEST_F(ConfigTest, RandomInitNeedsATokenizerAndExistingFiles) {
  const StudyConfig c = parse(minimal() + "[encoder]\ninit = \"d/bert.json\"\ntokenizer = \"d\"\n");
  EXPECT_TRUE(c.encoder.randomly_initialized());
  EXPECT_EQ(c.encoder.model, "random bert.json");
  EXPECT_NE(
      error_of(minimal() + "[encoder]\ninit = \"d/bert.json\"\n").find("needs `tokenizer` too"),
      std::string::npos);
  const std::string e =
      error_of(minimal() + "[encoder]\ninit = \"d/nope.json\"\ntokenizer = \"d\"\n");
  EXPECT_NE(e.find("study.toml:8: encoder.init: file not found: "), std::string::npos) << e;
  EXPECT_NE(e.find("d/nope.json"), std::string::npos) << e;
}

TEST_F(ConfigTest, UnknownKeysNameTheKeyAndLine) {
  std::string e = error_of("[study]\nlanguages = [\"en\"]\ntitel = \"x\"\n");
  EXPECT_NE(e.find("study.toml:3: unknown key 'study.titel' (known keys here: title, "),
            std::string::npos)
      << e;
  e = error_of(minimal() + "[analysis]\npooling = \"mean\"\nlayers = 3\n");
  EXPECT_NE(e.find(":9: unknown key 'analysis.layers'"), std::string::npos) << e;
  e = error_of(minimal() + "[extra]\na = 1\n");
  EXPECT_NE(e.find("unknown table [extra]"), std::string::npos) << e;
  // A misspelt table is named before the sections are read (its defaults would fail first).
  e = error_of("[study]\nlanguages = [\"en\"]\n[trian]\ndata = \"nowhere.tsv\"\n");
  EXPECT_NE(e.find("study.toml:3: unknown table [trian] (known keys here: study, encoder, "),
            std::string::npos)
      << e;
  // A misspelt key inside a known table is named before its default fails a check: `dat`
  // left train.data at the default MultiNLI spec, reported as not downloaded, without a line.
  e = error_of("[study]\nlanguages = [\"en\"]\n[train]\ndat = \"d/train.jsonl\"\n");
  EXPECT_NE(e.find("study.toml:4: unknown key 'train.dat'"), std::string::npos) << e;
  e = error_of("[train]\ndata = \"d/train.jsonl\"\n[eval]\nfile = { en = \"d/dev-en.tsv\" }\n");
  EXPECT_NE(e.find("study.toml:4: unknown table [eval.file]"), std::string::npos) << e;
  e = error_of(minimal() + "[encoder]\nmodl = \"d\"\n");
  EXPECT_NE(e.find("unknown key 'encoder.modl'"), std::string::npos) << e;
  // The CLI's --threads bound.
  e = error_of(minimal() + "threads = 2000\n");
  EXPECT_NE(e.find("study.threads"), std::string::npos) << e;
  EXPECT_NE(e.find("1024"), std::string::npos) << e;
  EXPECT_EQ(parse(minimal() + "threads = 1024\n").threads, 1024);
  e = error_of(minimal() + "[eval.files]\nde = \"d/dev-en.tsv\"\n");
  EXPECT_NE(e, "(no error)");
}

TEST_F(ConfigTest, WrongTypesAndValues) {
  EXPECT_NE(error_of(minimal() + "[perplexity]\nmax_lines = \"ten\"\n")
                .find("study.toml:8: perplexity.max_lines: expected an integer, found a string"),
            std::string::npos);
  std::string e = error_of(minimal() + "[analysis]\npooling = \"max\"\n");
  EXPECT_NE(e.find("analysis.pooling: expected \"mean\" or \"cls\", found \"max\""),
            std::string::npos)
      << e;
  e = error_of("[study]\nlanguages = [\"en\", \"en\"]\n");
  EXPECT_NE(e.find("study.languages: 'en' is listed twice"), std::string::npos) << e;
  e = error_of("[study]\nstages = [\"baseline\", \"zeroshot\"]\n");
  EXPECT_NE(e.find("unknown stage 'zeroshot'"), std::string::npos) << e;
  e = error_of("[study]\nseeds = [1, -2]\n");
  EXPECT_NE(e.find("study.seeds: expected non-negative integers"), std::string::npos) << e;
  e = error_of("[study]\nlanguages = [\"es\"]\n");
  EXPECT_NE(e.find("study.source_language: 'en' must be one of the study languages"),
            std::string::npos)
      << e;
  e = error_of(minimal() + "[attention]\nlayer = 0\n");
  EXPECT_NE(e.find("attention.layer: expected an integer in [1, 1000], found 0"), std::string::npos)
      << e;
  e = error_of(minimal() + "[attention]\nsentences = [\"a\", \"b\"]\nlanguages = [\"en\"]\n");
  EXPECT_NE(e.find("attention.languages: needs one language per sentence"), std::string::npos) << e;
  e = error_of(minimal() + "[causal_lm]\nenabled = false\n");
  EXPECT_NE(e.find("\"perplexity\" but [causal_lm] enabled = false"), std::string::npos) << e;
  e = error_of("a = [1,\n");
  EXPECT_NE(e.find("invalid TOML"), std::string::npos) << e;
}

TEST_F(ConfigTest, MissingDataFilesAreNamed) {
  const std::string e = error_of(
      "[study]\nlanguages = [\"en\", \"es\"]\n[train]\ndata = \"d/train.jsonl\"\n[eval]\nfiles = "
      "{ en = \"d/dev-en.tsv\", es = \"d/missing-es.tsv\" }\n");
  EXPECT_NE(e.find("eval.files.es: file not found: "), std::string::npos) << e;
  EXPECT_NE(e.find("missing-es.tsv"), std::string::npos);
  // A study language without an evaluation file.
  const std::string e2 = error_of(
      "[study]\nlanguages = [\"en\", \"fr\"]\n[train]\ndata = \"d/train.jsonl\"\n[eval]\nfiles = "
      "{ en = \"d/dev-en.tsv\" }\n");
  EXPECT_NE(e2.find("eval.files: no file for study language 'fr'"), std::string::npos) << e2;
  // A disabled stage's data is not required.
  EXPECT_NO_THROW(parse("[study]\nlanguages = [\"en\"]\nstages = [\"analysis\", \"report\"]\n"));
}

// Found by fuzz/study_config_fuzz: a path longer than the OS allows made fs::exists throw
// filesystem_error ("File name too long", an internal error, exit 3) instead of a ConfigError
// naming the key.
TEST_F(ConfigTest, OverlongPathIsNotFoundNotACrash) {
  const std::string longname(5000, 'k');
  const std::string e = error_of("[study]\nlanguages = [\"en\"]\n[train]\ndata = \"d/" + longname +
                                 ".jsonl\"\n[eval]\nfiles = { en = \"d/dev-en.tsv\" }\n");
  EXPECT_NE(e.find("train.data: file not found: "), std::string::npos) << e;
  const std::string e2 = error_of(
      minimal() + "[encoder]\ninit = \"d/bert.json\"\ntokenizer = \"./" + longname + "\"\n");
  EXPECT_NE(e2.find("encoder.tokenizer: file not found"), std::string::npos) << e2;
}

TEST_F(ConfigTest, SeveralEncoders) {
  // [encoders.NAME]: one entry per table in name order; `encoder` is the first.
  const StudyConfig c = parse(minimal() +
                              "[encoders.xlmr]\nmodel = \"xlm-roberta-base\"\n"
                              "[encoders.bert_rand]\ninit = \"d/bert.json\"\ntokenizer = \"d\"\n");
  ASSERT_EQ(c.encoders.size(), 2u);
  EXPECT_TRUE(c.multi_encoder());
  EXPECT_EQ(c.encoders[0].name, "bert_rand");
  EXPECT_TRUE(c.encoders[0].spec.randomly_initialized());
  EXPECT_EQ(c.encoders[1].name, "xlmr");
  EXPECT_EQ(c.encoders[1].spec.model, "xlm-roberta-base");
  EXPECT_EQ(c.encoder.init, c.encoders[0].spec.init);
  const auto j = c.to_json();
  EXPECT_EQ(j["encoders"]["xlmr"]["model"], "xlm-roberta-base");
  // One [encoder]: one unnamed entry, and config.json keeps its one-encoder layout.
  const StudyConfig one = parse(minimal());
  ASSERT_EQ(one.encoders.size(), 1u);
  EXPECT_EQ(one.encoders[0].name, "");
  EXPECT_FALSE(one.multi_encoder());
  EXPECT_FALSE(one.to_json().contains("encoders"));
  // Mistakes name the key.
  EXPECT_NE(error_of(minimal() + "[encoder]\nmodel = \"a/b\"\n[encoders.x]\nmodel = \"a/b\"\n")
                .find("give either [encoder] or [encoders.NAME] tables, not both"),
            std::string::npos);
  EXPECT_NE(error_of(minimal() + "[encoders.\"a b\"]\nmodel = \"a/b\"\n")
                .find("study.toml:7: encoders.a b: encoder names are 1-64 letters"),
            std::string::npos)
      << error_of(minimal() + "[encoders.\"a b\"]\nmodel = \"a/b\"\n");
  EXPECT_NE(error_of(minimal() + "[encoders.x]\nmodel = \"a/b\"\nepochs = 3\n")
                .find("unknown key 'encoders.x.epochs'"),
            std::string::npos);
  EXPECT_NE(error_of(minimal() + "[encoders]\nx = 3\n").find("encoders.x: expected a table"),
            std::string::npos)
      << error_of(minimal() + "[encoders]\nx = 3\n");
  EXPECT_NE(error_of(minimal() + "[encoders.x]\ninit = \"d/missing.json\"\ntokenizer = \"d\"\n")
                .find("encoders.x.init: file not found"),
            std::string::npos);
}

// Files the stages do not need may be missing, but they resolve against the config's folder like
// every other path (the analysis reads them when they exist); an empty stage list is a mistake;
// the key of a mistake found after parsing has its line, in [encoders.NAME] tables and for a
// model given by `init` too.
TEST_F(ConfigTest, PathsStagesAndLinesOfLaterChecks) {
  const StudyConfig c = parse(minimal() + "stages = [\"attention\", \"report\"]\n");
  EXPECT_EQ(c.eval.files.at("en"), (tmp_ / "d" / "dev-en.tsv").lexically_normal().string());
  const StudyConfig missing = parse(
      "[eval]\nfiles = { en = \"d/none-en.tsv\", es = \"d/dev-es.tsv\" }\n[study]\n"
      "languages = [\"en\", \"es\"]\nstages = [\"attention\", \"report\"]\n");
  EXPECT_EQ(missing.eval.files.at("en"), (tmp_ / "d" / "none-en.tsv").lexically_normal().string());

  EXPECT_NE(error_of(minimal() + "stages = []\n").find("study.toml:7: study.stages: is empty"),
            std::string::npos)
      << error_of(minimal() + "stages = []\n");

  const StudyConfig many = parse(minimal() +
                                 "[encoders.a]\nmodel = \"a/b\"\n"
                                 "[encoders.b]\ninit = \"d/bert.json\"\ntokenizer = \"d\"\n");
  EXPECT_EQ(many.where("encoders.b.tokenizer"),
            (tmp_ / "study.toml").string() + ":11: encoders.b.tokenizer");
  EXPECT_EQ(many.where("encoders.a.model"),
            (tmp_ / "study.toml").string() + ":8: encoders.a.model");
  EXPECT_EQ(many.where("encoders.b.model"),
            (tmp_ / "study.toml").string() + ":10: encoders.b.init");
}

}  // namespace
}  // namespace xlt::study
