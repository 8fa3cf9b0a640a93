// tf.Example: a map from feature name to a list of bytes, float or int64 values.
//
// Wire format (proto3, TensorFlow's field numbers): Example{Features features=1},
// Features{map<string,Feature> feature=1}, Feature{oneof{BytesList bytes_list=1; FloatList float_list=2;
// Int64List int64_list=3}}, each list `repeated value=1` (float/int64 written packed; the parser also
// accepts unpacked). Serialize() writes keys in sorted order so equal Examples give equal bytes (the map
// order on the wire is unspecified; readers must not depend on it). Not thread-safe for mutation;
// const methods may be called concurrently.
#ifndef SLUICE_FORMATS_EXAMPLE_H_
#define SLUICE_FORMATS_EXAMPLE_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::formats {

// kNone is a Feature whose oneof is unset (valid on the wire, TensorFlow treats it as empty).
enum class FeatureKind { kNone, kBytes, kFloat, kInt64 };
std::string_view FeatureKindName(FeatureKind kind);  // "none", "bytes", "float", "int64"

struct Feature {
  FeatureKind kind = FeatureKind::kNone;
  std::vector<std::string> bytes;  // kBytes
  std::vector<float> floats;       // kFloat
  std::vector<int64_t> int64s;     // kInt64

  size_t size() const;  // number of values of its kind
  bool operator==(const Feature&) const = default;
};

class Example {
 public:
  using FeatureMap = std::map<std::string, Feature, std::less<>>;

  // Builders replace any existing feature of that name and return *this for chaining:
  //   ex.SetInt64("image/height", 375).SetBytes("image/format", "JPEG");
  Example& SetBytes(std::string_view key, std::string_view value);
  Example& SetBytesList(std::string_view key, std::vector<std::string> values);
  Example& SetInt64(std::string_view key, int64_t value);
  Example& SetInt64List(std::string_view key, std::vector<int64_t> values);
  Example& SetFloat(std::string_view key, float value);
  Example& SetFloatList(std::string_view key, std::vector<float> values);
  Example& SetFeature(std::string_view key, Feature feature);

  // nullptr when absent.
  const Feature* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Typed accessors. NotFound names the key when it is absent; InvalidArgument when it has another
  // kind or (for the single-value forms) not exactly one value.
  Result<std::string_view> GetBytes(std::string_view key) const;
  Result<int64_t> GetInt64(std::string_view key) const;
  Result<float> GetFloat(std::string_view key) const;
  Result<std::span<const std::string>> GetBytesList(std::string_view key) const;
  Result<std::span<const int64_t>> GetInt64List(std::string_view key) const;
  Result<std::span<const float>> GetFloatList(std::string_view key) const;

  const FeatureMap& features() const { return features_; }
  size_t size() const { return features_.size(); }
  bool operator==(const Example&) const = default;

  // Deterministic encoding (keys sorted).
  std::string Serialize() const;
  void SerializeTo(std::string* out) const;
  // DataLoss with a reason for malformed bytes.
  static Result<Example> Parse(std::string_view bytes);

 private:
  Result<const Feature*> FindKind(std::string_view key, FeatureKind kind) const;
  FeatureMap features_;
};

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_EXAMPLE_H_
