// Zero-copy scanner for serialized tf.Example protos, for the input pipeline's hot path.
//
// ScanExample walks the wire bytes once and hands back, for each requested feature name, a view of
// its serialized value list (BytesList/FloatList/Int64List body) inside the caller's buffer;
// nothing is copied or allocated. Example::Parse (example.h) builds the whole map through protobuf
// and is the reference: for every input the two accept, they give the same values, and ScanExample
// fails exactly where Parse fails, apart from the two "unsupported" cases below, which Parse
// accepts.
//
// Wire format (formats/proto/example.proto): Example{Features features=1}
// Features{map<string,Feature> feature=1}, a map entry being {string key=1; Feature value=2};
// Feature{oneof{BytesList bytes_list=1; FloatList float_list=2; Int64List int64_list=3}}; each list
// {repeated value=1}.
//
// Protobuf (3.21) semantics reproduced here:
//  - Repeated occurrences of Example.features merge, so their map entries form one sequence; for a
//  key
//    present in more than one entry the LAST entry wins whole (no merge across entries).
//  - A map entry without a key has key ""; without a value, an empty Feature (kind kNone). A key or
//  value
//    field given twice: the last key wins, the values merge (parsed as one Feature message).
//  - Feature's oneof: a different member replaces the list set so far (last member wins); the same
//  member
//    again merges, i.e. the values concatenate.
//  - Float and int64 lists accept packed and unpacked values, mixed, in any number of fields.
//  - Unknown fields are skipped at every level (wire types varint, fixed64, length-delimited,
//  fixed32).
//    A known field number with an unexpected wire type (e.g. a varint Example.features) is also an
//    unknown field to protobuf, so it is skipped here too, not an error.
//  - Malformed wire data anywhere in the Example (not only in the requested features) is DataLoss
//  with
//    a short reason and byte offset: truncated or over-long varints (tags: 5 bytes, values: 10,
//    lengths: 5 bytes and < 2 GiB), a length past the end of its enclosing message, field number 0,
//    wire types 4 (end-group without a start), 6 and 7, packed floats whose length is not a
//    multiple of 4, a packed varint running past its list. Keys are not checked for UTF-8: the
//    .proto is proto2, as TensorFlow's own fast parser, and neither checks them.
// Out of scope, reported as DataLoss whose message starts with "unsupported" (protobuf accepts
// these; no TensorFlow writer produces them):
//  - Groups (wire type 3) anywhere, which protobuf would skip as unknown fields.
//  - A requested feature whose values protobuf would merge from two or more list messages that each
//    hold values (e.g. bytes_list{"a"} bytes_list{"b"} in one Feature): one contiguous view cannot
//    describe it. Merges where all but one of the lists are empty are handled exactly, and the case
//    is only an error when it decides a requested key's result.
//
// Thread-safety: ScanExample and the FeatureView methods are pure functions of their arguments.
#ifndef SLUICE_FORMATS_EXAMPLE_VIEW_H_
#define SLUICE_FORMATS_EXAMPLE_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "sluice/formats/example.h"
#include "sluice/formats/status.h"

namespace sluice::formats {

// View of one feature's value list inside serialized Example bytes (no copies; valid while the
// bytes live). Views produced by ScanExample hold a validated list; the methods still bounds-check
// every read (DataLoss on malformed bytes), so a hand-made view is safe too. Methods asking for a
// kind other than `kind` (including kNone) return InvalidArgument.
struct FeatureView {
  FeatureKind kind = FeatureKind::kNone;  // kNone: key absent, or a Feature with no list set
  std::string_view list;  // the serialized BytesList/FloatList/Int64List message body

  // Number of values (0 for kNone). Walks the list: O(values) for int64, O(fields) otherwise.
  Result<size_t> size() const;
  // The first value; InvalidArgument if the list is empty. Reads only up to that value.
  Result<std::string_view> FirstBytes() const;
  Result<int64_t> FirstInt64() const;
  // All values, in protobuf's order; `out` is cleared first. Bytes values are views into `list`.
  Status Bytes(std::vector<std::string_view>* out) const;
  Status Int64s(std::vector<int64_t>* out) const;
  Status Floats(std::vector<float>* out) const;
};

// Finds the features named in `keys` in one pass over `example` (a serialized tensorflow.Example):
// out[i] receives keys[i]'s view, kind kNone when absent. A key may be requested more than once.
// Every out[i] is reset to kNone first and again on error. InvalidArgument unless keys.size() ==
// out.size(); DataLoss (see above) for malformed bytes or an unsupported encoding. Cost: one walk
// over the wire structure of every feature (values of the bytes lists are skipped by length, not
// read) plus keys.size() string compares per feature.
Status ScanExample(std::string_view example, std::span<const std::string_view> keys,
                   std::span<FeatureView> out);

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_EXAMPLE_VIEW_H_
