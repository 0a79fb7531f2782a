// Tests of the digests and fingerprints that decide whether a study unit is up to date: SHA-256
// against its published test vectors, whole-file digests that see a same-size edit anywhere in a
// large file, Hugging Face blob names reused as digests, tokenizer digests that ignore unrelated
// files, legacy (FNV-1a) fingerprints recognised, and the "inputs changed" key lists.
#include <gtest/gtest.h>

#include <fstream>

#include "common/test_env.h"
#include "study/internal.h"

namespace xlt::study::detail {
namespace {

TEST(Fingerprint, Sha256TestVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Fingerprint, FileDigestsFollowContent) {
  test::TempDir tmp;
  test::write_text(tmp / "a.txt", "abc");
  const json d = file_digest(tmp / "a.txt");
  EXPECT_EQ(d["method"], "full");
  EXPECT_EQ(d["bytes"], 3);
  EXPECT_EQ(d["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  test::write_text(tmp / "a.txt", "abd");
  EXPECT_NE(file_digest(tmp / "a.txt"), d);
}

TEST(Fingerprint, SameSizeEditInsideALargeFileIsSeen) {
  // Weights-sized files used to be sampled (16 x 64 KiB); one byte changed between samples, with
  // size and modification time kept, went unnoticed. The whole file is hashed now.
  test::TempDir tmp;
  const fs::path big = tmp / "big.bin";
  const uintmax_t mib = 65;  // above the old 64 MiB sampling threshold
  {
    std::ofstream out(big, std::ios::binary);
    const std::string block(1 << 20, 'x');
    for (uintmax_t i = 0; i < mib; ++i) out << block;
  }
  const auto mtime = fs::last_write_time(big);
  const json before = file_digest(big);
  EXPECT_EQ(before["bytes"], mib << 20);
  {
    // The old samples started every (size - 64 KiB) / 15 bytes: 2 MiB + 100 is in none of them.
    std::fstream f(big, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp((2u << 20) + 100);
    f << 'y';
  }
  fs::last_write_time(big, mtime);
  EXPECT_NE(file_digest(big), before);
}

TEST(Fingerprint, HuggingFaceBlobNamesAreReused) {
  // snapshots/<rev>/model.safetensors -> ../../blobs/<sha256>: the name is the digest (the
  // download checked it), so a weights file is not read again. The content here deliberately
  // does not hash to the name, which shows that the name is what is used.
  test::TempDir tmp;
  const std::string sha(64, 'a');
  fs::create_directories(tmp / "blobs");
  fs::create_directories(tmp / "snapshots" / "rev");
  test::write_text(tmp / "blobs" / sha, "weights");
  test::write_text(tmp / "blobs" / "0123456789abcdef0123456789abcdef01234567", "{}");  // git blob
  fs::create_symlink(fs::path("..") / ".." / "blobs" / sha, tmp / "snapshots" / "rev" / "w.bin");
  fs::create_symlink(fs::path("..") / ".." / "blobs" / "0123456789abcdef0123456789abcdef01234567",
                     tmp / "snapshots" / "rev" / "config.json");
  const json w = file_digest(tmp / "snapshots" / "rev" / "w.bin");
  EXPECT_EQ(w["method"], "hf-blob-name");
  EXPECT_EQ(w["sha256"], sha);
  EXPECT_EQ(w["bytes"], 7);
  // A git-tracked file (40-hex blob name) and a plain file are hashed.
  const json c = file_digest(tmp / "snapshots" / "rev" / "config.json");
  EXPECT_EQ(c["method"], "full");
  EXPECT_EQ(c["sha256"], sha256_hex("{}"));
  EXPECT_EQ(file_digest(tmp / "blobs" / sha)["sha256"], sha256_hex("weights"));
}

TEST(Fingerprint, LegacyFingerprintsAreRecognised) {
  EXPECT_TRUE(is_legacy_fingerprint("85944171f73967e8"));
  EXPECT_FALSE(is_legacy_fingerprint(fingerprint_of(json::object())));
  EXPECT_EQ(fingerprint_of(json::object()).size(), 64u);
  EXPECT_FALSE(is_legacy_fingerprint(json()));
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
  // A tokenizer file: its digest alone, until a settings file the loader reads sits beside it.
  EXPECT_EQ(tokenizer_digest(tmp / "m" / "vocab.txt"), file_digest(tmp / "m" / "vocab.txt"));
  test::write_text(tmp / "m" / "tokenizer_config.json", "{\"do_lower_case\": false}\n");
  const json with_config = tokenizer_digest(tmp / "m" / "vocab.txt");
  EXPECT_EQ(with_config.size(), 2u);
  test::write_text(tmp / "m" / "tokenizer_config.json", "{\"do_lower_case\": true}\n");
  EXPECT_NE(tokenizer_digest(tmp / "m" / "vocab.txt"), with_config);
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
