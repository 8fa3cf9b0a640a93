// CIFAR-10 ingest: the binary tarball's records and the python-pickle batches, their class names,
// the seeded split and the PNG/RAW Example builders. Longer than most files because the two input
// formats share the record model, the label checks and the split; each section stands alone.
#include "sluice/ingest/cifar.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <utility>

#include "text_util.h"

namespace sluice::ingest {
namespace {

// ---- A data-only pickle interpreter
// --------------------------------------------------------------- Opcode reference: CPython
// Lib/pickletools.py. Values live in an arena owned by the Unpickler; a REDUCE of a global is
// recorded (callable, args) rather than called, except for the one pure conversion Python 3 uses
// for bytes at protocol 2, _codecs.encode(str, "latin1").

struct PyObj;
using Ref = std::shared_ptr<PyObj>;

struct PyObj {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kBytes,
    kStr,
    kList,
    kTuple,
    kDict,
    kGlobal,
    kObject
  };
  Kind kind = Kind::kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;              // kBytes, kStr (UTF-8), kGlobal ("module name")
  std::vector<Ref> items;     // kList, kTuple; kDict as key, value, key, value...
  Ref callable, args, state;  // kObject: callable(*args), then __setstate__(state)

  bool IsText() const { return kind == Kind::kBytes || kind == Kind::kStr; }
  bool IsSequence() const { return kind == Kind::kList || kind == Kind::kTuple; }
  bool IsGlobal(std::string_view module, std::string_view name) const {
    return kind == Kind::kGlobal && s.size() == module.size() + 1 + name.size() &&
           s.compare(0, module.size(), module) == 0 && s[module.size()] == ' ' &&
           s.compare(module.size() + 1, name.size(), name) == 0;
  }
};

class Unpickler {
 public:
  Unpickler(std::string_view bytes, std::string_view name) : in_(bytes), name_(name) {}
  // Breaks every link between arena objects before they are freed, so neither a cycle (possible
  // through the memo) nor a deeply nested value makes destruction leak or recurse.
  ~Unpickler() {
    for (const Ref& o : arena_) {
      o->items.clear();
      o->callable.reset();
      o->args.reset();
      o->state.reset();
    }
  }

  Result<Ref> Load();

  Status Error(std::string_view why) const {
    return Status::DataLoss(name_ + ": pickle byte " + std::to_string(op_pos_) + ": " +
                            std::string(why));
  }

 private:
  Ref New(PyObj::Kind kind) {
    arena_.push_back(std::make_shared<PyObj>());
    arena_.back()->kind = kind;
    return arena_.back();
  }
  Status Need(size_t n) const {
    if (in_.size() - pos_ < n) {
      return Status::DataLoss(name_ + ": pickle truncated at byte " + std::to_string(in_.size()) +
                              " (opcode at byte " + std::to_string(op_pos_) + " needs " +
                              std::to_string(n) + " more bytes)");
    }
    return Status::Ok();
  }
  // Little-endian unsigned integer of n bytes.
  Result<uint64_t> Uint(size_t n) {
    SLUICE_RETURN_IF_ERROR(Need(n));
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= uint64_t{static_cast<uint8_t>(in_[pos_ + k])} << (8 * k);
    pos_ += n;
    return v;
  }
  Result<std::string_view> Bytes(uint64_t n) {
    SLUICE_RETURN_IF_ERROR(Need(n));
    std::string_view out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  Result<std::string_view> Line() {
    size_t nl = in_.find('\n', pos_);
    if (nl == std::string_view::npos) return Error("GLOBAL name without newline");
    std::string_view out = in_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return out;
  }
  Result<Ref> Pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
      return Error("stack underflow");
    }
    Ref r = std::move(stack_.back());
    stack_.pop_back();
    return r;
  }
  Result<Ref> Top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
      return Error("stack underflow");
    }
    return stack_.back();
  }
  // Pops everything above the last MARK, and the mark.
  Result<std::vector<Ref>> PopMark() {
    if (marks_.empty()) return Error("no MARK on the stack");
    size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(std::make_move_iterator(stack_.begin() + mark),
                           std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }
  Status Memoize(uint64_t index) {
    SLUICE_ASSIGN_OR_RETURN(Ref top, Top());
    memo_[index] = std::move(top);
    return Status::Ok();
  }
  Status Get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) return Error("memo key " + std::to_string(index) + " not defined");
    stack_.push_back(it->second);
    return Status::Ok();
  }
  Status PushText(PyObj::Kind kind, uint64_t n) {
    SLUICE_ASSIGN_OR_RETURN(std::string_view data, Bytes(n));
    Ref r = New(kind);
    r->s = std::string(data);
    stack_.push_back(std::move(r));
    return Status::Ok();
  }
  // A string whose length precedes it in a `width`-byte little-endian field.
  Status PushSized(PyObj::Kind kind, size_t width) {
    SLUICE_ASSIGN_OR_RETURN(uint64_t n, Uint(width));
    return PushText(kind, n);
  }
  Status PushInt(int64_t v) {
    Ref r = New(PyObj::Kind::kInt);
    r->i = v;
    stack_.push_back(std::move(r));
    return Status::Ok();
  }
  Status PushTuple(std::vector<Ref> items) {
    Ref r = New(PyObj::Kind::kTuple);
    r->items = std::move(items);
    stack_.push_back(std::move(r));
    return Status::Ok();
  }
  Status Reduce();
  Status Step(uint8_t op);

  std::string_view in_;
  std::string name_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
  std::vector<Ref> arena_;
  bool stopped_ = false;
};

// Latin-1 from UTF-8 (the inverse of Python's str(b, "latin1")), for _codecs.encode(s, "latin1").
Result<std::string> Latin1FromUtf8(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  for (size_t k = 0; k < utf8.size(); ++k) {
    uint8_t c = static_cast<uint8_t>(utf8[k]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if ((c & 0xE0) == 0xC0 && k + 1 < utf8.size() && c <= 0xC3 &&
               (static_cast<uint8_t>(utf8[k + 1]) & 0xC0) == 0x80) {
      out.push_back(
          static_cast<char>(((c & 0x03) << 6) | (static_cast<uint8_t>(utf8[k + 1]) & 0x3F)));
      ++k;
    } else {
      return Status::DataLoss("text is not latin-1 (byte " + std::to_string(k) + ")");
    }
  }
  return out;
}

Status Unpickler::Reduce() {
  SLUICE_ASSIGN_OR_RETURN(Ref args, Pop());
  SLUICE_ASSIGN_OR_RETURN(Ref callable, Pop());
  if (args->kind != PyObj::Kind::kTuple) return Error("REDUCE arguments are not a tuple");
  if (callable->IsGlobal("_codecs", "encode") && args->items.size() == 2 &&
      args->items[0]->kind == PyObj::Kind::kStr && args->items[1]->kind == PyObj::Kind::kStr &&
      (args->items[1]->s == "latin1" || args->items[1]->s == "latin-1")) {
    Result<std::string> bytes = Latin1FromUtf8(args->items[0]->s);
    if (!bytes.ok()) return Error("_codecs.encode: " + bytes.status().message());
    Ref r = New(PyObj::Kind::kBytes);
    r->s = std::move(bytes).value();
    stack_.push_back(std::move(r));
    return Status::Ok();
  }
  if ((callable->IsGlobal("__builtin__", "bytes") || callable->IsGlobal("builtins", "bytes")) &&
      args->items.empty()) {
    stack_.push_back(New(PyObj::Kind::kBytes));
    return Status::Ok();
  }
  Ref r = New(PyObj::Kind::kObject);
  r->callable = std::move(callable);
  r->args = std::move(args);
  stack_.push_back(std::move(r));
  return Status::Ok();
}

Status Unpickler::Step(uint8_t op) {
  using K = PyObj::Kind;
  switch (op) {
    case 0x80: {  // PROTO
      SLUICE_ASSIGN_OR_RETURN(uint64_t proto, Uint(1));
      if (proto > 5)
        return Status::Unsupported(name_ + ": pickle protocol " + std::to_string(proto));
      return Status::Ok();
    }
    case 0x95:
      return Uint(8).status();  // FRAME: a length hint only.
    case '(':
      marks_.push_back(stack_.size());
      return Status::Ok();
    case '.':
      stopped_ = true;
      return Status::Ok();
    case 'N':
      stack_.push_back(New(K::kNone));
      return Status::Ok();
    case 0x88:
    case 0x89: {  // NEWTRUE, NEWFALSE
      Ref r = New(K::kBool);
      r->i = op == 0x88;
      stack_.push_back(std::move(r));
      return Status::Ok();
    }
    case 'K': {
      SLUICE_ASSIGN_OR_RETURN(uint64_t v, Uint(1));
      return PushInt(static_cast<int64_t>(v));
    }
    case 'M': {
      SLUICE_ASSIGN_OR_RETURN(uint64_t v, Uint(2));
      return PushInt(static_cast<int64_t>(v));
    }
    case 'J': {
      SLUICE_ASSIGN_OR_RETURN(uint64_t v, Uint(4));
      return PushInt(static_cast<int32_t>(static_cast<uint32_t>(v)));
    }
    case 0x8a: {  // LONG1: n-byte little-endian two's complement.
      SLUICE_ASSIGN_OR_RETURN(uint64_t n, Uint(1));
      if (n > 8) return Status::Unsupported(name_ + ": integer wider than 64 bits in pickle");
      if (n == 0) return PushInt(0);
      SLUICE_ASSIGN_OR_RETURN(uint64_t v, Uint(n));
      if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // Sign-extend.
      return PushInt(static_cast<int64_t>(v));
    }
    case 'G': {  // BINFLOAT, big-endian double.
      SLUICE_ASSIGN_OR_RETURN(std::string_view b, Bytes(8));
      uint64_t bits = 0;
      for (char c : b) bits = (bits << 8) | static_cast<uint8_t>(c);
      Ref r = New(K::kFloat);
      std::memcpy(&r->f, &bits, sizeof(bits));
      stack_.push_back(std::move(r));
      return Status::Ok();
    }
    case 'U':  // SHORT_BINSTRING (Python 2 str)
    case 'C':  // SHORT_BINBYTES
      return PushSized(K::kBytes, 1);
    case 'T': {  // BINSTRING: a signed 4-byte length.
      SLUICE_ASSIGN_OR_RETURN(uint64_t n, Uint(4));
      if (n & 0x80000000u) return Error("negative BINSTRING length");
      return PushText(K::kBytes, n);
    }
    case 'B':  // BINBYTES
      return PushSized(K::kBytes, 4);
    case 0x8e:  // BINBYTES8
      return PushSized(K::kBytes, 8);
    case 0x8c:  // SHORT_BINUNICODE
      return PushSized(K::kStr, 1);
    case 'X':  // BINUNICODE
      return PushSized(K::kStr, 4);
    case 0x8d:  // BINUNICODE8
      return PushSized(K::kStr, 8);
    case '}':
      stack_.push_back(New(K::kDict));
      return Status::Ok();
    case ']':
      stack_.push_back(New(K::kList));
      return Status::Ok();
    case ')':
      return PushTuple({});
    case 't': {
      SLUICE_ASSIGN_OR_RETURN(std::vector<Ref> items, PopMark());
      return PushTuple(std::move(items));
    }
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      size_t n = op - 0x84;
      std::vector<Ref> items(n);
      for (size_t k = n; k-- > 0;) {
        SLUICE_ASSIGN_OR_RETURN(items[k], Pop());
      }
      return PushTuple(std::move(items));
    }
    case 'q': {
      SLUICE_ASSIGN_OR_RETURN(uint64_t k, Uint(1));
      return Memoize(k);
    }
    case 'r': {
      SLUICE_ASSIGN_OR_RETURN(uint64_t k, Uint(4));
      return Memoize(k);
    }
    case 0x94:
      return Memoize(memo_.size());  // MEMOIZE
    case 'h': {
      SLUICE_ASSIGN_OR_RETURN(uint64_t k, Uint(1));
      return Get(k);
    }
    case 'j': {
      SLUICE_ASSIGN_OR_RETURN(uint64_t k, Uint(4));
      return Get(k);
    }
    case 'c': {  // GLOBAL "module\nname\n"
      SLUICE_ASSIGN_OR_RETURN(std::string_view module, Line());
      SLUICE_ASSIGN_OR_RETURN(std::string_view attr, Line());
      Ref r = New(K::kGlobal);
      r->s = std::string(module) + " " + std::string(attr);
      stack_.push_back(std::move(r));
      return Status::Ok();
    }
    case 0x93: {  // STACK_GLOBAL
      SLUICE_ASSIGN_OR_RETURN(Ref attr, Pop());
      SLUICE_ASSIGN_OR_RETURN(Ref module, Pop());
      if (module->kind != K::kStr || attr->kind != K::kStr)
        return Error("STACK_GLOBAL of non-strings");
      Ref r = New(K::kGlobal);
      r->s = module->s + " " + attr->s;
      stack_.push_back(std::move(r));
      return Status::Ok();
    }
    case 'R':
      return Reduce();
    case 'b': {  // BUILD
      SLUICE_ASSIGN_OR_RETURN(Ref state, Pop());
      SLUICE_ASSIGN_OR_RETURN(Ref obj, Top());
      if (obj->kind != K::kObject)
        return Error("BUILD on a value that is not a constructed object");
      obj->state = std::move(state);
      return Status::Ok();
    }
    case 'a': {  // APPEND
      SLUICE_ASSIGN_OR_RETURN(Ref item, Pop());
      SLUICE_ASSIGN_OR_RETURN(Ref list, Top());
      if (list->kind != K::kList) return Error("APPEND to a non-list");
      list->items.push_back(std::move(item));
      return Status::Ok();
    }
    case 'e': {  // APPENDS
      SLUICE_ASSIGN_OR_RETURN(std::vector<Ref> items, PopMark());
      SLUICE_ASSIGN_OR_RETURN(Ref list, Top());
      if (list->kind != K::kList) return Error("APPENDS to a non-list");
      for (Ref& item : items) list->items.push_back(std::move(item));
      return Status::Ok();
    }
    case 's': {  // SETITEM
      SLUICE_ASSIGN_OR_RETURN(Ref value, Pop());
      SLUICE_ASSIGN_OR_RETURN(Ref key, Pop());
      SLUICE_ASSIGN_OR_RETURN(Ref dict, Top());
      if (dict->kind != K::kDict) return Error("SETITEM on a non-dict");
      dict->items.push_back(std::move(key));
      dict->items.push_back(std::move(value));
      return Status::Ok();
    }
    case 'u': {  // SETITEMS
      SLUICE_ASSIGN_OR_RETURN(std::vector<Ref> items, PopMark());
      SLUICE_ASSIGN_OR_RETURN(Ref dict, Top());
      if (dict->kind != K::kDict) return Error("SETITEMS on a non-dict");
      if (items.size() % 2 != 0) return Error("SETITEMS with an odd number of items");
      for (Ref& item : items) dict->items.push_back(std::move(item));
      return Status::Ok();
    }
    default: {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "0x%02x", op);
      return Status::Unsupported(name_ + ": pickle byte " + std::to_string(op_pos_) + ": opcode " +
                                 buf + " is not used by CIFAR pickles");
    }
  }
}

Result<Ref> Unpickler::Load() {
  while (!stopped_) {
    op_pos_ = pos_;
    if (pos_ >= in_.size()) {
      return Status::DataLoss(name_ + ": pickle truncated at byte " + std::to_string(in_.size()) +
                              " (no STOP opcode)");
    }
    uint8_t op = static_cast<uint8_t>(in_[pos_++]);
    SLUICE_RETURN_IF_ERROR(Step(op));
  }
  if (stack_.size() != 1 || !marks_.empty()) return Error("STOP with a malformed stack");
  return stack_.back();
}

// The value of dict[key], accepting either a bytes or a str key (Python 2 vs 3 pickles).
const PyObj* DictGet(const PyObj& dict, std::string_view key) {
  for (size_t k = 0; k + 1 < dict.items.size(); k += 2) {
    if (dict.items[k]->IsText() && dict.items[k]->s == key) return dict.items[k + 1].get();
  }
  return nullptr;
}

Status FieldError(std::string_view name, std::string_view key, std::string_view why) {
  return Status::DataLoss(std::string(name) + ": b\"" + std::string(key) +
                          "\": " + std::string(why));
}

// A list/tuple of bytes or str values.
Result<std::vector<std::string>> TextList(const PyObj* v, std::string_view name,
                                          std::string_view key) {
  if (v == nullptr) return FieldError(name, key, "missing");
  if (!v->IsSequence()) return FieldError(name, key, "is not a list");
  std::vector<std::string> out;
  out.reserve(v->items.size());
  for (size_t k = 0; k < v->items.size(); ++k) {
    if (!v->items[k]->IsText())
      return FieldError(name, key, "item " + std::to_string(k) + " is not a string");
    out.push_back(v->items[k]->s);
  }
  return out;
}

// Checks that `v` is numpy's pickled uint8 ndarray of shape (rows, 3072) and returns its raw bytes.
// Pickled ndarray: _reconstruct(ndarray, (0,), b"b") then BUILD with
// (version, shape, dtype, is_fortran, raw bytes); dtype is dtype("u1", ...) with its own BUILD.
Result<std::pair<size_t, const std::string*>> UInt8Matrix(const PyObj* v, std::string_view name,
                                                          std::string_view key) {
  using K = PyObj::Kind;
  if (v == nullptr) return FieldError(name, key, "missing");
  if (v->kind != K::kObject || !(v->callable->IsGlobal("numpy.core.multiarray", "_reconstruct") ||
                                 v->callable->IsGlobal("numpy._core.multiarray", "_reconstruct"))) {
    return FieldError(name, key, "is not a pickled numpy array");
  }
  const PyObj* state = v->state.get();
  if (state == nullptr || state->kind != K::kTuple ||
      (state->items.size() != 5 && state->items.size() != 4)) {
    return FieldError(name, key, "numpy array state is not a 4- or 5-tuple");
  }
  size_t first = state->items.size() == 5 ? 1 : 0;  // Version 1 states lead with the version.
  const PyObj& shape = *state->items[first];
  const PyObj& dtype = *state->items[first + 1];
  const PyObj& fortran = *state->items[first + 2];
  const PyObj& data = *state->items[first + 3];
  if (dtype.kind != K::kObject || !dtype.callable->IsGlobal("numpy", "dtype") || !dtype.args ||
      dtype.args->items.empty() || !dtype.args->items[0]->IsText()) {
    return FieldError(name, key, "numpy array without a dtype");
  }
  if (dtype.args->items[0]->s != "u1") {
    return Status::Unsupported(std::string(name) + ": b\"" + std::string(key) + "\": dtype " +
                               dtype.args->items[0]->s + ", want u1 (uint8)");
  }
  if ((fortran.kind == K::kBool || fortran.kind == K::kInt) && fortran.i != 0) {
    return Status::Unsupported(std::string(name) + ": b\"" + std::string(key) +
                               "\": Fortran-ordered array");
  }
  if (shape.kind != K::kTuple || shape.items.size() != 2 || shape.items[0]->kind != K::kInt ||
      shape.items[1]->kind != K::kInt || shape.items[0]->i < 0 ||
      shape.items[1]->i != static_cast<int64_t>(kCifarImageBytes)) {
    return FieldError(name, key, "shape is not (N, 3072)");
  }
  size_t rows = static_cast<size_t>(shape.items[0]->i);
  if (data.kind != K::kBytes) return FieldError(name, key, "array data is not a byte string");
  if (data.s.size() != rows * kCifarImageBytes) {
    return FieldError(name, key,
                      "array data has " + std::to_string(data.s.size()) + " bytes, shape needs " +
                          std::to_string(rows * kCifarImageBytes));
  }
  return std::pair<size_t, const std::string*>(rows, &data.s);
}

}  // namespace

Result<std::vector<CifarRecord>> ParseCifarBinary(std::string_view bytes, std::string_view name) {
  if (bytes.empty()) return Status::DataLoss(std::string(name) + ": empty CIFAR file");
  if (bytes.size() % kCifarRecordBytes != 0) {
    return Status::DataLoss(std::string(name) + ": size " + std::to_string(bytes.size()) +
                            " is not a multiple of the 3073-byte CIFAR record (" +
                            std::to_string(bytes.size() / kCifarRecordBytes) + " whole records + " +
                            std::to_string(bytes.size() % kCifarRecordBytes) + " bytes)");
  }
  size_t n = bytes.size() / kCifarRecordBytes;
  std::vector<CifarRecord> records(n);
  for (size_t r = 0; r < n; ++r) {
    size_t offset = r * kCifarRecordBytes;
    uint8_t label = static_cast<uint8_t>(bytes[offset]);
    if (label >= kCifarNumClasses) {
      return Status::DataLoss(std::string(name) + ": record " + std::to_string(r) + " at byte " +
                              std::to_string(offset) + ": label " + std::to_string(label) +
                              " is not in 0..9");
    }
    records[r].label = label;
    std::memcpy(records[r].pixels_chw.data(), bytes.data() + offset + 1, kCifarImageBytes);
  }
  return records;
}

Result<std::vector<std::string>> ParseCifarMeta(std::string_view text, std::string_view name) {
  std::vector<std::string> names;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Strip(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty()) names.emplace_back(line);
  }
  if (names.size() != static_cast<size_t>(kCifarNumClasses)) {
    return Status::DataLoss(std::string(name) + ": has " + std::to_string(names.size()) +
                            " class names, want 10");
  }
  return names;
}

void PlanarToInterleaved(const uint8_t* planar, int height, int width, int channels,
                         uint8_t* interleaved) {
  const size_t plane = static_cast<size_t>(height) * width;
  for (int c = 0; c < channels; ++c) {
    const uint8_t* src = planar + c * plane;
    uint8_t* dst = interleaved + c;
    for (size_t p = 0; p < plane; ++p) dst[p * channels] = src[p];
  }
}

std::array<uint8_t, kCifarImageBytes> CifarToHwc(const CifarRecord& record) {
  std::array<uint8_t, kCifarImageBytes> hwc;
  PlanarToInterleaved(record.pixels_chw.data(), kCifarHeight, kCifarWidth, kCifarChannels,
                      hwc.data());
  return hwc;
}

Result<CifarPythonBatch> ParseCifarPythonBatch(std::string_view bytes, std::string_view name) {
  Unpickler unpickler(bytes, name);
  SLUICE_ASSIGN_OR_RETURN(Ref root, unpickler.Load());
  if (root->kind != PyObj::Kind::kDict) {
    return Status::DataLoss(std::string(name) + ": pickle does not hold a dict");
  }
  CifarPythonBatch batch;
  SLUICE_ASSIGN_OR_RETURN(auto matrix, UInt8Matrix(DictGet(*root, "data"), name, "data"));
  auto [rows, data] = matrix;
  const PyObj* labels = DictGet(*root, "labels");
  if (labels == nullptr) return FieldError(name, "labels", "missing");
  if (!labels->IsSequence()) return FieldError(name, "labels", "is not a list");
  if (labels->items.size() != rows) {
    return FieldError(name, "labels",
                      "has " + std::to_string(labels->items.size()) + " entries for " +
                          std::to_string(rows) + " images");
  }
  batch.records.resize(rows);
  for (size_t r = 0; r < rows; ++r) {
    const PyObj& label = *labels->items[r];
    if (label.kind != PyObj::Kind::kInt || label.i < 0 || label.i >= kCifarNumClasses) {
      return FieldError(name, "labels", "entry " + std::to_string(r) + " is not an int in 0..9");
    }
    batch.records[r].label = static_cast<uint8_t>(label.i);
    std::memcpy(batch.records[r].pixels_chw.data(), data->data() + r * kCifarImageBytes,
                kCifarImageBytes);
  }
  if (const PyObj* filenames = DictGet(*root, "filenames")) {
    SLUICE_ASSIGN_OR_RETURN(batch.filenames, TextList(filenames, name, "filenames"));
    if (batch.filenames.size() != rows) {
      return FieldError(name, "filenames",
                        "has " + std::to_string(batch.filenames.size()) + " entries for " +
                            std::to_string(rows) + " images");
    }
  }
  if (const PyObj* label = DictGet(*root, "batch_label")) {
    if (!label->IsText()) return FieldError(name, "batch_label", "is not a string");
    batch.batch_label = label->s;
  }
  return batch;
}

Result<std::vector<std::string>> ParseCifarPythonMeta(std::string_view bytes,
                                                      std::string_view name) {
  Unpickler unpickler(bytes, name);
  SLUICE_ASSIGN_OR_RETURN(Ref root, unpickler.Load());
  if (root->kind != PyObj::Kind::kDict) {
    return Status::DataLoss(std::string(name) + ": pickle does not hold a dict");
  }
  SLUICE_ASSIGN_OR_RETURN(std::vector<std::string> names,
                          TextList(DictGet(*root, "label_names"), name, "label_names"));
  if (names.size() != static_cast<size_t>(kCifarNumClasses)) {
    return FieldError(name, "label_names",
                      "has " + std::to_string(names.size()) + " names, want 10");
  }
  return names;
}

}  // namespace sluice::ingest
