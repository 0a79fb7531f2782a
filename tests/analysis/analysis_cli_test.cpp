// `xlt embed`, `xlt align`, `xlt attention` end to end on small random models with the demo
// tokenizers (examples/demo): the contract files (embeddings.safetensors tensor names and
// shapes, metadata.tsv, tensors.tsv, alignment.csv header and rows, attention.json, valid SVG
// heatmaps), agreement with the library, `xlt tsne` on `xlt embed` output, and bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/test_env.h"
#include "report/xml_check.h"
#include "xlt/analysis/alignment.h"
#include "xlt/analysis/embedding_file.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/io/safetensors.h"
#include "xlt/models/model.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path demo() {
  return source_dir() / "examples" / "demo";
}

// A random model of the demo's configs with the demo tokenizer files (in process: no extra
// `xlt init-model` start-up per test).
fs::path make_model(const TempDir& tmp, const std::string& arch) {
  const fs::path dir = tmp / arch;
  const std::string config = arch == "bert" ? "bert-config.json" : "xglm-config.json";
  auto model = models::create_model(io::ModelConfig::load(demo() / config), 42);
  models::SaveOptions so;
  so.tokenizer_dir = arch == "bert" ? demo() : demo() / "xglm";
  models::save_model(*model, dir, so);
  return dir;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

// The first `n` rows of column `col` of the demo's parallel.tsv, one per line.
std::string demo_column(int col, int n) {
  const auto rows = lines_of(read_text(demo() / "parallel.tsv"));
  std::string out;
  for (int i = 1; i <= n; ++i) {
    std::istringstream f(rows[static_cast<size_t>(i)]);
    std::string field;
    for (int c = 0; c <= col; ++c) std::getline(f, field, '\t');
    out += field + "\n";
  }
  return out;
}

TEST(CliEmbed, WritesSafetensorsMetadataAndProjectorFiles) {
  TempDir tmp;
  const fs::path model = make_model(tmp, "bert");
  write_text(tmp / "en.txt", demo_column(0, 6));
  write_text(tmp / "s.tsv", "sentence\tlang\nEl gato duerme.\tes\nLe chat dort.\tfr\n");
  auto r = run_xlt("embed " + shell_quote(model.string()) + " --input " +
                   shell_quote("en=" + (tmp / "en.txt").string()) + " --input " +
                   shell_quote((tmp / "s.tsv").string()) + " --out " +
                   shell_quote((tmp / "e").string()) +
                   " --layer 0,2,4 --pool mean --batch-size 3 --threads 1 --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto st = io::SafetensorsFile::open(tmp / "e" / "embeddings.safetensors");
  for (const char* name : {"embeddings.layer0", "embeddings.layer2", "embeddings.layer4"}) {
    ASSERT_TRUE(st->contains(name)) << name;
    EXPECT_EQ(st->tensor(name).shape, (std::vector<int64_t>{8, 64})) << name;
    EXPECT_EQ(st->tensor(name).dtype, io::DType::F32);
  }
  EXPECT_FALSE(st->contains("embeddings.layer1"));

  const auto meta = analysis::read_metadata_tsv(tmp / "e" / "metadata.tsv");
  ASSERT_EQ(meta.rows.size(), 8u);
  ASSERT_GE(meta.column("sentence"), 0);
  ASSERT_GE(meta.column("lang"), 0);
  ASSERT_GE(meta.column("index"), 0);
  EXPECT_EQ(meta.rows[6][static_cast<size_t>(meta.column("sentence"))], "El gato duerme.");
  EXPECT_EQ(meta.rows[6][static_cast<size_t>(meta.column("lang"))], "es");
  EXPECT_EQ(meta.rows[0][static_cast<size_t>(meta.column("lang"))], "en");
  EXPECT_EQ(meta.rows[7][static_cast<size_t>(meta.column("index"))], "7");

  // The same vectors as the library computes in process; tensors.tsv holds the last layer.
  auto m = models::load_model(model);
  auto tok = text::load_tokenizer(model);
  std::vector<std::string> sentences;
  for (const auto& row : meta.rows) sentences.push_back(row[0]);
  analysis::EmbeddingOptions eo;
  eo.layers = {4};
  const auto lib = analysis::sentence_embeddings(*m, *tok, sentences, eo);
  const auto file = analysis::load_embedding_matrix(tmp / "e" / "embeddings.safetensors");
  EXPECT_EQ(file.tensor, "embeddings.layer4");
  const auto tsv = analysis::read_vector_tsv(tmp / "e" / "tensors.tsv");
  ASSERT_EQ(tsv.rows, 8);
  ASSERT_EQ(tsv.cols, 64);
  for (int64_t i = 0; i < 8; ++i) {
    for (int64_t j = 0; j < 64; ++j) {
      // Batching differs (3 vs 32 per pass): float32 summation order, 1e-5.
      EXPECT_NEAR(file.matrix(i, j), lib.matrices[0](i, j), 1e-5);
      EXPECT_NEAR(tsv(i, j), file.matrix(i, j), 1e-6 * (1 + std::fabs(file.matrix(i, j))));
    }
  }
  EXPECT_NE(read_text(tmp / "e" / "projector_config.pbtxt").find("embeddings.layer4"),
            std::string::npos);
  const auto cfg = json::parse(read_text(tmp / "e" / "embed.json"));
  EXPECT_EQ(cfg["config"]["layers"], json({0, 2, 4}));

  // xlt tsne reads it as is: the last layer, metadata columns on every point.
  r = run_xlt("tsne " + shell_quote((tmp / "e" / "embeddings.safetensors").string()) + " --out " +
              shell_quote((tmp / "t").string()) + " --perplexity 2 --iterations 300");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto csv = lines_of(read_text(tmp / "t" / "tsne.csv"));
  ASSERT_EQ(csv.size(), 9u);
  EXPECT_EQ(csv[0], "index,x,y,sentence,lang,source,line,tokens");
  EXPECT_NE(csv[7].find(",El gato duerme.,es,s.tsv,2,"), std::string::npos) << csv[7];
  EXPECT_EQ(json::parse(read_text(tmp / "t" / "tsne.json"))["tensor"], "embeddings.layer4");
  // The folder names the same input, as for xlt align (its metadata.tsv included).
  EXPECT_NE(r.err.find("t-SNE: 100%"), std::string::npos) << r.err;  // the progress line
  // (--quiet as every command with a progress bar takes it: none then)
  r = run_xlt("tsne " + shell_quote((tmp / "e").string()) + " --out " +
              shell_quote((tmp / "t2").string()) + " --perplexity 2 --iterations 300 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("t-SNE: 100%"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("t-SNE: 8 points x 64 dims"), std::string::npos) << r.err;  // the summary
  EXPECT_EQ(read_text(tmp / "t2" / "tsne.csv"), read_text(tmp / "t" / "tsne.csv"));
  r = run_xlt("tsne " + shell_quote((tmp / "t").string()) + " --out " +
              shell_quote((tmp / "t3").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("is a folder without embeddings.safetensors"), std::string::npos) << r.err;
}

TEST(CliEmbed, BadInputsExitTwoAndWriteNothing) {
  TempDir tmp;
  const fs::path model = make_model(tmp, "bert");
  write_text(tmp / "bad.tsv", "sentence\tlang\nA\ten\nB\n");
  auto r = run_xlt("embed " + shell_quote(model.string()) + " --input " +
                   shell_quote((tmp / "bad.tsv").string()) + " --out " +
                   shell_quote((tmp / "e").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bad.tsv:3:"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "e" / "embeddings.safetensors"));
  write_text(tmp / "ok.txt", "A\n");
  r = run_xlt("embed " + shell_quote(model.string()) + " --input " +
              shell_quote((tmp / "ok.txt").string()) + " --layer 9 --out " +
              shell_quote((tmp / "e").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("0..4"), std::string::npos) << r.err;
  // A projector layer outside --layer would be stored too and change what tsne/align read.
  r = run_xlt("embed " + shell_quote(model.string()) + " --input " +
              shell_quote((tmp / "ok.txt").string()) + " --layer 0 --projector-layer 4 --out " +
              shell_quote((tmp / "e").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--projector-layer 4 is not among the --layer values"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp / "e" / "embeddings.safetensors"));
  // Invalid UTF-8 is reported with the file and line (the tokenizer knows neither), and a
  // folder given as a file is named as one, not read as an empty file.
  write_text(tmp / "latin1.txt", "fine\nbad \xff byte\n");
  for (const std::string& input : {"en=" + (tmp / "latin1.txt").string(), tmp.path().string()}) {
    r = run_xlt("embed " + shell_quote(model.string()) + " --input " + shell_quote(input) +
                " --out " + shell_quote((tmp / "e").string()));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(input.rfind("en=", 0) == 0
                             ? "latin1.txt:2: invalid UTF-8 at byte 4 of the line (byte 0xFF)"
                             : "is a folder, expected a text file"),
              std::string::npos)
        << r.err;
  }
}

// Every analysis command makes --out ready before any work: a file there is a usage error (it
// was found only after embedding or scoring everything), and a run that then fails leaves no
// folder it made.
TEST(CliOutFolders, CheckedBeforeAnyWorkAndTakenBackOnFailure) {
  TempDir tmp;
  const fs::path bert = make_model(tmp, "bert"), xglm = make_model(tmp, "xglm");
  write_text(tmp / "en.txt", "A cat sat.\nThe dog ran.\n");
  write_text(tmp / "es.txt", "Un gato.\nEl perro.\n");
  write_text(tmp / "afile", "x");
  const std::string en = shell_quote((tmp / "en.txt").string());
  const std::string es = shell_quote((tmp / "es.txt").string());
  const std::vector<std::string> commands = {
      "embed " + shell_quote(bert.string()) + " --input en=" + en,
      "align " + shell_quote(bert.string()) + " --input en=" + en + " --input es=" + es,
      "attention " + shell_quote(bert.string()) + " --sentences 'A cat.' --sentences 'Un gato.'",
      "perplexity " + shell_quote(xglm.string()) + " --text en=" + en,
  };
  for (const auto& cmd : commands) {
    auto r = run_xlt(cmd + " --threads 1 --out " + shell_quote((tmp / "afile").string()));
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find("afile exists and is not a folder"), std::string::npos) << r.err;
    // A failure after --out was made (a layer the model lacks, a duplicate language).
    const std::string failing = cmd.rfind("perplexity", 0) == 0 ? " --text en=" + es : " --layer 9";
    r = run_xlt(cmd + failing + " --threads 1 --out " +
                shell_quote((tmp / "new" / "out").string()));
    EXPECT_NE(r.exit_code, 0) << cmd;
    EXPECT_FALSE(fs::exists(tmp / "new")) << cmd << "\n" << r.err;
  }
  // Two files of one language: perplexity.json (keyed by language) would keep only the second.
  auto r = run_xlt("perplexity " + shell_quote(xglm.string()) + " --text en=" + en + ",en=" + es);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--text: language 'en' given twice"), std::string::npos) << r.err;
  // A folder is not a text file (it read as one without lines).
  r = run_xlt("perplexity " + shell_quote(xglm.string()) +
              " --text en=" + shell_quote(tmp.path().string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(": is a folder, expected a text file"), std::string::npos) << r.err;
}

TEST(CliAlign, WritesTheAlignmentCsvContractForBothInputFormats) {
  TempDir tmp;
  const fs::path model = make_model(tmp, "bert");
  auto r = run_xlt("align " + shell_quote(model.string()) + " --input " +
                   shell_quote((demo() / "parallel.tsv").string()) +
                   " --langs en,es,fr --max-sentences 12 --threads 1 --no-progress --out " +
                   shell_quote((tmp / "a").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string csv = read_text(tmp / "a" / "alignment.csv");
  const auto rows = lines_of(csv);
  ASSERT_EQ(rows.size(), 1u + 5u * 3u);  // header + layers 0..4 x 3 pairs
  EXPECT_EQ(rows[0], analysis::kAlignmentCsvHeader);
  EXPECT_EQ(rows[1].substr(0, 9), "0,en,es,0");
  EXPECT_EQ(rows.back().substr(0, 7), "4,es,fr");
  for (size_t i = 1; i < rows.size(); ++i) {
    std::istringstream f(rows[i]);
    std::string field;
    for (int c = 0; std::getline(f, field, ','); ++c) {
      if (c == 3 || c == 4 || c >= 7) {  // retrieval accuracies are fractions of 12
        const double v = std::stod(field);
        EXPECT_NEAR(v * 12, std::round(v * 12), 1e-4) << rows[i];
      }
    }
  }
  // Line-aligned files with the same sentences give the same table.
  write_text(tmp / "en.txt", demo_column(0, 12));
  write_text(tmp / "es.txt", demo_column(1, 12));
  write_text(tmp / "fr.txt", demo_column(2, 12));
  r = run_xlt("align " + shell_quote(model.string()) + " --input " +
              shell_quote("en=" + (tmp / "en.txt").string()) + " --input " +
              shell_quote("es=" + (tmp / "es.txt").string()) + " --input " +
              shell_quote("fr=" + (tmp / "fr.txt").string()) + " --threads 1 --no-progress --out " +
              shell_quote((tmp / "b").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(tmp / "b" / "alignment.csv"), csv);
  // A subset of layers keeps the hidden_states numbers.
  r = run_xlt("align " + shell_quote(model.string()) + " --input " +
              shell_quote("en=" + (tmp / "en.txt").string()) + " --input " +
              shell_quote("es=" + (tmp / "es.txt").string()) +
              " --layers 3,4 --threads 1 --no-progress --out " + shell_quote((tmp / "c").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto sub = lines_of(read_text(tmp / "c" / "alignment.csv"));
  ASSERT_EQ(sub.size(), 3u);
  EXPECT_EQ(sub[1].substr(0, 8), "3,en,es,");
  EXPECT_EQ(sub[2].substr(0, 8), "4,en,es,");
}

// Numbers of an alignment.csv, row by row (header dropped, language names kept as text).
std::vector<std::vector<std::string>> csv_rows(const std::string& csv) {
  std::vector<std::vector<std::string>> out;
  const auto lines = lines_of(csv);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f;
    std::istringstream in(lines[i]);
    std::string x;
    while (std::getline(in, x, ',')) f.push_back(x);
    out.push_back(f);
  }
  return out;
}

TEST(CliAlign, FromEmbedOutputMatchesTheModelRun) {
  TempDir tmp;
  const fs::path model = make_model(tmp, "bert");
  write_text(tmp / "en.txt", demo_column(0, 10));
  write_text(tmp / "es.txt", demo_column(1, 10));
  const std::string inputs = " --input " + shell_quote("en=" + (tmp / "en.txt").string()) +
                             " --input " + shell_quote("es=" + (tmp / "es.txt").string());
  auto r = run_xlt("align " + shell_quote(model.string()) + inputs +
                   " --threads 1 --no-progress --out " + shell_quote((tmp / "a").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_xlt("embed " + shell_quote(model.string()) + inputs +
              " --layer all --threads 1 --no-progress --out " + shell_quote((tmp / "e").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_xlt("align " + shell_quote((tmp / "e").string()) + " --out " +
              shell_quote((tmp / "b").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto a = csv_rows(read_text(tmp / "a" / "alignment.csv"));
  const auto b = csv_rows(read_text(tmp / "b" / "alignment.csv"));
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), 9u);
    ASSERT_EQ(b[i].size(), 9u);
    for (size_t c = 0; c < 3; ++c) EXPECT_EQ(a[i][c], b[i][c]);
    // Embedded in other batches (all languages at once): float32 summation order only.
    for (size_t c = 3; c < 9; ++c) EXPECT_NEAR(std::stod(a[i][c]), std::stod(b[i][c]), 2e-6);
  }
  // Rows come from metadata.tsv's lang column; a missing language is bad input.
  r = run_xlt("align " + shell_quote((tmp / "e").string()) + " --langs en,hi --out " +
              shell_quote((tmp / "c").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("'hi'"), std::string::npos) << r.err;
  // Flags that shape a model run would change nothing here: refused, not silently ignored.
  r = run_xlt("align " + shell_quote((tmp / "e").string()) + " --pool cls --max-length 5 --out " +
              shell_quote((tmp / "d").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--pool, --max-length: MODEL is already embeddings"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp / "d"));
  // A row without a language cannot be paired: its line is named, nothing is written.
  auto meta = analysis::read_metadata_tsv(tmp / "e" / "metadata.tsv");
  const int lang_col = meta.column("lang");
  ASSERT_GE(lang_col, 0);
  meta.rows[2][static_cast<size_t>(lang_col)] = "";
  std::string text;
  for (size_t c = 0; c < meta.columns.size(); ++c) text += (c ? "\t" : "") + meta.columns[c];
  text += "\n";
  for (const auto& row : meta.rows) {
    for (size_t c = 0; c < row.size(); ++c) text += (c ? "\t" : "") + row[c];
    text += "\n";
  }
  write_text(tmp / "e" / "metadata.tsv", text);
  r = run_xlt("align " + shell_quote((tmp / "e").string()) + " --out " +
              shell_quote((tmp / "f").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("metadata.tsv:4: empty `lang`"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "f"));
}

// Embedded line-aligned files are paired by line: a blank line in one file only (embed skips
// blank lines) used to shift every later pair silently; now the first shifted line is named.
TEST(CliAlign, EmbeddedFilesMustStayLineAligned) {
  TempDir tmp;
  const fs::path model = make_model(tmp, "bert");
  const auto en = lines_of(demo_column(0, 5)), es = lines_of(demo_column(1, 5));
  write_text(tmp / "en.txt", en[0] + "\n\n" + en[2] + "\n" + en[3] + "\n" + en[4] + "\n");
  write_text(tmp / "es.txt", es[0] + "\n" + es[1] + "\n" + es[2] + "\n\n" + es[4] + "\n");
  auto r = run_xlt("embed " + shell_quote(model.string()) + " --input " +
                   shell_quote("en=" + (tmp / "en.txt").string()) + " --input " +
                   shell_quote("es=" + (tmp / "es.txt").string()) +
                   " --threads 1 --no-progress --out " + shell_quote((tmp / "e").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_xlt("align " + shell_quote((tmp / "e").string()) + " --out " +
              shell_quote((tmp / "a").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("sentence 2 of 'es' is line 2 of es.txt, but sentence 2 of 'en' is line 3 "
                       "of en.txt"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp / "a"));
}

// A byte-order mark (Excel, Windows editors) is not part of a TSV's header, and a --max-length
// beyond the model's positions truncates to them (with a note) instead of stopping the run.
TEST(CliEmbed, ByteOrderMarkAndMaxLengthBeyondThePositions) {
  TempDir tmp;
  const fs::path model = make_model(tmp, "bert");
  write_text(tmp / "s.tsv",
             "\xEF\xBB\xBFsentence\tlang\nThe cat sleeps.\ten\nEl gato duerme.\tes\n");
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "cat ";
  write_text(tmp / "long.txt", long_text + "\n");
  auto r = run_xlt(
      "embed " + shell_quote(model.string()) + " --input " + shell_quote((tmp / "s.tsv").string()) +
      " --input " + shell_quote("en=" + (tmp / "long.txt").string()) +
      " --max-length 4096 --threads 1 --no-progress --out " + shell_quote((tmp / "e").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto meta = analysis::read_metadata_tsv(tmp / "e" / "metadata.tsv");
  ASSERT_EQ(meta.rows.size(), 3u);
  const int lang = meta.column("lang");
  ASSERT_GE(lang, 0);
  EXPECT_EQ(meta.rows[0][static_cast<size_t>(lang)], "en");
  EXPECT_EQ(meta.rows[1][static_cast<size_t>(lang)], "es");
  const auto cfg = json::parse(read_text(tmp / "e" / "embed.json"))["config"];
  const int64_t limit = cfg["max_length"].get<int64_t>();
  EXPECT_LT(limit, 4096);
  EXPECT_NE(r.err.find("--max-length 4096 is more than the model's positions cover; sentences "
                       "are truncated to " +
                       std::to_string(limit) + " tokens"),
            std::string::npos)
      << r.err;
  const int tokens = meta.column("tokens");
  ASSERT_GE(tokens, 0);
  EXPECT_EQ(meta.rows[2][static_cast<size_t>(tokens)], std::to_string(limit));
}

TEST(CliAlign, MisalignedFilesNameFileAndLine) {
  TempDir tmp;
  const fs::path model = make_model(tmp, "bert");
  write_text(tmp / "en.txt", "a\nb\nc\n");
  write_text(tmp / "es.txt", "a\nb\n");
  auto r = run_xlt("align " + shell_quote(model.string()) + " --input " +
                   shell_quote("en=" + (tmp / "en.txt").string()) + " --input " +
                   shell_quote("es=" + (tmp / "es.txt").string()) + " --out " +
                   shell_quote((tmp / "a").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("es.txt:3:"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "a" / "alignment.csv"));
}

void check_attention_dir(const fs::path& dir, int layers, bool causal, bool per_head) {
  const auto j = json::parse(read_text(dir / "attention.json"));
  EXPECT_EQ(j["model"]["causal"], causal);
  ASSERT_EQ(j["sentences"].size(), 2u);
  for (const auto& s : j["sentences"]) {
    const size_t n = s["tokens"].size();
    ASSERT_GT(n, 2u);
    ASSERT_EQ(s["layers"].size(), static_cast<size_t>(layers));
    for (const auto& l : s["layers"]) {
      const json maps = per_head ? l["weights"] : json::array({l["weights"]});
      for (const auto& w : maps) {
        ASSERT_EQ(w.size(), n);
        for (size_t i = 0; i < n; ++i) {
          double sum = 0;
          for (size_t k = 0; k < n; ++k) {
            sum += w[i][k].get<double>();
            if (causal && k > i) {
              EXPECT_EQ(w[i][k].get<double>(), 0.0);
            }
          }
          EXPECT_NEAR(sum, 1.0, 1e-5);
        }
      }
      for (const char* m : {"entropy", "entropy_normalized", "special_mass", "distance"}) {
        EXPECT_TRUE(l["measures"].contains(m)) << m;
      }
    }
  }
  ASSERT_EQ(j["comparisons"].size(), 1u);
  EXPECT_EQ(j["comparisons"][0]["layers"].size(), static_cast<size_t>(layers));
  ASSERT_EQ(j["figures"].size(), static_cast<size_t>(layers));
  for (const auto& f : j["figures"]) {
    const auto x = check_xml(read_text(dir / f.get<std::string>()));
    EXPECT_TRUE(x.error.empty()) << f << ": " << x.error;
    EXPECT_EQ(x.root, "svg");
    EXPECT_GT(x.classes.count("cell") ? x.classes.at("cell") : 0, 0);
    EXPECT_GT(x.classes.count("colorbar") ? x.classes.at("colorbar") : 0, 0);
    // Token labels of both sentences are on the axes.
    const auto& t0 = j["sentences"][0]["tokens"][1].get<std::string>();
    EXPECT_NE(std::find(x.texts.begin(), x.texts.end(), t0), x.texts.end()) << t0;
  }
}

TEST(CliAttention, EncoderAndCausalLmMapsJsonAndSvg) {
  TempDir tmp;
  const fs::path bert = make_model(tmp, "bert");
  auto r = run_xlt("attention " + shell_quote(bert.string()) +
                   " --sentences \"The cat is sleeping.\" \"El gato duerme.\" --langs en,es "
                   "--threads 1 --out " +
                   shell_quote((tmp / "b").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_attention_dir(tmp / "b", 4, false, false);
  EXPECT_EQ(json::parse(read_text(tmp / "b" / "attention.json"))["sentences"][0]["tokens"][0],
            "[CLS]");
  // A second run into the same folder with one layer leaves that layer's figure only: the
  // earlier run's other figures would read as this run's.
  write_text(tmp / "b" / "notes.svg", "mine");
  r = run_xlt("attention " + shell_quote(bert.string()) +
              " --sentences \"A dog.\" --layer 1 --threads 1 --out " +
              shell_quote((tmp / "b").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "b" / "attention_layer1.svg"));
  for (int l = 2; l <= 4; ++l) {
    EXPECT_FALSE(fs::exists(tmp / "b" / ("attention_layer" + std::to_string(l) + ".svg"))) << l;
  }
  EXPECT_TRUE(fs::exists(tmp / "b" / "notes.svg"));

  const fs::path xglm = make_model(tmp, "xglm");
  r = run_xlt("attention " + shell_quote(xglm.string()) +
              " --sentences \"The black cat sat down.\" \"El gato negro se sentó.\" --layer 2 "
              "--heads all --threads 1 --out " +
              shell_quote((tmp / "x").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_attention_dir(tmp / "x", 1, true, true);
  EXPECT_TRUE(fs::exists(tmp / "x" / "attention_layer2.svg"));

  // Excluding special tokens drops [CLS]/[SEP] from the tokens and the maps.
  r = run_xlt("attention " + shell_quote(bert.string()) +
              " --sentences \"The cat is sleeping.\" \"El gato duerme.\" --special exclude "
              "--layer last --threads 1 --out " +
              shell_quote((tmp / "e").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = json::parse(read_text(tmp / "e" / "attention.json"));
  for (const auto& t : j["sentences"][0]["tokens"]) {
    EXPECT_NE(t, "[CLS]");
    EXPECT_NE(t, "[SEP]");
  }
  EXPECT_EQ(j["sentences"][0]["layers"][0]["layer"], 4);
  r = run_xlt("attention " + shell_quote(bert.string()) + " --sentences a --layer 0 --out " +
              shell_quote((tmp / "z").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("1..4"), std::string::npos) << r.err;
}

// --langs of align selects languages (a repeat is a mistake, exit 1 naming it); --langs of
// attention labels sentences, so two sentences of one language are fine, an empty label is not.
TEST(CliLangLists, AlignRejectsRepeatsAttentionLabelsMayRepeat) {
  TempDir tmp;
  const fs::path model = make_model(tmp, "bert");
  auto r = run_xlt("align " + shell_quote(model.string()) + " --input " +
                   shell_quote((demo() / "parallel.tsv").string()) +
                   " --langs en,es,en --threads 1 --no-progress --out " +
                   shell_quote((tmp / "a").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--langs: language 'en' given twice"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "a"));

  r = run_xlt("attention " + shell_quote(model.string()) +
              " --sentences \"The cat is sleeping.\" \"The dog is sleeping.\" --langs en,en "
              "--layer last --threads 1 --out " +
              shell_quote((tmp / "b").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = json::parse(read_text(tmp / "b" / "attention.json"));
  EXPECT_EQ(j["sentences"][0]["lang"], "en");
  EXPECT_EQ(j["sentences"][1]["lang"], "en");

  r = run_xlt("attention " + shell_quote(model.string()) +
              " --sentences a b --langs en, --threads 1 --out " +
              shell_quote((tmp / "c").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--langs 'en,': empty item"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace xlt::test
