#include "sluice/formats/example.h"

#include <google/protobuf/arena.h>

#include <bit>

#include "example.pb.h"

static_assert(std::endian::native == std::endian::little, "floats are written as host bytes");

namespace sluice::formats {

std::string_view FeatureKindName(FeatureKind kind) {
  switch (kind) {
    case FeatureKind::kNone: return "none";
    case FeatureKind::kBytes: return "bytes";
    case FeatureKind::kFloat: return "float";
    case FeatureKind::kInt64: return "int64";
  }
  return "none";
}

size_t Feature::size() const {
  switch (kind) {
    case FeatureKind::kBytes: return bytes.size();
    case FeatureKind::kFloat: return floats.size();
    case FeatureKind::kInt64: return int64s.size();
    case FeatureKind::kNone: return 0;
  }
  return 0;
}

Example& Example::SetFeature(std::string_view key, Feature feature) {
  auto it = features_.find(key);
  if (it == features_.end()) {
    features_.emplace(std::string(key), std::move(feature));
  } else {
    it->second = std::move(feature);
  }
  return *this;
}

Example& Example::SetBytes(std::string_view key, std::string_view value) {
  return SetBytesList(key, {std::string(value)});
}
Example& Example::SetBytesList(std::string_view key, std::vector<std::string> values) {
  Feature f;
  f.kind = FeatureKind::kBytes;
  f.bytes = std::move(values);
  return SetFeature(key, std::move(f));
}
Example& Example::SetInt64(std::string_view key, int64_t value) {
  return SetInt64List(key, {value});
}
Example& Example::SetInt64List(std::string_view key, std::vector<int64_t> values) {
  Feature f;
  f.kind = FeatureKind::kInt64;
  f.int64s = std::move(values);
  return SetFeature(key, std::move(f));
}
Example& Example::SetFloat(std::string_view key, float value) { return SetFloatList(key, {value}); }
Example& Example::SetFloatList(std::string_view key, std::vector<float> values) {
  Feature f;
  f.kind = FeatureKind::kFloat;
  f.floats = std::move(values);
  return SetFeature(key, std::move(f));
}

const Feature* Example::Find(std::string_view key) const {
  auto it = features_.find(key);
  return it == features_.end() ? nullptr : &it->second;
}

Result<const Feature*> Example::FindKind(std::string_view key, FeatureKind kind) const {
  const Feature* f = Find(key);
  if (f == nullptr) return Status::NotFound("feature '" + std::string(key) + "' not found");
  if (f->kind != kind) {
    return Status::InvalidArgument("feature '" + std::string(key) + "' is " +
                                   std::string(FeatureKindName(f->kind)) + ", expected " +
                                   std::string(FeatureKindName(kind)));
  }
  return f;
}

namespace {
template <typename T>
Result<T> Single(std::string_view key, const std::vector<T>& values) {
  if (values.size() != 1) {
    return Status::InvalidArgument("feature '" + std::string(key) + "' has " +
                                   std::to_string(values.size()) + " values, expected 1");
  }
  return values[0];
}
}  // namespace

Result<std::string_view> Example::GetBytes(std::string_view key) const {
  SLUICE_ASSIGN_OR_RETURN(const Feature* f, FindKind(key, FeatureKind::kBytes));
  SLUICE_ASSIGN_OR_RETURN(const std::string& v, Single<std::string>(key, f->bytes));
  (void)v;
  return std::string_view(f->bytes[0]);
}
Result<int64_t> Example::GetInt64(std::string_view key) const {
  SLUICE_ASSIGN_OR_RETURN(const Feature* f, FindKind(key, FeatureKind::kInt64));
  return Single(key, f->int64s);
}
Result<float> Example::GetFloat(std::string_view key) const {
  SLUICE_ASSIGN_OR_RETURN(const Feature* f, FindKind(key, FeatureKind::kFloat));
  return Single(key, f->floats);
}
Result<std::span<const std::string>> Example::GetBytesList(std::string_view key) const {
  SLUICE_ASSIGN_OR_RETURN(const Feature* f, FindKind(key, FeatureKind::kBytes));
  return std::span<const std::string>(f->bytes);
}
Result<std::span<const int64_t>> Example::GetInt64List(std::string_view key) const {
  SLUICE_ASSIGN_OR_RETURN(const Feature* f, FindKind(key, FeatureKind::kInt64));
  return std::span<const int64_t>(f->int64s);
}
Result<std::span<const float>> Example::GetFloatList(std::string_view key) const {
  SLUICE_ASSIGN_OR_RETURN(const Feature* f, FindKind(key, FeatureKind::kFloat));
  return std::span<const float>(f->floats);
}

// Direct encoder, byte-identical to protobuf's deterministic serialization of proto::Example (sorted
// map keys; a map entry always carries key and value; a set oneof is written even when its list is
// empty; packed lists omitted when empty). It writes each image's bytes once, where going through the
// generated message copied them three times. example_test, the Python interop script and the
// example_parse fuzzer (parse -> serialize -> parse) hold it to protobuf's bytes.
namespace {

constexpr uint8_t kLen = 2;  // wire type: length-delimited

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
size_t LenFieldSize(size_t payload) { return 1 + VarintSize(payload) + payload; }

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutLenHeader(std::string* out, int field, size_t payload) {
  out->push_back(static_cast<char>((field << 3) | kLen));
  PutVarint(out, payload);
}

// Size of the list message (BytesList / FloatList / Int64List) inside a Feature.
size_t ListSize(const Feature& f) {
  switch (f.kind) {
    case FeatureKind::kBytes: {
      size_t n = 0;
      for (const std::string& b : f.bytes) n += LenFieldSize(b.size());
      return n;
    }
    case FeatureKind::kFloat:
      return f.floats.empty() ? 0 : LenFieldSize(4 * f.floats.size());
    case FeatureKind::kInt64: {
      if (f.int64s.empty()) return 0;
      size_t packed = 0;
      for (int64_t v : f.int64s) packed += VarintSize(static_cast<uint64_t>(v));
      return LenFieldSize(packed);
    }
    case FeatureKind::kNone:
      return 0;
  }
  return 0;
}
size_t FeatureSize(const Feature& f) {
  return f.kind == FeatureKind::kNone ? 0 : LenFieldSize(ListSize(f));
}
size_t EntrySize(const std::string& key, const Feature& f) {
  return LenFieldSize(key.size()) + LenFieldSize(FeatureSize(f));
}

}  // namespace

void Example::SerializeTo(std::string* out) const {
  size_t features = 0;
  for (const auto& [key, f] : features_) features += LenFieldSize(EntrySize(key, f));
  out->clear();
  out->reserve(LenFieldSize(features));
  PutLenHeader(out, 1, features);  // Example.features
  for (const auto& [key, f] : features_) {
    PutLenHeader(out, 1, EntrySize(key, f));  // Features.feature map entry
    PutLenHeader(out, 1, key.size());         // key
    out->append(key);
    PutLenHeader(out, 2, FeatureSize(f));     // value
    if (f.kind == FeatureKind::kNone) continue;
    const int oneof = f.kind == FeatureKind::kBytes ? 1 : f.kind == FeatureKind::kFloat ? 2 : 3;
    PutLenHeader(out, oneof, ListSize(f));
    switch (f.kind) {
      case FeatureKind::kBytes:
        for (const std::string& b : f.bytes) {
          PutLenHeader(out, 1, b.size());
          out->append(b);
        }
        break;
      case FeatureKind::kFloat:
        if (!f.floats.empty()) {
          PutLenHeader(out, 1, 4 * f.floats.size());
          out->append(reinterpret_cast<const char*>(f.floats.data()), 4 * f.floats.size());
        }
        break;
      case FeatureKind::kInt64:
        if (!f.int64s.empty()) {
          size_t packed = 0;
          for (int64_t v : f.int64s) packed += VarintSize(static_cast<uint64_t>(v));
          PutLenHeader(out, 1, packed);
          for (int64_t v : f.int64s) PutVarint(out, static_cast<uint64_t>(v));
        }
        break;
      case FeatureKind::kNone:
        break;
    }
  }
}

std::string Example::Serialize() const {
  std::string out;
  SerializeTo(&out);
  return out;
}

Result<Example> Example::Parse(std::string_view bytes) {
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) {
    return Status::DataLoss("Example of " + std::to_string(bytes.size()) + " bytes is too large");
  }
  google::protobuf::Arena arena;
  auto* msg = google::protobuf::Arena::CreateMessage<proto::Example>(&arena);
  if (!msg->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::DataLoss("not a valid tf.Example protobuf (" + std::to_string(bytes.size()) +
                            " bytes)");
  }
  Example ex;
  for (const auto& [key, pf] : msg->features().feature()) {
    Feature f;
    switch (pf.kind_case()) {
      case proto::Feature::kBytesList:
        f.kind = FeatureKind::kBytes;
        f.bytes.assign(pf.bytes_list().value().begin(), pf.bytes_list().value().end());
        break;
      case proto::Feature::kFloatList:
        f.kind = FeatureKind::kFloat;
        f.floats.assign(pf.float_list().value().begin(), pf.float_list().value().end());
        break;
      case proto::Feature::kInt64List:
        f.kind = FeatureKind::kInt64;
        f.int64s.assign(pf.int64_list().value().begin(), pf.int64_list().value().end());
        break;
      case proto::Feature::KIND_NOT_SET:
        break;
    }
    ex.features_.emplace(key, std::move(f));
  }
  return ex;
}

}  // namespace sluice::formats
