#include "sluice/formats/example_view.h"

#include <bit>
#include <climits>
#include <cstring>
#include <string>

static_assert(std::endian::native == std::endian::little, "packed floats are read as host bytes");

namespace sluice::formats {
namespace {

// Wire types (protobuf encoding guide) and the tags (field << 3 | wire type) of the fields we read.
constexpr uint32_t kWireVarint = 0;
constexpr uint32_t kWireFixed64 = 1;
constexpr uint32_t kWireLen = 2;
constexpr uint32_t kWireStartGroup = 3;
constexpr uint32_t kWireEndGroup = 4;
constexpr uint32_t kWireFixed32 = 5;
constexpr uint32_t kTag1Varint = (1 << 3) | kWireVarint;    // Int64List.value, unpacked
constexpr uint32_t kTag1Len = (1 << 3) | kWireLen;          // Example.features, Features.feature,
                                                            // entry key, Feature.bytes_list,
                                                            // BytesList.value, packed list values
constexpr uint32_t kTag1Fixed32 = (1 << 3) | kWireFixed32;  // FloatList.value, unpacked
constexpr uint32_t kTag2Len = (2 << 3) | kWireLen;          // entry value, Feature.float_list
constexpr uint32_t kTag3Len = (3 << 3) | kWireLen;          // Feature.int64_list

// protobuf refuses lengths above INT_MAX - kSlopBytes (parse_context.h: ReadSizeFallback).
constexpr uint32_t kMaxLength = INT_MAX - 16;

// First error seen: a static reason and where in the buffer it was found.
struct WireError {
  const char* reason = nullptr;
  const char* at = nullptr;
};

// Bounds-checked reader over one message body. Each method mirrors the protobuf 3.21 parser routine
// named beside it, so the two accept and reject the same bytes.
class WireReader {
 public:
  WireReader(std::string_view body, WireError* err)
      : p_(body.data()), end_(body.data() + body.size()), err_(err) {}

  bool AtEnd() const { return p_ == end_; }

  // ReadTag: at most 5 bytes, value taken modulo 2^32.
  bool ReadTag(uint32_t* tag) {
    if (p_ != end_ && static_cast<uint8_t>(*p_) < 0x80) {
      *tag = static_cast<uint8_t>(*p_++);
      return true;
    }
    const char* start = p_;
    uint32_t v = 0;
    for (int i = 0; i < 5; ++i) {
      if (p_ == end_) return FailAt(start, "truncated tag");
      const uint32_t b = static_cast<uint8_t>(*p_++);
      v |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        *tag = v;
        return true;
      }
    }
    return FailAt(start, "tag varint longer than 5 bytes");
  }

  // VarintParse: at most 10 bytes, value taken modulo 2^64.
  bool ReadVarint(uint64_t* value) {
    const char* start = p_;
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (p_ == end_) return FailAt(start, "truncated varint");
      const uint64_t b = static_cast<uint8_t>(*p_++);
      v |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        *value = v;
        return true;
      }
    }
    return FailAt(start, "varint longer than 10 bytes");
  }

  // ReadSize + the enclosing limit: at most 5 bytes, below 2 GiB, and inside this body.
  bool ReadLengthDelimited(std::string_view* body) {
    const char* start = p_;
    uint32_t n = 0;
    for (int i = 0;; ++i) {
      if (p_ == end_) return FailAt(start, "truncated length");
      const uint32_t b = static_cast<uint8_t>(*p_++);
      if (i == 4 && b >= 8) return FailAt(start, "length of 2 GiB or more");
      n |= (b & 0x7f) << (7 * i);
      if (b < 0x80) break;
    }
    if (n > kMaxLength) return FailAt(start, "length of 2 GiB or more");
    if (n > static_cast<size_t>(end_ - p_)) return FailAt(start, "length past end of message");
    *body = std::string_view(p_, n);
    p_ += n;
    return true;
  }

  bool ReadFixed32(const char** bytes) {
    if (end_ - p_ < 4) return Fail("truncated fixed32");
    *bytes = p_;
    p_ += 4;
    return true;
  }

  // UnknownFieldParse / FieldParser for a field whose tag was just read (tag_start: its first
  // byte).
  bool SkipField(uint32_t tag, const char* tag_start) {
    if ((tag >> 3) == 0) return FailAt(tag_start, "field number 0");
    switch (tag & 7) {
      case kWireVarint: {
        uint64_t ignored;
        return ReadVarint(&ignored);
      }
      case kWireFixed64:
        if (end_ - p_ < 8) return Fail("truncated fixed64");
        p_ += 8;
        return true;
      case kWireLen: {
        std::string_view ignored;
        return ReadLengthDelimited(&ignored);
      }
      case kWireStartGroup:
        return FailAt(tag_start, "unsupported group field (wire type 3)");
      case kWireEndGroup:
        return FailAt(tag_start, "end-group tag without a group");
      case kWireFixed32:
        if (end_ - p_ < 4) return Fail("truncated fixed32");
        p_ += 4;
        return true;
      default:
        return FailAt(tag_start, "invalid wire type 6 or 7");
    }
  }

  const char* pos() const { return p_; }
  bool Fail(const char* reason) { return FailAt(p_, reason); }
  bool FailAt(const char* at, const char* reason) {
    err_->reason = reason;
    err_->at = at;
    return false;
  }

 private:
  const char* p_;
  const char* end_;
  WireError* err_;
};

// List walkers: visit the values of a BytesList / FloatList / Int64List body in protobuf's order,
// skipping unknown fields. The visitor returns false to stop early (the walk then returns true).

template <typename Visit>  // bool(std::string_view)
bool WalkBytes(std::string_view list, WireError* err, Visit&& visit) {
  WireReader r(list, err);
  while (!r.AtEnd()) {
    const char* tag_start = r.pos();
    uint32_t tag;
    if (!r.ReadTag(&tag)) return false;
    if (tag == kTag1Len) {
      std::string_view value;
      if (!r.ReadLengthDelimited(&value)) return false;
      if (!visit(value)) return true;
    } else if (!r.SkipField(tag, tag_start)) {
      return false;
    }
  }
  return true;
}

template <typename Visit>  // bool(const char* little_endian_floats, size_t count)
bool WalkFloats(std::string_view list, WireError* err, Visit&& visit) {
  WireReader r(list, err);
  while (!r.AtEnd()) {
    const char* tag_start = r.pos();
    uint32_t tag;
    if (!r.ReadTag(&tag)) return false;
    if (tag == kTag1Len) {
      const char* len_start = r.pos();
      std::string_view packed;
      if (!r.ReadLengthDelimited(&packed)) return false;
      if (packed.size() % 4 != 0) {
        return r.FailAt(len_start, "packed float list length not a multiple of 4");
      }
      if (!packed.empty() && !visit(packed.data(), packed.size() / 4)) return true;
    } else if (tag == kTag1Fixed32) {
      const char* bytes;
      if (!r.ReadFixed32(&bytes)) return false;
      if (!visit(bytes, 1)) return true;
    } else if (!r.SkipField(tag, tag_start)) {
      return false;
    }
  }
  return true;
}

template <typename Visit>  // bool(int64_t)
bool WalkInt64s(std::string_view list, WireError* err, Visit&& visit) {
  WireReader r(list, err);
  while (!r.AtEnd()) {
    const char* tag_start = r.pos();
    uint32_t tag;
    if (!r.ReadTag(&tag)) return false;
    if (tag == kTag1Len) {
      std::string_view packed;
      if (!r.ReadLengthDelimited(&packed)) return false;
      // A varint cut by the end of the packed field is an error (ReadPackedVarint), which the
      // sub-reader reports as truncation.
      WireReader values(packed, err);
      while (!values.AtEnd()) {
        uint64_t v;
        if (!values.ReadVarint(&v)) return false;
        if (!visit(static_cast<int64_t>(v))) return true;
      }
    } else if (tag == kTag1Varint) {
      uint64_t v;
      if (!r.ReadVarint(&v)) return false;
      if (!visit(static_cast<int64_t>(v))) return true;
    } else if (!r.SkipField(tag, tag_start)) {
      return false;
    }
  }
  return true;
}

// Validates `list` as a list of `kind` and counts its values.
bool CountValues(FeatureKind kind, std::string_view list, WireError* err, size_t* count) {
  size_t n = 0;
  bool ok = true;
  switch (kind) {
    case FeatureKind::kBytes:
      ok = WalkBytes(list, err, [&n](std::string_view) { return ++n, true; });
      break;
    case FeatureKind::kFloat:
      ok = WalkFloats(list, err, [&n](const char*, size_t k) { return n += k, true; });
      break;
    case FeatureKind::kInt64:
      ok = WalkInt64s(list, err, [&n](int64_t) { return ++n, true; });
      break;
    case FeatureKind::kNone:
      break;
  }
  *count = n;
  return ok;
}

// The Feature a map entry is building. Values from several list messages of the same member merge
// in protobuf; one view can hold them only while at most one of those lists has values.
struct FeatureState {
  FeatureKind kind = FeatureKind::kNone;
  std::string_view list;
  size_t count = 0;          // values in `list`
  bool unsupported = false;  // values merged from two or more lists
};

// Feature::_InternalParse, merging into `state` (a map entry's value fields all merge into one
// Feature).
bool ScanFeature(std::string_view body, FeatureState* state, WireError* err) {
  WireReader r(body, err);
  while (!r.AtEnd()) {
    const char* tag_start = r.pos();
    uint32_t tag;
    if (!r.ReadTag(&tag)) return false;
    FeatureKind kind;
    switch (tag) {
      case kTag1Len:
        kind = FeatureKind::kBytes;
        break;
      case kTag2Len:
        kind = FeatureKind::kFloat;
        break;
      case kTag3Len:
        kind = FeatureKind::kInt64;
        break;
      default:
        if (!r.SkipField(tag, tag_start)) return false;
        continue;
    }
    std::string_view list;
    size_t count;
    if (!r.ReadLengthDelimited(&list) || !CountValues(kind, list, err, &count)) return false;
    if (kind != state->kind) {  // another oneof member: clears what was set
      *state = FeatureState{kind, list, count, false};
    } else if (count == 0) {  // merging an empty list changes nothing
    } else if (state->count == 0) {
      state->list = list;
      state->count = count;
    } else {
      state->count += count;
      state->unsupported = true;
    }
  }
  return true;
}

class Scanner {
 public:
  Scanner(std::span<const std::string_view> keys, std::span<FeatureView> out, WireError* err)
      : keys_(keys), out_(out), err_(err) {}

  // Example::_InternalParse.
  bool ScanExample(std::string_view example) {
    return ForEachField1(example, [this](std::string_view f) { return ScanFeatures(f); });
  }

  // The first requested key whose winning entry merged lists, or nullptr.
  const std::string_view* UnsupportedKey() const {
    for (size_t i = 0; i < unsupported_.size(); ++i) {
      if (unsupported_[i]) return &keys_[i];
    }
    return nullptr;
  }

 private:
  // Calls child(bytes) for each length-delimited field 1 of `message`, skipping every other
  // field; false at the first malformed field or failed child.
  template <typename Child>
  bool ForEachField1(std::string_view message, Child child) {
    WireReader r(message, err_);
    while (!r.AtEnd()) {
      const char* tag_start = r.pos();
      uint32_t tag;
      if (!r.ReadTag(&tag)) return false;
      if (tag == kTag1Len) {
        std::string_view bytes;
        if (!r.ReadLengthDelimited(&bytes) || !child(bytes)) return false;
      } else if (!r.SkipField(tag, tag_start)) {
        return false;
      }
    }
    return true;
  }

  // Features::_InternalParse.
  bool ScanFeatures(std::string_view features) {
    return ForEachField1(features, [this](std::string_view e) { return ScanEntry(e); });
  }

  // MapEntryImpl::_InternalParse, then map[key] = value (the entry replaces any earlier one).
  bool ScanEntry(std::string_view entry) {
    std::string_view key;
    FeatureState state;
    WireReader r(entry, err_);
    while (!r.AtEnd()) {
      const char* tag_start = r.pos();
      uint32_t tag;
      if (!r.ReadTag(&tag)) return false;
      if (tag == kTag1Len) {
        if (!r.ReadLengthDelimited(&key)) return false;
      } else if (tag == kTag2Len) {
        std::string_view value;
        if (!r.ReadLengthDelimited(&value) || !ScanFeature(value, &state, err_)) return false;
      } else if (!r.SkipField(tag, tag_start)) {
        return false;
      }
    }
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (keys_[i] != key) continue;
      out_[i] = FeatureView{state.kind, state.list};
      // Allocated only on the first unsupported entry, which real data never has.
      if (state.unsupported && unsupported_.empty()) unsupported_.resize(keys_.size());
      if (!unsupported_.empty()) unsupported_[i] = state.unsupported;
    }
    return true;
  }

  std::span<const std::string_view> keys_;
  std::span<FeatureView> out_;
  WireError* err_;
  std::vector<bool> unsupported_;  // per key; empty while none
};

Status WireStatus(const WireError& err, std::string_view buffer, std::string_view what) {
  return Status::DataLoss(std::string(err.reason) + " at byte " +
                          std::to_string(err.at - buffer.data()) + " of a " +
                          std::to_string(buffer.size()) + "-byte " + std::string(what));
}

std::string_view ListName(FeatureKind kind) {
  switch (kind) {
    case FeatureKind::kBytes:
      return "BytesList";
    case FeatureKind::kFloat:
      return "FloatList";
    case FeatureKind::kInt64:
      return "Int64List";
    case FeatureKind::kNone:
      break;
  }
  return "Feature";
}

Status CheckKind(FeatureKind have, FeatureKind want) {
  if (have == want) return Status::Ok();
  return Status::InvalidArgument("feature is " + std::string(FeatureKindName(have)) +
                                 ", expected " + std::string(FeatureKindName(want)));
}

}  // namespace

Result<size_t> FeatureView::size() const {
  WireError err;
  size_t n;
  if (!CountValues(kind, list, &err, &n)) return WireStatus(err, list, ListName(kind));
  return n;
}

Result<std::string_view> FeatureView::FirstBytes() const {
  SLUICE_RETURN_IF_ERROR(CheckKind(kind, FeatureKind::kBytes));
  WireError err;
  const char* data = nullptr;
  size_t size = 0;
  auto first = [&](std::string_view v) {
    data = v.data();
    size = v.size();
    return false;
  };
  if (!WalkBytes(list, &err, first)) return WireStatus(err, list, ListName(kind));
  if (data == nullptr) return Status::InvalidArgument("bytes feature has no values");
  return std::string_view(data, size);
}

Result<int64_t> FeatureView::FirstInt64() const {
  SLUICE_RETURN_IF_ERROR(CheckKind(kind, FeatureKind::kInt64));
  WireError err;
  bool found = false;
  int64_t value = 0;
  auto first = [&](int64_t v) {
    found = true;
    value = v;
    return false;
  };
  if (!WalkInt64s(list, &err, first)) return WireStatus(err, list, ListName(kind));
  if (!found) return Status::InvalidArgument("int64 feature has no values");
  return value;
}

Status FeatureView::Bytes(std::vector<std::string_view>* out) const {
  out->clear();
  SLUICE_RETURN_IF_ERROR(CheckKind(kind, FeatureKind::kBytes));
  WireError err;
  if (!WalkBytes(list, &err, [out](std::string_view v) { return out->push_back(v), true; })) {
    out->clear();
    return WireStatus(err, list, ListName(kind));
  }
  return Status::Ok();
}

Status FeatureView::Int64s(std::vector<int64_t>* out) const {
  out->clear();
  SLUICE_RETURN_IF_ERROR(CheckKind(kind, FeatureKind::kInt64));
  WireError err;
  if (!WalkInt64s(list, &err, [out](int64_t v) { return out->push_back(v), true; })) {
    out->clear();
    return WireStatus(err, list, ListName(kind));
  }
  return Status::Ok();
}

Status FeatureView::Floats(std::vector<float>* out) const {
  out->clear();
  SLUICE_RETURN_IF_ERROR(CheckKind(kind, FeatureKind::kFloat));
  WireError err;
  auto append = [out](const char* bytes, size_t count) {
    const size_t old = out->size();
    out->resize(old + count);
    std::memcpy(out->data() + old, bytes, 4 * count);
    return true;
  };
  if (!WalkFloats(list, &err, append)) {
    out->clear();
    return WireStatus(err, list, ListName(kind));
  }
  return Status::Ok();
}

Status ScanExample(std::string_view example, std::span<const std::string_view> keys,
                   std::span<FeatureView> out) {
  if (keys.size() != out.size()) {
    return Status::InvalidArgument("ScanExample: " + std::to_string(keys.size()) + " keys but " +
                                   std::to_string(out.size()) + " outputs");
  }
  for (FeatureView& v : out) v = FeatureView{};
  if (example.size() > static_cast<size_t>(INT32_MAX)) {  // as Example::Parse
    return Status::DataLoss("tf.Example of " + std::to_string(example.size()) +
                            " bytes is too large");
  }
  WireError err;
  Scanner scanner(keys, out, &err);
  Status status;
  if (!scanner.ScanExample(example)) {
    status = WireStatus(err, example, "tf.Example");
  } else if (const std::string_view* key = scanner.UnsupportedKey()) {
    status = Status::DataLoss("unsupported: feature '" + std::string(*key) +
                              "' merges values from several lists");
  }
  if (!status.ok()) {
    for (FeatureView& v : out) v = FeatureView{};
  }
  return status;
}

}  // namespace sluice::formats
