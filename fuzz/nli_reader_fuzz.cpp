// Fuzzes the NLI dataset readers (XNLI/XTREME TSV, MultiNLI/HF JSONL, HF CSV) and the CSV record
// reader. The first input byte picks the format (and skip_bad_rows); the rest is the file, read
// through read_nli_file and read_nli_by_language as the CLI does.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "xlt/data/csv.h"
#include "xlt/data/nli.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using xlt::data::NliFormat;
  static const NliFormat kFormats[] = {NliFormat::kAuto,      NliFormat::kXnliTsv,
                                       NliFormat::kXtremeTsv, NliFormat::kMnliJsonl,
                                       NliFormat::kHfJsonl,   NliFormat::kHfCsv};
  static const char* kExt[] = {".tsv", ".tsv", ".tsv", ".jsonl", ".jsonl", ".csv"};
  const unsigned pick = data[0] % 6;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  xlt::data::ReadOptions opt;
  opt.format = kFormats[pick];
  opt.skip_bad_rows = (data[0] & 0x80) != 0;
  const auto file = xlt::fuzz::scratch_dir() / (std::string("data") + kExt[pick]);
  xlt::fuzz::write_bytes(file, body);

  xlt::fuzz::expect_clean([&] {
    auto ds = xlt::data::read_nli_file(file, "en", opt);
    (void)ds.report.summary();
    for (int64_t c : ds.label_counts()) {
      if (c < 0) std::abort();
    }
  });
  xlt::fuzz::expect_clean([&] {
    if (xlt::data::has_language_column(file, opt.format)) {
      (void)xlt::data::read_nli_by_language(file, {}, opt);
    }
  });

  // The CSV reader alone: it must always make progress and end.
  xlt::data::CsvReader reader(body, (data[0] & 0x40) ? '\t' : ',');
  std::vector<std::string> fields;
  std::size_t records = 0;
  while (reader.next(fields) != xlt::data::CsvReader::Status::kEnd) {
    if (++records > body.size() + 1) std::abort();  // more records than bytes: no progress
  }
  return 0;
}
