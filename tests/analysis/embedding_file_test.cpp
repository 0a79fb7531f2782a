// Tests of the point-set readers behind `xlt tsne`: tensor choice in safetensors files, dtype
// conversion (F16/BF16/F64), the TSV-of-vectors and metadata readers and their error messages,
// plus end-to-end runs of the `xlt tsne` command (outputs, clamping warning, exit codes).
#include "xlt/analysis/embedding_file.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <limits>
#include <random>

#include "common/test_env.h"
#include "report/xml_check.h"
#include "xlt/core/error.h"
#include "xlt/io/safetensors.h"

namespace xlt::analysis {
namespace {
namespace fs = std::filesystem;
using test::read_text;
using test::TempDir;
using test::write_text;

io::TensorView view(const std::string& name, io::DType dtype, std::vector<int64_t> shape,
                    const void* data, size_t nbytes) {
  io::TensorView t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = static_cast<const std::byte*>(data);
  t.nbytes = nbytes;
  return t;
}

template <typename F>
void expect_error(F&& f, const std::string& fragment) {
  try {
    f();
    FAIL() << "expected an error containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(EmbeddingFile, PicksTheOnlyOrTheLastLayerTensor) {
  EXPECT_EQ(default_embedding_tensor({"x"}, "f"), "x");
  EXPECT_EQ(default_embedding_tensor(
                {"embeddings.layer2", "embeddings.layer10", "embeddings.layer9"}, "f"),
            "embeddings.layer10");
  expect_error([] { default_embedding_tensor({"a", "b"}, "f.safetensors"); }, "--tensor");
  expect_error([] { default_embedding_tensor({}, "f.safetensors"); }, "no 2-D tensor");
}

TEST(EmbeddingFile, ReadsSafetensorsInEveryFloatDtype) {
  TempDir tmp;
  const std::vector<float> f32 = {1, 2, 3, 4, 5, 6};
  const std::vector<double> f64 = {0.5, -1.5, 2.25, 3, 4, 5};
  // 1.0, -2.0, 0.5, 65504 (largest half), 2^-24 (smallest subnormal), 0 in IEEE half.
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x0000};
  const std::vector<uint16_t> bf16 = {0x3f80, 0xc040, 0x4120, 0, 0, 0};  // 1, -3, 10
  const std::vector<int32_t> ints = {1, 2};
  const std::vector<float> layers = {0, 0, 0, 0, 0, 0};
  io::write_safetensors(tmp / "e.safetensors",
                        {view("a32", io::DType::F32, {3, 2}, f32.data(), 24),
                         view("a64", io::DType::F64, {2, 3}, f64.data(), 48),
                         view("a16", io::DType::F16, {3, 2}, f16.data(), 12),
                         view("b16", io::DType::BF16, {3, 2}, bf16.data(), 12),
                         view("ints", io::DType::I32, {1, 2}, ints.data(), 8),
                         view("vec", io::DType::F32, {6}, layers.data(), 24)});
  const fs::path p = tmp / "e.safetensors";
  LoadedMatrix m = load_embedding_matrix(p, "a32");
  EXPECT_EQ(m.matrix.rows, 3);
  EXPECT_EQ(m.matrix.cols, 2);
  EXPECT_EQ(m.matrix.data, f32);
  m = load_embedding_matrix(p, "a64");
  EXPECT_EQ(m.matrix.rows, 2);
  EXPECT_FLOAT_EQ(m.matrix(0, 2), 2.25f);
  m = load_embedding_matrix(p, "a16");
  EXPECT_EQ(m.matrix.data,
            (std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f, std::ldexp(1.0f, -24), 0.0f}));
  m = load_embedding_matrix(p, "b16");
  EXPECT_FLOAT_EQ(m.matrix(0, 0), 1.0f);
  EXPECT_FLOAT_EQ(m.matrix(0, 1), -3.0f);
  EXPECT_FLOAT_EQ(m.matrix(1, 0), 10.0f);
  expect_error([&] { load_embedding_matrix(p, "ints"); }, "dtype I32");
  expect_error([&] { load_embedding_matrix(p, "vec"); }, "must be 2-D");
  expect_error([&] { load_embedding_matrix(p, "nope"); }, "no tensor 'nope'");
  expect_error([&] { load_embedding_matrix(p); }, "choose one with --tensor");
  expect_error([&] { load_embedding_matrix(tmp / "missing.safetensors"); }, "no such file");
}

TEST(EmbeddingFile, ReadsVectorTsvWithLineNumbersInErrors) {
  TempDir tmp;
  write_text(tmp / "v.tsv", "1\t2.5\t-3e-1\n\n4\t5\t6\r\n");
  const Matrix m = read_vector_tsv(tmp / "v.tsv");
  EXPECT_EQ(m.rows, 2);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.data, (std::vector<float>{1, 2.5f, -0.3f, 4, 5, 6}));
  EXPECT_EQ(load_embedding_matrix(tmp / "v.tsv").matrix.data, m.data);
  write_text(tmp / "bad.tsv", "1\t2\n3\t4\n5\tx\n");
  expect_error([&] { read_vector_tsv(tmp / "bad.tsv"); },
               "bad.tsv:3: column 2: expected a number, got 'x'");
  write_text(tmp / "ragged.tsv", "1\t2\n3\n");
  expect_error([&] { read_vector_tsv(tmp / "ragged.tsv"); }, "ragged.tsv:2: expected 2");
  write_text(tmp / "empty.tsv", "\n");
  expect_error([&] { read_vector_tsv(tmp / "empty.tsv"); }, "no vectors");
  // from_chars reads nan/inf as numbers; one would poison every distance it enters.
  write_text(tmp / "nan.tsv", "1\t2\nnan\t4\n");
  expect_error([&] { read_vector_tsv(tmp / "nan.tsv"); },
               "nan.tsv:2: column 1: expected a finite number, got 'nan'");
  write_text(tmp / "inf.tsv", "1\t-inf\n");
  expect_error([&] { read_vector_tsv(tmp / "inf.tsv"); }, "inf.tsv:1: column 2: expected a finite");
}

TEST(EmbeddingFile, RefusesNonFiniteSafetensorsValuesByPosition) {
  TempDir tmp;
  const std::vector<float> ok = {1, 2, 3, 4};
  const std::vector<float> bad = {1, 2, 3, std::numeric_limits<float>::quiet_NaN(), 5, 6};
  const std::vector<uint16_t> inf16 = {0x3c00, 0x7c00};  // 1, +inf in IEEE half
  io::write_safetensors(tmp / "e.safetensors",
                        {view("ok", io::DType::F32, {2, 2}, ok.data(), 16),
                         view("bad", io::DType::F32, {3, 2}, bad.data(), 24),
                         view("inf", io::DType::F16, {1, 2}, inf16.data(), 4)});
  EXPECT_EQ(load_embedding_matrix(tmp / "e.safetensors", "ok").matrix.data, ok);
  expect_error([&] { load_embedding_matrix(tmp / "e.safetensors", "bad"); }, "bad[1, 1] is NaN");
  expect_error([&] { load_embedding_matrix(tmp / "e.safetensors", "inf"); },
               "inf[0, 1] is infinite");
}

TEST(EmbeddingFile, ReadsMetadataTsv) {
  TempDir tmp;
  write_text(tmp / "m.tsv", "sentence\tlang\nHello, \"world\"\ten\r\nHallo\tde\n");
  const MetadataTable t = read_metadata_tsv(tmp / "m.tsv");
  EXPECT_EQ(t.columns, (std::vector<std::string>{"sentence", "lang"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][0], "Hello, \"world\"");
  EXPECT_EQ(t.column("lang"), 1);
  EXPECT_EQ(t.column("label"), -1);
  write_text(tmp / "bad.tsv", "sentence\tlang\na\tb\nc\n");
  expect_error([&] { read_metadata_tsv(tmp / "bad.tsv"); }, "bad.tsv:3: expected 2");
}

// ----- `xlt tsne` end to end ---------------------------------------------------------------

// 12 points in 3 tight clusters (one per language) of 6-D vectors.
void write_small_input(const fs::path& dir, bool with_metadata) {
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> data;
  for (int i = 0; i < 12; ++i)
    for (int j = 0; j < 6; ++j) data.push_back((j == i % 3 ? 5.0f : 0.0f) + noise(rng));
  std::vector<float> other(12 * 6, 1.0f);
  io::write_safetensors(dir / "emb.safetensors",
                        {view("embeddings.layer3", io::DType::F32, {12, 6}, other.data(), 288),
                         view("embeddings.layer12", io::DType::F32, {12, 6}, data.data(), 288)});
  if (with_metadata) {
    const char* langs[] = {"en", "de", "sw"};
    std::string meta = "sentence\tlang\n";
    for (int i = 0; i < 12; ++i)
      meta += "s" + std::to_string(i) + ", \"q\" <&>\t" + langs[i % 3] + "\n";
    write_text(dir / "metadata.tsv", meta);
  }
}

TEST(TsneCli, WritesCsvJsonAndSvgWithMetadata) {
  TempDir tmp;
  write_small_input(tmp.path(), true);
  const fs::path out = tmp / "out";
  const auto r =
      test::run_xlt("tsne " + test::shell_quote((tmp / "emb.safetensors").string()) + " --out " +
                    test::shell_quote(out.string()) + " --perplexity 5 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // scikit-learn's rule: 5 < 12 points is used as given (issue #19).
  EXPECT_EQ(r.err.find("warning: perplexity"), std::string::npos) << r.err;

  const std::string csv = read_text(out / "tsne.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "index,x,y,sentence,lang");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 13);
  EXPECT_NE(csv.find(",\"s1, \"\"q\"\" <&>\",de\n"), std::string::npos) << csv;

  const auto j = nlohmann::json::parse(read_text(out / "tsne.json"));
  EXPECT_EQ(j["tensor"], "embeddings.layer12");  // the last layer by default
  EXPECT_EQ(j["points"], 12);
  EXPECT_EQ(j["dim"], 6);
  EXPECT_EQ(j["method"], "exact");
  EXPECT_EQ(j["perplexity_used"], 5.0);
  EXPECT_EQ(j["parameters"]["perplexity"], 5.0);
  EXPECT_EQ(j["iterations_run"], 1000);
  EXPECT_GT(j["kl_divergence"].get<double>(), 0.0);
  EXPECT_EQ(j["warnings"].size(), 0u);

  const auto svg = test::check_xml(read_text(out / "tsne.svg"));
  ASSERT_EQ(svg.error, "");
  EXPECT_EQ(svg.classes.at("point"), 12);
  EXPECT_EQ(svg.classes.at("legend-swatch"), 3);
  EXPECT_NE(std::find(svg.texts.begin(), svg.texts.end(), "#4 [de] s4, \"q\" <&>"),
            svg.texts.end());
  // Same seed, another thread count: identical coordinates.
  const auto again =
      test::run_xlt("tsne " + test::shell_quote((tmp / "emb.safetensors").string()) + " --out " +
                    test::shell_quote((tmp / "out1").string()) + " --perplexity 5 --threads 1");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(read_text(tmp / "out1" / "tsne.csv"), csv);
}

TEST(TsneCli, TsvInputWithoutMetadataAndErrors) {
  TempDir tmp;
  std::string tsv;
  for (int i = 0; i < 8; ++i)
    tsv += std::to_string(i % 2 * 10 + i * 0.1) + "\t" + std::to_string(i) + "\n";
  write_text(tmp / "v.tsv", tsv);
  auto r = test::run_xlt("tsne " + test::shell_quote((tmp / "v.tsv").string()) + " --out " +
                         test::shell_quote((tmp / "o").string()) +
                         " --perplexity 2 --iterations 300 --method barnes-hut");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(tmp / "o" / "tsne.csv").substr(0, 10), "index,x,y\n");
  EXPECT_EQ(nlohmann::json::parse(read_text(tmp / "o" / "tsne.json"))["method"], "barnes-hut");

  write_text(tmp / "one.tsv", "1\t2\n");
  r = test::run_xlt("tsne " + test::shell_quote((tmp / "one.tsv").string()) + " --out " +
                    test::shell_quote((tmp / "x").string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("at least 2 points"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "x"));  // the failed run took back the folder it made
  // A file as --out is refused before the map is computed (was exit 3 after it).
  r = test::run_xlt("tsne " + test::shell_quote((tmp / "v.tsv").string()) + " --out " +
                    test::shell_quote((tmp / "one.tsv").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("one.tsv exists and is not a folder"), std::string::npos) << r.err;
  // A --color-by column the metadata lacks would leave the map silently uncoloured.
  write_text(
      tmp / "m.tsv", "lang\ttopic\n" + [] {
        std::string rows;
        for (int i = 0; i < 8; ++i) rows += (i % 2 ? "en\tx\n" : "es\ty\n");
        return rows;
      }());
  r = test::run_xlt("tsne " + test::shell_quote((tmp / "v.tsv").string()) + " --metadata " +
                    test::shell_quote((tmp / "m.tsv").string()) +
                    " --color-by genre --perplexity 2 --iterations 300 --out " +
                    test::shell_quote((tmp / "c").string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--color-by genre: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("m.tsv has no such column (columns: lang, topic)"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp / "c"));
  r = test::run_xlt("tsne " + test::shell_quote((tmp / "v.tsv").string()) + " --metadata " +
                    test::shell_quote((tmp / "m.tsv").string()) +
                    " --color-by topic --perplexity 2 --iterations 300 --out " +
                    test::shell_quote((tmp / "c").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(read_text(tmp / "c" / "tsne.json"))["color_by"], "topic");
  r = test::run_xlt("tsne " + test::shell_quote((tmp / "v.tsv").string()) +
                    " --out o --method fast");
  EXPECT_EQ(r.exit_code, 1);
  r = test::run_xlt("tsne " + test::shell_quote((tmp / "missing.tsv").string()) + " --out o");
  EXPECT_EQ(r.exit_code, 2);
  write_text(tmp / "metadata.tsv", "lang\nen\n");  // 1 row for 8 points
  r = test::run_xlt("tsne " + test::shell_quote((tmp / "v.tsv").string()) + " --out " +
                    test::shell_quote((tmp / "y").string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("1 metadata rows for 8 points"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace xlt::analysis
