// Fuzzes tf.Example parsing. Whatever parses must re-serialize deterministically and parse back to an
// equal Example (our encode/decode pair is a bijection on the Examples it accepts).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sluice/formats/example.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sluice::formats::Example;
  auto ex = Example::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!ex.ok()) return 0;
  std::string bytes = ex->Serialize();
  auto again = Example::Parse(bytes);
  if (!again.ok()) __builtin_trap();
  // NaN payloads compare unequal; compare the canonical bytes instead of the values.
  if (again->Serialize() != bytes) __builtin_trap();
  return 0;
}
