#include "sluice/formats/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "sluice/formats/file_util.h"

namespace sluice::formats {

// The data section is copied to and from memory as is; a big-endian host would need byte swaps.
static_assert(std::endian::native == std::endian::little, "safetensors code assumes little-endian");

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr std::string_view kMetadataKey = "__metadata__";
constexpr size_t kLengthSize = 8;
// Deeper JSON than this cannot be a safetensors header; refusing it bounds the parser's work.
constexpr int kMaxJsonDepth = 8;

struct DtypeEntry {
  SafetensorsDtype dtype;
  std::string_view name;
  size_t size;
};
constexpr DtypeEntry kDtypes[] = {
    {SafetensorsDtype::kBool, "BOOL", 1},      {SafetensorsDtype::kU8, "U8", 1},
    {SafetensorsDtype::kI8, "I8", 1},          {SafetensorsDtype::kF8E5M2, "F8_E5M2", 1},
    {SafetensorsDtype::kF8E4M3, "F8_E4M3", 1}, {SafetensorsDtype::kI16, "I16", 2},
    {SafetensorsDtype::kU16, "U16", 2},        {SafetensorsDtype::kF16, "F16", 2},
    {SafetensorsDtype::kBF16, "BF16", 2},      {SafetensorsDtype::kI32, "I32", 4},
    {SafetensorsDtype::kU32, "U32", 4},        {SafetensorsDtype::kF32, "F32", 4},
    {SafetensorsDtype::kI64, "I64", 8},        {SafetensorsDtype::kU64, "U64", 8},
    {SafetensorsDtype::kF64, "F64", 8},
};

const DtypeEntry& EntryOf(SafetensorsDtype dtype) {
  for (const DtypeEntry& e : kDtypes) {
    if (e.dtype == dtype) return e;
  }
  return kDtypes[0];  // unreachable for a valid enum value
}

// product(shape) * element_size, or nullopt on a negative dimension or overflow past 2^63.
std::optional<uint64_t> ByteSize(const std::vector<int64_t>& shape, size_t element_size) {
  uint64_t n = element_size;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  }
  if (n > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

bool IsUtf8(const std::string& s) {
  try {
    (void)Json(s).dump();
    return true;
  } catch (const Json::exception&) {
    return false;
  }
}

template <typename T>
T LoadLe(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// A first SAX pass over the header that the DOM parser cannot do: it rejects duplicate keys at any
// level (nlohmann keeps the last one silently, and two readers could then disagree about a file)
// and nesting deeper than kMaxJsonDepth (no safetensors header is deeper than 3).
class HeaderChecker : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return Open(); }
  bool start_array(std::size_t) override { return Open(); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    if (!open_.back().insert(k).second) {
      error_ = "duplicate key \"" + k + "\"";
      return false;
    }
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error_ = "invalid JSON at header byte " + std::to_string(position > 0 ? position - 1 : 0);
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  bool Open() {
    if (open_.size() >= kMaxJsonDepth) {
      error_ = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    open_.emplace_back();  // arrays get an (unused) key set too, so Close() always pops
    return true;
  }
  bool Close() {
    open_.pop_back();
    return true;
  }

  std::vector<std::set<std::string>> open_;
  std::string error_;
};

Result<Json> ParseHeaderJson(std::string_view text, const std::string& file) {
  HeaderChecker checker;
  if (!Json::sax_parse(text.begin(), text.end(), &checker)) {
    std::string error = checker.error().empty() ? "invalid JSON" : checker.error();
    return Status::DataLoss(error + " in the header of " + file);
  }
  Json header = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return Status::DataLoss("invalid JSON in the header of " + file);
  if (!header.is_object()) return Status::DataLoss("JSON header is not an object in " + file);
  return header;
}

// Reads a JSON array of non-negative integers.
bool ReadIntArray(const Json& j, std::vector<int64_t>* out) {
  if (!j.is_array()) return false;
  out->clear();
  for (const Json& v : j) {
    if (!v.is_number_unsigned()) return false;  // also rejects negatives, floats, bools
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return false;
    out->push_back(static_cast<int64_t>(u));
  }
  return true;
}

}  // namespace

std::string_view SafetensorsDtypeName(SafetensorsDtype dtype) { return EntryOf(dtype).name; }

size_t SafetensorsDtypeSize(SafetensorsDtype dtype) { return EntryOf(dtype).size; }

Result<SafetensorsDtype> ParseSafetensorsDtype(std::string_view name) {
  for (const DtypeEntry& e : kDtypes) {
    if (e.name == name) return e.dtype;
  }
  return Status::Unsupported("unknown safetensors dtype \"" + std::string(name) + "\"");
}

float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {  // inf / NaN: keep the payload
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal: mantissa * 2^-24, exact in float
    float v = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -v : v;
  }
  return std::bit_cast<float>(bits);
}

float BFloat16ToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

int64_t SafetensorsTensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Writer

Status SafetensorsWriter::Add(std::string name, SafetensorsDtype dtype, std::vector<int64_t> shape,
                              std::string_view bytes) {
  if (name.empty()) return Status::InvalidArgument("safetensors tensor name is empty");
  if (name == kMetadataKey) {
    return Status::InvalidArgument("\"__metadata__\" is reserved, not a tensor name");
  }
  if (!IsUtf8(name)) return Status::InvalidArgument("tensor name is not UTF-8: " + name);
  if (tensors_.count(name) != 0) return Status::InvalidArgument("duplicate tensor name " + name);
  std::optional<uint64_t> expected = ByteSize(shape, SafetensorsDtypeSize(dtype));
  if (!expected) {
    return Status::InvalidArgument("invalid shape " + ShapeString(shape) + " for tensor " + name);
  }
  if (*expected != bytes.size()) {
    return Status::InvalidArgument("tensor " + name + " of dtype " +
                                   std::string(SafetensorsDtypeName(dtype)) + " and shape " +
                                   ShapeString(shape) + " needs " + std::to_string(*expected) +
                                   " bytes, got " + std::to_string(bytes.size()));
  }
  tensors_.emplace(std::move(name), Entry{dtype, std::move(shape), std::string(bytes)});
  return Status::Ok();
}

void SafetensorsWriter::SetMetadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

Result<std::string> SafetensorsWriter::Header() const {
  // ordered_json keeps insertion order: "__metadata__" first (as the reference writer does), then
  // the tensors by name, which is also their order in the data section.
  OrderedJson header = OrderedJson::object();
  if (!metadata_.empty()) {
    OrderedJson meta = OrderedJson::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header[std::string(kMetadataKey)] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& [name, e] : tensors_) {
    OrderedJson t = OrderedJson::object();
    t["dtype"] = SafetensorsDtypeName(e.dtype);
    t["shape"] = e.shape;
    t["data_offsets"] = {offset, offset + e.bytes.size()};
    offset += e.bytes.size();
    header[name] = std::move(t);
  }
  std::string json;
  try {
    json = header.dump();
  } catch (const OrderedJson::exception& e) {
    return Status::InvalidArgument(std::string("safetensors metadata is not UTF-8: ") + e.what());
  }
  // Pad with spaces so the data section starts 8-byte aligned, like the reference writer.
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(kLengthSize, '\0');
  uint64_t n = json.size();
  std::memcpy(out.data(), &n, kLengthSize);
  out += json;
  return out;
}

Result<std::string> SafetensorsWriter::Serialize() const {
  SLUICE_ASSIGN_OR_RETURN(std::string out, Header());
  for (const auto& [name, e] : tensors_) out += e.bytes;
  return out;
}

Status SafetensorsWriter::WriteFile(const std::string& path) const {
  SLUICE_ASSIGN_OR_RETURN(std::string header, Header());
  SLUICE_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(path));
  SLUICE_RETURN_IF_ERROR(file.Append(header));
  for (const auto& [name, e] : tensors_) SLUICE_RETURN_IF_ERROR(file.Append(e.bytes));
  return file.Commit();
}

// ---------------------------------------------------------------------------------------------
// Reader

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return Parse(std::move(bytes), path);
}

Result<SafetensorsFile> SafetensorsFile::Parse(std::string bytes, std::string name) {
  const uint64_t size = bytes.size();
  if (size < kLengthSize) {
    return Status::DataLoss("file of " + std::to_string(size) +
                            " bytes is too short for the safetensors header length in " + name);
  }
  const uint64_t n = LoadLe<uint64_t>(bytes.data());
  if (n > kSafetensorsMaxHeaderSize) {
    return Status::DataLoss("header length " + std::to_string(n) + " is absurd (limit " +
                            std::to_string(kSafetensorsMaxHeaderSize) + ") in " + name);
  }
  if (n > size - kLengthSize) {
    return Status::DataLoss("header length " + std::to_string(n) + " is larger than the file (" +
                            std::to_string(size) + " bytes) in " + name);
  }
  SLUICE_ASSIGN_OR_RETURN(Json header,
                          ParseHeaderJson(std::string_view(bytes).substr(kLengthSize, n), name));

  SafetensorsFile file;
  const uint64_t data_start = kLengthSize + n;
  const uint64_t data_size = size - data_start;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) return Status::DataLoss("__metadata__ is not an object in " + name);
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          return Status::DataLoss("metadata value for \"" + mk + "\" is not a string in " + name);
        }
        file.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor \"" + key + "\" in " + name;
    if (!value.is_object()) return Status::DataLoss("entry is not an object: " + where);
    auto dtype_it = value.find("dtype");
    auto shape_it = value.find("shape");
    auto offsets_it = value.find("data_offsets");
    if (dtype_it == value.end() || !dtype_it->is_string()) {
      return Status::DataLoss("missing or non-string dtype: " + where);
    }
    Result<SafetensorsDtype> dtype = ParseSafetensorsDtype(dtype_it->get<std::string>());
    if (!dtype.ok()) return dtype.status().WithPrefix(where);
    Info info{*dtype, {}, 0, 0};
    if (shape_it == value.end() || !ReadIntArray(*shape_it, &info.shape)) {
      return Status::DataLoss("missing shape or not an array of non-negative integers: " + where);
    }
    std::vector<int64_t> offsets;
    if (offsets_it == value.end() || !ReadIntArray(*offsets_it, &offsets) || offsets.size() != 2) {
      return Status::DataLoss("data_offsets is not a pair of non-negative integers: " + where);
    }
    const uint64_t begin = offsets[0], end = offsets[1];
    if (begin > end) {
      return Status::DataLoss("data_offsets [" + std::to_string(begin) + ", " +
                              std::to_string(end) + "] are reversed: " + where);
    }
    if (end > data_size) {
      return Status::DataLoss("data_offsets end " + std::to_string(end) +
                              " is out of range of the data section (" + std::to_string(data_size) +
                              " bytes): " + where);
    }
    std::optional<uint64_t> expected = ByteSize(info.shape, SafetensorsDtypeSize(info.dtype));
    if (!expected || *expected != end - begin) {
      return Status::DataLoss("shape " + ShapeString(info.shape) + " of dtype " +
                              std::string(SafetensorsDtypeName(info.dtype)) + " does not match " +
                              "the offset span of " + std::to_string(end - begin) +
                              " bytes: " + where);
    }
    info.begin = data_start + begin;
    info.end = data_start + end;
    file.tensors_.emplace(key, std::move(info));
  }

  // The tensors must tile the data section exactly: sorted by start, each begins where the
  // previous one ended, and the last ends at the end of the file.
  std::vector<std::pair<const std::string*, const Info*>> by_offset;
  for (const auto& [tname, info] : file.tensors_) by_offset.emplace_back(&tname, &info);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->begin, a.second->end) < std::tie(b.second->begin, b.second->end);
  });
  uint64_t expected_begin = data_start;
  for (const auto& [tname, info] : by_offset) {
    if (info->begin < expected_begin) {
      return Status::DataLoss("tensor \"" + *tname + "\" overlaps the previous tensor at data " +
                              "offset " + std::to_string(info->begin - data_start) + " in " + name);
    }
    if (info->begin > expected_begin) {
      return Status::DataLoss("gap before tensor \"" + *tname + "\" at data offset " +
                              std::to_string(expected_begin - data_start) + " in " + name);
    }
    expected_begin = info->end;
  }
  if (expected_begin != size) {
    return Status::DataLoss(std::to_string(size - expected_begin) +
                            " trailing bytes after the last tensor (data offset " +
                            std::to_string(expected_begin - data_start) + ") in " + name);
  }
  file.name_ = std::move(name);
  file.bytes_ = std::make_unique<const std::string>(std::move(bytes));
  return file;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;
}

Result<SafetensorsTensor> SafetensorsFile::Find(std::string_view name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return Status::NotFound("no tensor \"" + std::string(name) + "\" in " + name_);
  }
  const Info& info = it->second;
  return SafetensorsTensor{info.dtype, info.shape,
                           std::string_view(*bytes_).substr(info.begin, info.end - info.begin)};
}

namespace {

Status WrongDtype(const SafetensorsTensor& t, std::string_view name, std::string_view wanted,
                  const std::string& file) {
  return Status::InvalidArgument("tensor \"" + std::string(name) + "\" has dtype " +
                                 std::string(SafetensorsDtypeName(t.dtype)) + ", not " +
                                 std::string(wanted) + ", in " + file);
}

// Converts every element of t with `convert(const char* element)`.
template <typename Out, typename Convert>
std::vector<Out> ConvertAll(const SafetensorsTensor& t, Convert convert) {
  const size_t size = SafetensorsDtypeSize(t.dtype);
  std::vector<Out> out(t.data.size() / size);
  for (size_t i = 0; i < out.size(); ++i) out[i] = convert(t.data.data() + i * size);
  return out;
}

}  // namespace

Result<std::vector<float>> SafetensorsFile::Floats(std::string_view name) const {
  SLUICE_ASSIGN_OR_RETURN(SafetensorsTensor t, Find(name));
  switch (t.dtype) {
    case SafetensorsDtype::kF32:
      return ConvertAll<float>(t, [](const char* p) { return LoadLe<float>(p); });
    case SafetensorsDtype::kF16:
      return ConvertAll<float>(t, [](const char* p) { return HalfToFloat(LoadLe<uint16_t>(p)); });
    case SafetensorsDtype::kBF16:
      return ConvertAll<float>(t,
                               [](const char* p) { return BFloat16ToFloat(LoadLe<uint16_t>(p)); });
    default:
      return WrongDtype(t, name, "F32, F16 or BF16", name_);
  }
}

Result<std::vector<double>> SafetensorsFile::Doubles(std::string_view name) const {
  SLUICE_ASSIGN_OR_RETURN(SafetensorsTensor t, Find(name));
  if (t.dtype == SafetensorsDtype::kF64) {
    return ConvertAll<double>(t, [](const char* p) { return LoadLe<double>(p); });
  }
  Result<std::vector<float>> floats = Floats(name);
  if (!floats.ok()) return WrongDtype(t, name, "F64, F32, F16 or BF16", name_);
  return std::vector<double>(floats->begin(), floats->end());
}

Result<std::vector<int64_t>> SafetensorsFile::Int64s(std::string_view name) const {
  SLUICE_ASSIGN_OR_RETURN(SafetensorsTensor t, Find(name));
  auto as = [&t]<typename T>(T) {
    return ConvertAll<int64_t>(t, [](const char* p) { return static_cast<int64_t>(LoadLe<T>(p)); });
  };
  switch (t.dtype) {
    case SafetensorsDtype::kI64:
      return as(int64_t{});
    case SafetensorsDtype::kI32:
      return as(int32_t{});
    case SafetensorsDtype::kU32:
      return as(uint32_t{});
    case SafetensorsDtype::kI16:
      return as(int16_t{});
    case SafetensorsDtype::kU16:
      return as(uint16_t{});
    case SafetensorsDtype::kI8:
      return as(int8_t{});
    case SafetensorsDtype::kU8:
      return as(uint8_t{});
    case SafetensorsDtype::kBool:
      return ConvertAll<int64_t>(t, [](const char* p) { return int64_t{*p != 0}; });
    default:
      return WrongDtype(t, name, "an integer dtype (not U64) or BOOL", name_);
  }
}

}  // namespace sluice::formats
