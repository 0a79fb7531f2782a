// Every way a safetensors file can be malformed gives a one-line CheckpointError naming the file,
// the tensor (where there is one) and what is wrong; and no damaged file crashes the reader or
// makes it read outside the mapping (truncation at every length, random header corruption).
#include <random>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/io/safetensors.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;
using test::TempDir;

std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file with the given header JSON and `data_bytes` bytes of data.
std::string file_with(const std::string& header, std::size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\x01');
}

struct CorruptCase {
  const char* label;
  std::string bytes;
  std::vector<std::string> needles;  // all must appear in the message
};

std::vector<CorruptCase> corrupt_cases() {
  const std::string ok_a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  return {
      {"empty file", "", {"0 bytes", "too short"}},
      {"shorter than the length field", std::string("\x10\x00\x00", 3), {"3 bytes", "too short"}},
      {"header length beyond the file", le64(1000) + "{}", {"header length 1000", "exceeds"}},
      {"header length near 2^64", le64(~0ull) + "{}", {"exceeds the file size"}},
      {"not JSON", file_with("{\"a\":", 0), {"malformed header JSON"}},
      {"header is not an object", file_with("[1,2]", 0), {"must start with '{'"}},
      {"NUL padding after the JSON",
       file_with("{" + ok_a + "}" + std::string(4, '\0'), 8),
       {"NUL byte in the header at byte", "padded with spaces"}},
      {"invalid UTF-8 in a name", file_with("{\"\xff\xfe\":{}}", 0), {"malformed header JSON"}},
      {"unknown dtype",
       file_with(R"({"w":{"dtype":"F8_E5M2","shape":[2],"data_offsets":[0,2]}})", 2),
       {"tensor 'w'", "unknown dtype 'F8_E5M2'"}},
      {"dtype not a string",
       file_with(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "'dtype' must be a string"}},
      {"missing shape",
       file_with(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "missing 'shape'"}},
      {"missing data_offsets",
       file_with(R"({"w":{"dtype":"F32","shape":[2]}})", 8),
       {"tensor 'w'", "missing 'data_offsets'"}},
      {"negative dimension",
       file_with(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "non-negative integers"}},
      {"fractional dimension",
       file_with(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "non-negative integers"}},
      {"three offsets",
       file_with(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", 8),
       {"tensor 'w'", "two non-negative integers"}},
      {"entry not an object", file_with(R"({"w":[1]})", 0), {"tensor 'w'", "must be an object"}},
      {"end before begin",
       file_with(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}})", 8),
       {"tensor 'w'", "[8, 4]", "end before begin"}},
      {"shape x dtype != span",
       file_with(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "needs 12 bytes", "span 8"}},
      {"shape overflows",
       file_with(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                 8),
       {"tensor 'w'", "overflows"}},
      {"offsets out of range",
       file_with("{" + ok_a + R"(,"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 12),
       {"tensor 'b'", "[8, 24]", "past the end of the data section (12 bytes)"}},
      {"truncated data",
       file_with("{" + ok_a + R"(,"b":{"dtype":"F64","shape":[2],"data_offsets":[8,24]}})", 20),
       {"tensor 'b'", "truncated"}},
      {"overlapping offsets",
       file_with("{" + ok_a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
       {"tensor 'b'", "overlap tensor 'a'"}},
      {"gap between tensors",
       file_with("{" + ok_a + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})", 16),
       {"tensor 'b'", "gap of 4", "after tensor 'a'"}},
      {"gap before the first tensor",
       file_with(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       {"tensor 'b'", "gap of 4", "after the header"}},
      {"trailing bytes",
       file_with("{" + ok_a + "}", 11),
       {"data section is 11 bytes", "cover 8", "after tensor 'a'"}},
      {"duplicate tensor name",
       file_with("{" + ok_a + R"(,"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16),
       {"duplicate tensor name 'a'"}},
      {"duplicate key inside an entry",
       file_with(R"({"w":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8),
       {"duplicate key 'dtype'", "'w'"}},
      {"metadata not strings",
       file_with(R"({"__metadata__":{"format":1}})", 0),
       {"'__metadata__' key 'format'", "must be a string"}},
      {"metadata not an object",
       file_with(R"({"__metadata__":"pt"})", 0),
       {"'__metadata__' must be an object"}},
  };
}

TEST(SafetensorsCorrupt, EveryCaseGivesOneLineErrorNamingFileAndIssue) {
  TempDir tmp;
  int i = 0;
  for (const CorruptCase& c : corrupt_cases()) {
    SCOPED_TRACE(c.label);
    fs::path p = tmp / ("case" + std::to_string(i++) + ".safetensors");
    test::write_text(p, c.bytes);
    try {
      SafetensorsFile::open(p);
      ADD_FAILURE() << "opened a corrupt file";
    } catch (const CheckpointError& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.rfind(p.string() + ": ", 0), 0u) << msg;
      for (const auto& n : c.needles) EXPECT_NE(msg.find(n), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

TEST(SafetensorsCorrupt, OversizedHeaderIsRefusedWithoutParsing) {
  // A sparse 120 MB file whose length field claims 110 MB of header.
  TempDir tmp;
  fs::path p = tmp / "big.safetensors";
  test::write_text(p, le64(110'000'000) + "{");
  fs::resize_file(p, 120'000'000);
  try {
    SafetensorsFile::open(p);
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("100 MB limit"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsCorrupt, MissingFileIsIoError) {
  TempDir tmp;
  EXPECT_THROW(SafetensorsFile::open(tmp / "none.safetensors"), IoError);
  EXPECT_THROW(SafetensorsFile::open(tmp.path()), IoError);  // a folder
}

std::string valid_file() {
  return file_with(
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("b":{"dtype":"I64","shape":[2],"data_offsets":[24,40]},"c":{"dtype":"BOOL","shape":[],"data_offsets":[40,41]}})",
      41);
}

TEST(SafetensorsCorrupt, TruncationAtEveryLengthIsAnError) {
  TempDir tmp;
  const std::string good = valid_file();
  test::write_text(tmp / "ok.safetensors", good);
  EXPECT_EQ(SafetensorsFile::open(tmp / "ok.safetensors")->names().size(), 3u);
  for (std::size_t n = 0; n < good.size(); ++n) {
    fs::path p = tmp / "t.safetensors";
    test::write_text(p, good.substr(0, n));
    EXPECT_THROW(SafetensorsFile::open(p), CheckpointError) << "truncated to " << n;
  }
}

TEST(SafetensorsCorrupt, RandomHeaderDamageNeverCrashes) {
  // Every damaged file either opens with all views inside the file, or throws CheckpointError.
  TempDir tmp;
  const std::string good = valid_file();
  std::mt19937 rng(7);
  int opened = 0, rejected = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bad = good;
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      std::size_t pos = rng() % (good.size() - 41);  // header and length field only
      bad[pos] = static_cast<char>(iter % 2 ? rng() % 256 : "0123456789[]{},\":-"[rng() % 18]);
    }
    fs::path p = tmp / "r.safetensors";
    test::write_text(p, bad);
    try {
      auto f = SafetensorsFile::open(p);
      for (const auto& name : f->names()) {
        const TensorView& v = f->tensor(name);
        ASSERT_LE(v.nbytes, f->file_size());
        ++opened;
      }
    } catch (const CheckpointError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace xlt::io
