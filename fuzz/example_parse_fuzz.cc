// Fuzzes tf.Example parsing. Whatever parses must re-serialize deterministically and parse back to
// an equal Example (our encode/decode pair is a bijection on the Examples it accepts).
//
// It also holds the zero-copy ScanExample (example_view.h) to protobuf's answer on every input:
//  - Parse fails => ScanExample fails. ScanExample checks everything protobuf's parser checks
//  (UTF-8 of
//    keys is checked by neither: the .proto is proto2), so there is no input only Parse rejects.
//  - Parse succeeds => ScanExample over all of its keys plus a missing one succeeds, and every view
//    holds exactly Parse's values. The one allowed failure is DataLoss "unsupported..." (groups, or
//    a feature merged from several non-empty lists), which protobuf accepts and example_view.h
//    documents as out of scope.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/example.h"
#include "sluice/formats/example_view.h"

namespace {

using sluice::formats::Example;
using sluice::formats::Feature;
using sluice::formats::FeatureKind;
using sluice::formats::FeatureView;

// Traps unless `view` holds exactly `f`'s values.
void CheckView(const FeatureView& view, const Feature& f) {
  if (view.kind != f.kind) __builtin_trap();
  auto size = view.size();
  if (!size.ok() || *size != f.size()) __builtin_trap();
  switch (f.kind) {
    case FeatureKind::kBytes: {
      std::vector<std::string_view> values;
      if (!view.Bytes(&values).ok() || values.size() != f.bytes.size()) __builtin_trap();
      for (size_t i = 0; i < values.size(); ++i) {
        if (values[i] != f.bytes[i]) __builtin_trap();
      }
      if (!values.empty() && (!view.FirstBytes().ok() || *view.FirstBytes() != values[0])) {
        __builtin_trap();
      }
      break;
    }
    case FeatureKind::kInt64: {
      std::vector<int64_t> values;
      if (!view.Int64s(&values).ok() || values != f.int64s) __builtin_trap();
      if (!values.empty() && (!view.FirstInt64().ok() || *view.FirstInt64() != values[0])) {
        __builtin_trap();
      }
      break;
    }
    case FeatureKind::kFloat: {
      // Bitwise: NaN payloads must survive too.
      std::vector<float> values;
      if (!view.Floats(&values).ok() || values.size() != f.floats.size()) __builtin_trap();
      if (!values.empty() && std::memcmp(values.data(), f.floats.data(), 4 * values.size()) != 0) {
        __builtin_trap();
      }
      break;
    }
    case FeatureKind::kNone:
      break;
  }
}

void CheckScanAgrees(std::string_view input, const sluice::Result<Example>& ex) {
  std::vector<std::string_view> keys;
  if (ex.ok()) {
    for (const auto& [key, f] : ex->features()) keys.push_back(key);
  }
  // Absent unless the input has it: compared against Find below either way.
  keys.push_back("\xff missing key");
  std::vector<FeatureView> views(keys.size());
  sluice::Status s = sluice::formats::ScanExample(input, keys, views);
  if (!ex.ok()) {
    if (s.ok() || !s.IsDataLoss()) __builtin_trap();
    return;
  }
  if (!s.ok()) {
    if (!s.IsDataLoss() || !s.message().starts_with("unsupported")) __builtin_trap();
    return;
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const Feature* f = ex->Find(keys[i]);
    if (f == nullptr) {
      if (views[i].kind != FeatureKind::kNone) __builtin_trap();
    } else {
      CheckView(views[i], *f);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto ex = Example::Parse(input);
  CheckScanAgrees(input, ex);
  if (!ex.ok()) return 0;
  std::string bytes = ex->Serialize();
  auto again = Example::Parse(bytes);
  if (!again.ok()) __builtin_trap();
  // NaN payloads compare unequal; compare the canonical bytes instead of the values.
  if (again->Serialize() != bytes) __builtin_trap();
  return 0;
}
