#include "sluice/formats/example.h"

#include <google/protobuf/arena.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "example.pb.h"

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

void Example::SerializeTo(std::string* out) const {
  google::protobuf::Arena arena;
  auto* msg = google::protobuf::Arena::CreateMessage<proto::Example>(&arena);
  auto* map = msg->mutable_features()->mutable_feature();
  for (const auto& [key, f] : features_) {
    proto::Feature& pf = (*map)[key];
    switch (f.kind) {
      case FeatureKind::kBytes: {
        auto* list = pf.mutable_bytes_list()->mutable_value();
        list->Reserve(static_cast<int>(f.bytes.size()));
        for (const std::string& b : f.bytes) list->Add()->assign(b);
        break;
      }
      case FeatureKind::kFloat:
        pf.mutable_float_list()->mutable_value()->Add(f.floats.begin(), f.floats.end());
        break;
      case FeatureKind::kInt64:
        pf.mutable_int64_list()->mutable_value()->Add(f.int64s.begin(), f.int64s.end());
        break;
      case FeatureKind::kNone:
        break;
    }
  }
  out->clear();
  out->reserve(msg->ByteSizeLong());
  google::protobuf::io::StringOutputStream sos(out);
  google::protobuf::io::CodedOutputStream cos(&sos);
  cos.SetSerializationDeterministic(true);  // sorted map keys: byte-identical output
  msg->SerializeToCodedStream(&cos);
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
