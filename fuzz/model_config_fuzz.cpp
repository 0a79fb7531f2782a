// Fuzzes config.json parsing (ModelConfig::load, the strict JSON reader and every typed field's
// validation), then round-trips an accepted config through to_json/from_json.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "xlt/io/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = xlt::fuzz::scratch_dir() / "config.json";
  xlt::fuzz::write_bytes(file, {reinterpret_cast<const char*>(data), size});
  xlt::fuzz::expect_clean([&] {
    auto c = xlt::io::ModelConfig::load(file);
    (void)c.head_dim();
    // What xlt writes back must be readable by xlt again.
    auto again = xlt::io::ModelConfig::from_json(c.to_json(), "round-trip");
    if (again.hidden_size != c.hidden_size || again.num_labels != c.num_labels) std::abort();
  });
  return 0;
}
