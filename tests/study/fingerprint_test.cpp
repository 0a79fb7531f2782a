// Tests of the digests and fingerprints that decide whether a study unit is up to date: FNV-1a 64
// against its published test vectors, full vs sampled file digests, tokenizer digests that ignore
// unrelated files, and the "inputs changed" key lists.
#include <gtest/gtest.h>

#include <fstream>

#include "common/test_env.h"
#include "study/internal.h"

namespace xlt::study::detail {
namespace {

TEST(Fingerprint, Fnv1a64TestVectors) {
  // From the FNV reference test suite (Fowler/Noll/Vo, fnv_test.c, FNV-1a 64-bit).
  EXPECT_EQ(fnv1a64_hex(""), "cbf29ce484222325");
  EXPECT_EQ(fnv1a64_hex("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(fnv1a64_hex("foobar"), "85944171f73967e8");
}

TEST(Fingerprint, FileDigestsFollowContent) {
  test::TempDir tmp;
  test::write_text(tmp / "a.txt", "foobar");
  const json d = file_digest(tmp / "a.txt");
  EXPECT_EQ(d["method"], "full");
  EXPECT_EQ(d["bytes"], 6);
  EXPECT_EQ(d["fnv1a64"], "85944171f73967e8");
  test::write_text(tmp / "a.txt", "foobaz");
  EXPECT_NE(file_digest(tmp / "a.txt")["fnv1a64"], "85944171f73967e8");
  // A large file is sampled: a change inside a sample (the first bytes) is seen.
  {
    std::ofstream big(tmp / "big.bin", std::ios::binary);
    std::string block(1 << 20, 'x');
    for (uintmax_t i = 0; i <= kFullDigestBytes >> 20; ++i) big << block;
  }
  const json b1 = file_digest(tmp / "big.bin");
  EXPECT_EQ(b1["method"], "sampled");
  {
    std::fstream f(tmp / "big.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f << 'y';
  }
  EXPECT_NE(file_digest(tmp / "big.bin")["fnv1a64"], b1["fnv1a64"]);
}

TEST(Fingerprint, TreeAndTokenizerDigests) {
  test::TempDir tmp;
  std::filesystem::create_directories(tmp / "m" / "sub");
  test::write_text(tmp / "m" / "vocab.txt", "[PAD]\n");
  test::write_text(tmp / "m" / "dev-en.tsv", "data\n");
  test::write_text(tmp / "m" / "sub" / "x.bin", "1");
  const json tree = tree_digest(tmp / "m");
  EXPECT_EQ(tree["files"], 3);
  const json tok = tokenizer_digest(tmp / "m");
  EXPECT_EQ(tok.size(), 1u);  // only vocab.txt counts
  test::write_text(tmp / "m" / "dev-en.tsv", "other data\n");
  EXPECT_EQ(tokenizer_digest(tmp / "m"), tok);
  EXPECT_NE(tree_digest(tmp / "m"), tree);
}

TEST(Fingerprint, ChangedKeysAreDottedPaths) {
  const json a = {{"train", {{"epochs", 3}, {"lr", 2e-5}}}, {"seed", 1}, {"x", {1, 2}}};
  json b = a;
  b["train"]["epochs"] = 4;
  b["seed"] = 2;
  EXPECT_EQ(changed_keys(a, b), (std::vector<std::string>{"seed", "train.epochs"}));
  EXPECT_TRUE(changed_keys(a, a).empty());
  EXPECT_EQ(fingerprint_of(a), fingerprint_of(json::parse(a.dump())));
  EXPECT_NE(fingerprint_of(a), fingerprint_of(b));
}

}  // namespace
}  // namespace xlt::study::detail
