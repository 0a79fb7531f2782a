// Maps xlt's exception types to the CLI exit codes documented in include/xlt/core/error.h.
#include "xlt/core/error.h"

namespace xlt {

int exit_code_for(const std::exception& e) noexcept {
  if (dynamic_cast<const UsageError*>(&e)) return 1;
  if (dynamic_cast<const InputError*>(&e)) return 2;
  return 3;
}

}  // namespace xlt
