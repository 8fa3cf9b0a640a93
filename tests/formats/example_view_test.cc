// ScanExample / FeatureView against the protobuf-based Example::Parse, which is the reference: on
// every input, Parse and ScanExample must accept and reject alike (bar the documented "unsupported"
// cases) and agree on every feature's values.
#include "sluice/formats/example_view.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <random>

#include "sluice/formats/example.h"

namespace sluice::formats {
namespace {

// Hand-encoded protobuf wire bytes, independent of the protobuf library and of our encoder.
std::string Varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
  return s;
}
std::string Tag(int number, int wire_type) { return Varint((number << 3) | wire_type); }
std::string Len(int number, std::string_view payload) {  // length-delimited field
  return Tag(number, 2) + Varint(payload.size()) + std::string(payload);
}
std::string Fixed32(uint32_t bits) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &bits, 4);
  return s;
}
std::string PackedFloats(const std::vector<float>& v) {
  std::string s(4 * v.size(), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return Len(1, s);
}
std::string UnpackedFloat(float f) { return Tag(1, 5) + Fixed32(std::bit_cast<uint32_t>(f)); }
std::string PackedInt64s(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += Varint(static_cast<uint64_t>(x));
  return Len(1, s);
}
std::string UnpackedInt64(int64_t v) { return Tag(1, 0) + Varint(static_cast<uint64_t>(v)); }
std::string BytesBody(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += Len(1, x);
  return s;
}
// Feature members: 1 bytes_list, 2 float_list, 3 int64_list.
std::string Entry(std::string_view key, std::string_view feature) {
  return Len(1, key) + Len(2, feature);
}
std::string ExampleOf(const std::vector<std::string>& entries) {
  std::string features;
  for (const std::string& e : entries) features += Len(1, e);
  return Len(1, features);
}

// One unknown field of each wire type protobuf skips, with a field number the message doesn't use.
std::string UnknownFields(int number) {
  return Tag(number, 0) + Varint(uint64_t{1} << 63) + Tag(number, 1) + std::string(8, '\x07') +
         Len(number, "junk") + Tag(number, 5) + Fixed32(0xdeadbeef);
}

bool SameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  // Bitwise, so NaN payloads compare equal.
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), 4 * a.size()) == 0);
}

// Does `view` hold exactly `feature`'s values (nullptr: the key is absent)?
testing::AssertionResult ViewMatches(const FeatureView& view, const Feature* feature) {
  if (feature == nullptr) {
    if (view.kind == FeatureKind::kNone) return testing::AssertionSuccess();
    return testing::AssertionFailure() << "absent key scanned as " << FeatureKindName(view.kind);
  }
  if (view.kind != feature->kind) {
    return testing::AssertionFailure() << "kind " << FeatureKindName(view.kind) << ", Parse says "
                                       << FeatureKindName(feature->kind);
  }
  auto size = view.size();
  if (!size.ok()) return testing::AssertionFailure() << size.status().ToString();
  if (*size != feature->size()) {
    return testing::AssertionFailure() << "size " << *size << ", Parse says " << feature->size();
  }
  switch (feature->kind) {
    case FeatureKind::kBytes: {
      std::vector<std::string_view> got;
      if (Status s = view.Bytes(&got); !s.ok()) return testing::AssertionFailure() << s.ToString();
      if (!std::equal(got.begin(), got.end(), feature->bytes.begin(), feature->bytes.end())) {
        return testing::AssertionFailure() << "bytes values differ";
      }
      if (!got.empty() && *view.FirstBytes() != got[0]) {
        return testing::AssertionFailure() << "FirstBytes differs";
      }
      break;
    }
    case FeatureKind::kInt64: {
      std::vector<int64_t> got;
      if (Status s = view.Int64s(&got); !s.ok()) return testing::AssertionFailure() << s.ToString();
      if (got != feature->int64s) return testing::AssertionFailure() << "int64 values differ";
      if (!got.empty() && *view.FirstInt64() != got[0]) {
        return testing::AssertionFailure() << "FirstInt64 differs";
      }
      break;
    }
    case FeatureKind::kFloat: {
      std::vector<float> got;
      if (Status s = view.Floats(&got); !s.ok()) return testing::AssertionFailure() << s.ToString();
      if (!SameFloats(got, feature->floats)) return testing::AssertionFailure() << "floats differ";
      break;
    }
    case FeatureKind::kNone:
      break;
  }
  return testing::AssertionSuccess();
}

class ExampleViewTest : public testing::Test {
 protected:
  // Scans a copy of `bytes` (kept in scanned_, which the views borrow) for `keys`; the views land
  // in views_.
  Status Scan(std::string_view bytes, const std::vector<std::string>& keys) {
    scanned_.assign(bytes);
    const std::vector<std::string_view> key_views(keys.begin(), keys.end());
    views_.assign(keys.size(), FeatureView{});
    return ScanExample(scanned_, key_views, views_);
  }
  const FeatureView& View(size_t i) const { return views_[i]; }

  // The contract: Parse fails => ScanExample fails with DataLoss; Parse succeeds => ScanExample
  // over all its keys plus absent ones succeeds (unless `allow_unsupported` and it reports
  // "unsupported") and every view equals Parse's feature. Returns whether Parse succeeded.
  bool ExpectAgrees(std::string_view bytes, bool allow_unsupported = false) {
    auto parsed = Example::Parse(bytes);
    std::vector<std::string> keys{"absent", "image/encoded"};
    if (parsed.ok()) {
      for (const auto& [key, f] : parsed->features()) keys.push_back(key);
    }
    Status s = Scan(bytes, keys);
    if (!parsed.ok()) {
      EXPECT_EQ(s.code(), StatusCode::kDataLoss)
          << "Parse failed but ScanExample: " << s.ToString();
      return false;
    }
    if (!s.ok()) {
      const bool unsupported = s.message().starts_with("unsupported");
      EXPECT_TRUE(allow_unsupported && unsupported) << s.ToString();
      EXPECT_EQ(s.code(), StatusCode::kDataLoss);
      return true;
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      EXPECT_TRUE(ViewMatches(views_[i], parsed->Find(keys[i]))) << "key '" << keys[i] << "'";
    }
    return true;
  }

  std::string scanned_;
  std::vector<FeatureView> views_;
};

// A random feature: kind, list length (often empty) and values from wide ranges.
Feature RandomFeature(std::mt19937& rng) {
  Feature f;
  f.kind = static_cast<FeatureKind>(rng() % 4);
  const size_t n = rng() % 3 == 0 ? 0 : rng() % 6;
  for (size_t i = 0; i < n; ++i) {
    switch (f.kind) {
      case FeatureKind::kBytes:
        f.bytes.push_back(std::string(rng() % 40, 'a' + rng() % 26));
        break;
      case FeatureKind::kFloat:
        f.floats.push_back(std::bit_cast<float>(uint32_t(rng())));
        break;
      case FeatureKind::kInt64: {
        const int64_t choices[] = {0,
                                   -1,
                                   std::numeric_limits<int64_t>::min(),
                                   std::numeric_limits<int64_t>::max(),
                                   int64_t(rng()) - (1 << 30),
                                   int64_t(uint64_t(rng()) << 32 | rng())};
        f.int64s.push_back(choices[rng() % 6]);
        break;
      }
      case FeatureKind::kNone:
        break;
    }
  }
  return f;
}

std::string RandomKey(std::mt19937& rng) {
  if (rng() % 8 == 0) return "";
  std::string key(1 + rng() % 12, '\0');
  for (char& c : key)
    c = static_cast<char>(rng() % 8 == 0 ? rng() : 'a' + rng() % 4);  // some non-UTF-8
  return key;
}

// Encodes `f` as a Feature message with the choices our encoder never makes: unpacked or split
// packed fields, unknown fields, the oneof member written twice.
std::string RandomFeatureWire(const Feature& f, std::mt19937& rng) {
  std::string list;
  const auto maybe_unknown = [&] {
    if (rng() % 4 == 0) list += UnknownFields(2 + rng() % 5);
  };
  switch (f.kind) {
    case FeatureKind::kBytes:
      for (const std::string& b : f.bytes) {
        maybe_unknown();
        list += Len(1, b);
      }
      break;
    case FeatureKind::kFloat:
      for (size_t i = 0; i < f.floats.size();) {
        maybe_unknown();
        const size_t chunk = 1 + rng() % 3;
        if (rng() % 2) {
          list += UnpackedFloat(f.floats[i++]);
        } else {
          std::vector<float> part(f.floats.begin() + i,
                                  f.floats.begin() + std::min(f.floats.size(), i + chunk));
          i += part.size();
          list += PackedFloats(part);
        }
      }
      break;
    case FeatureKind::kInt64:
      for (size_t i = 0; i < f.int64s.size();) {
        maybe_unknown();
        const size_t chunk = 1 + rng() % 3;
        if (rng() % 2) {
          list += UnpackedInt64(f.int64s[i++]);
        } else {
          std::vector<int64_t> part(f.int64s.begin() + i,
                                    f.int64s.begin() + std::min(f.int64s.size(), i + chunk));
          i += part.size();
          list += PackedInt64s(part);
        }
      }
      break;
    case FeatureKind::kNone:
      break;
  }
  maybe_unknown();
  std::string feature;
  const int member = f.kind == FeatureKind::kBytes   ? 1
                     : f.kind == FeatureKind::kFloat ? 2
                     : f.kind == FeatureKind::kInt64 ? 3
                                                     : 0;
  if (rng() % 4 == 0) {  // another member first, which the last one replaces
    const int other = member == 0 ? 1 + rng() % 3 : 1 + (member + rng() % 2) % 3;
    feature += Len(other, other == 1   ? BytesBody({"overwritten"})
                          : other == 2 ? PackedFloats({9.0f})
                                       : PackedInt64s({9}));
  }
  if (member != 0) {
    feature += Len(member, list);
    if (rng() % 4 == 0) feature += Len(member, "");  // merging an empty list changes nothing
  }
  if (rng() % 4 == 0) feature += UnknownFields(4 + rng() % 5);
  return feature;
}

TEST_F(ExampleViewTest, RandomExamplesAgreeWithParse) {
  std::mt19937 rng(20240611);
  for (int iter = 0; iter < 400; ++iter) {
    Example ex;
    const int n = rng() % 12;
    for (int i = 0; i < n; ++i) ex.SetFeature(RandomKey(rng), RandomFeature(rng));
    SCOPED_TRACE("iteration " + std::to_string(iter));
    const std::string bytes = ex.Serialize();
    ASSERT_TRUE(ExpectAgrees(bytes));
    // And against the builder's own values, not only Parse's.
    std::vector<std::string> keys;
    for (const auto& [key, f] : ex.features()) keys.push_back(key);
    ASSERT_TRUE(Scan(bytes, keys).ok());
    for (size_t i = 0; i < keys.size(); ++i) EXPECT_TRUE(ViewMatches(View(i), ex.Find(keys[i])));
  }
}

TEST_F(ExampleViewTest, RandomWireEncodingsAgreeWithParse) {
  // Shuffled entries, value before key, unpacked/mixed lists, unknown fields at every level,
  // duplicate keys, and Example.features split across several occurrences.
  std::mt19937 rng(7);
  for (int iter = 0; iter < 400; ++iter) {
    std::vector<std::string> entries;
    const int n = rng() % 10;
    std::vector<std::string> keys;
    for (int i = 0; i < n; ++i) {
      keys.push_back(rng() % 4 == 0 && !keys.empty() ? keys[rng() % keys.size()] : RandomKey(rng));
      const std::string feature = RandomFeatureWire(RandomFeature(rng), rng);
      std::string entry;
      switch (rng() % 5) {
        case 0:
          entry = Len(2, feature) + Len(1, keys.back());
          break;
        case 1:
          entry = Len(1, keys.back());
          break;  // no value: empty Feature
        case 2:
          entry = Len(2, feature);
          break;  // no key: ""
        default:
          entry = Entry(keys.back(), feature);
          break;
      }
      if (rng() % 4 == 0) entry += UnknownFields(3 + rng() % 4);
      entries.push_back(entry);
    }
    std::string bytes;
    for (size_t i = 0; i < entries.size();) {
      std::string features;
      for (size_t k = 1 + rng() % 3; k > 0 && i < entries.size(); --k) {
        if (rng() % 5 == 0) features += UnknownFields(2 + rng() % 4);
        features += Len(1, entries[i++]);
      }
      bytes += Len(1, features);
      if (rng() % 5 == 0) bytes += UnknownFields(2 + rng() % 4);
    }
    SCOPED_TRACE("iteration " + std::to_string(iter));
    ASSERT_TRUE(ExpectAgrees(bytes));
  }
}

TEST_F(ExampleViewTest, RandomCorruptionsAgreeWithParse) {
  // Byte flips, insertions and deletions of a real Example: accepted and rejected alike.
  std::mt19937 rng(99);
  Example ex;
  ex.SetBytes("image/encoded", std::string(40, 'j'))
      .SetInt64List("image/class/label", {3, -7, 1LL << 40})
      .SetFloatList("bbox", {0.5f, 0.25f})
      .SetBytesList("text", {"a", "", "bc"});
  const std::string original = ex.Serialize();
  int parsed = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    std::string bytes = original;
    for (int k = 1 + rng() % 3; k > 0 && !bytes.empty(); --k) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0:
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:
          bytes.insert(bytes.begin() + at, static_cast<char>(rng()));
          break;
        default:
          bytes.erase(at, 1);
          break;
      }
    }
    SCOPED_TRACE("iteration " + std::to_string(iter));
    parsed += ExpectAgrees(bytes, /*allow_unsupported=*/true);
    if (HasFailure()) break;
  }
  EXPECT_GT(parsed, 100);  // the mutations exercised the success path too
}

TEST_F(ExampleViewTest, FindsRequestedKeysOnly) {
  Example ex;
  ex.SetBytes("image/encoded", "JPEGDATA").SetInt64("image/class/label", -3).SetFloat("w", 1.5f);
  const std::string bytes = ex.Serialize();
  ASSERT_TRUE(Scan(bytes, {"image/class/label", "nope", "image/encoded", "image/encoded"}).ok());
  EXPECT_EQ(*View(0).FirstInt64(), -3);
  EXPECT_EQ(View(1).kind, FeatureKind::kNone);
  EXPECT_EQ(*View(2).FirstBytes(), "JPEGDATA");
  EXPECT_EQ(*View(3).FirstBytes(), "JPEGDATA");  // a key asked twice fills both slots
  // Zero-copy: the value points into the Example's bytes.
  EXPECT_GE(View(2).FirstBytes()->data(), scanned_.data());
  EXPECT_LT(View(2).FirstBytes()->data(), scanned_.data() + scanned_.size());
  ASSERT_TRUE(Scan("", {"a"}).ok());  // the empty Example
  EXPECT_EQ(View(0).kind, FeatureKind::kNone);
}

TEST_F(ExampleViewTest, DuplicateKeyLastEntryWins) {
  const std::string bytes = ExampleOf({Entry("a", Len(3, PackedInt64s({1}))), Entry("b", ""),
                                       Entry("a", Len(1, BytesBody({"x", "y"})))});
  ASSERT_TRUE(Scan(bytes, {"a"}).ok());
  std::vector<std::string_view> values;
  ASSERT_TRUE(View(0).Bytes(&values).ok());
  EXPECT_EQ(values, (std::vector<std::string_view>{"x", "y"}));
  auto parsed = Example::Parse(bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Find("a")->bytes, (std::vector<std::string>{"x", "y"}));
  ExpectAgrees(bytes);
  // An empty later entry still replaces the earlier one whole.
  ExpectAgrees(ExampleOf({Entry("a", Len(3, PackedInt64s({1}))), Len(1, "a")}));
}

TEST_F(ExampleViewTest, RepeatedFeaturesFieldsConcatenate) {
  const std::string bytes =
      ExampleOf({Entry("a", Len(3, PackedInt64s({1})))}) +
      ExampleOf({Entry("b", Len(3, PackedInt64s({2}))), Entry("a", Len(3, PackedInt64s({3})))});
  ASSERT_TRUE(Scan(bytes, {"a", "b"}).ok());
  EXPECT_EQ(*View(0).FirstInt64(), 3);
  EXPECT_EQ(*View(1).FirstInt64(), 2);
  ExpectAgrees(bytes);
}

TEST_F(ExampleViewTest, UnpackedAndMixedEncodings) {
  const std::string floats = UnpackedFloat(1.0f) + PackedFloats({2.0f, 3.0f}) + UnpackedFloat(4.0f);
  const std::string ints = UnpackedInt64(-1) +
                           PackedInt64s({std::numeric_limits<int64_t>::min(), 5}) +
                           UnpackedInt64(std::numeric_limits<int64_t>::max());
  const std::string bytes = ExampleOf({Entry("f", Len(2, floats)), Entry("i", Len(3, ints))});
  ASSERT_TRUE(Scan(bytes, {"f", "i"}).ok());
  std::vector<float> f;
  ASSERT_TRUE(View(0).Floats(&f).ok());
  EXPECT_EQ(f, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(*View(0).size(), 4u);
  std::vector<int64_t> i;
  ASSERT_TRUE(View(1).Int64s(&i).ok());
  EXPECT_EQ(i, (std::vector<int64_t>{-1, std::numeric_limits<int64_t>::min(), 5,
                                     std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(*View(1).FirstInt64(), -1);
  ExpectAgrees(bytes);
}

TEST_F(ExampleViewTest, UnknownFieldsAtEveryLevelAreSkipped) {
  const std::string list = UnknownFields(7) + PackedInt64s({9}) + UnknownFields(2);
  const std::string feature = UnknownFields(4) + Len(3, list) + UnknownFields(100000);
  const std::string entry = UnknownFields(3) + Entry("k", feature) + UnknownFields(5);
  const std::string features = UnknownFields(2) + Len(1, entry) + UnknownFields(9);
  const std::string bytes = UnknownFields(2) + Len(1, features) + UnknownFields(1 << 20);
  ASSERT_TRUE(Scan(bytes, {"k"}).ok());
  EXPECT_EQ(*View(0).FirstInt64(), 9);
  EXPECT_EQ(*View(0).size(), 1u);
  ExpectAgrees(bytes);
  // Bytes lists skip unknown fields in between values too.
  ExpectAgrees(ExampleOf({Entry("b", Len(1, Len(1, "x") + UnknownFields(3) + Len(1, "y")))}));
}

TEST_F(ExampleViewTest, KnownFieldWithWrongWireTypeIsAnUnknownField) {
  // protobuf skips these rather than failing, so we do too.
  const std::string list = Tag(1, 0) + Varint(5) + Len(1, "v") + Tag(1, 5) + Fixed32(0);
  const std::string feature = Tag(1, 0) + Varint(1) + Len(1, list) + Tag(2, 5) + Fixed32(0);
  const std::string entry =
      Tag(1, 0) + Varint(1) + Entry("k", feature) + Tag(2, 1) + Fixed32(0) + Fixed32(0);
  const std::string bytes = Tag(1, 0) + Varint(1) + Len(1, Tag(1, 5) + Fixed32(0) + Len(1, entry)) +
                            Tag(1, 1) + std::string(8, '\0');
  ASSERT_TRUE(Example::Parse(bytes).ok());
  ASSERT_TRUE(Scan(bytes, {"k"}).ok());
  std::vector<std::string_view> values;
  ASSERT_TRUE(View(0).Bytes(&values).ok());
  EXPECT_EQ(values, std::vector<std::string_view>{"v"});
  ExpectAgrees(bytes);
  // Int64List.value as fixed64, FloatList.value as varint: skipped, not values.
  ExpectAgrees(ExampleOf({Entry("i", Len(3, Tag(1, 1) + std::string(8, '\1') + UnpackedInt64(2))),
                          Entry("f", Len(2, Tag(1, 0) + Varint(3) + UnpackedFloat(2.5f)))}));
}

TEST_F(ExampleViewTest, FeatureWithTwoOneofMembersLastWins) {
  const std::string two = Len(1, BytesBody({"x"})) + Len(3, PackedInt64s({4}));
  const std::string two_bytes = ExampleOf({Entry("k", two)});
  ASSERT_TRUE(Scan(two_bytes, {"k"}).ok());
  EXPECT_EQ(View(0).kind, FeatureKind::kInt64);
  EXPECT_EQ(*View(0).FirstInt64(), 4);
  ExpectAgrees(two_bytes);
  // Switching back starts a fresh list: the first bytes_list's values are gone.
  const std::string three = ExampleOf({Entry("k", two + Len(1, BytesBody({"z"})))});
  ASSERT_TRUE(Scan(three, {"k"}).ok());
  EXPECT_EQ(*View(0).size(), 1u);
  EXPECT_EQ(*View(0).FirstBytes(), "z");
  ExpectAgrees(three);
  // The two value fields of one entry merge as one Feature message.
  ExpectAgrees(ExampleOf(
      {Len(1, "k") + Len(2, Len(2, PackedFloats({1}))) + Len(2, Len(3, PackedInt64s({8})))}));
}

TEST_F(ExampleViewTest, SameMemberTwiceMergesWhenOneListHasValues) {
  // Empty lists before and after: exactly protobuf's answer.
  const std::string ok =
      Len(1, BytesBody({})) + Len(1, Len(7, "unknown")) + Len(1, BytesBody({"b"})) + Len(1, "");
  const std::string bytes = ExampleOf({Entry("k", ok)});
  ExpectAgrees(bytes);
  ASSERT_TRUE(Scan(bytes, {"k"}).ok());
  EXPECT_EQ(*View(0).FirstBytes(), "b");
  ExpectAgrees(ExampleOf(
      {Len(1, "k") + Len(2, Len(3, PackedInt64s({}))) + Len(2, Len(3, PackedInt64s({1, 2})))}));
}

TEST_F(ExampleViewTest, MergedNonEmptyListsAreUnsupported) {
  const std::string merged = Len(1, BytesBody({"a"})) + Len(1, BytesBody({"b"}));
  const std::string bytes = ExampleOf({Entry("k", merged), Entry("j", Len(3, PackedInt64s({1})))});
  // protobuf concatenates the values; one view cannot.
  auto parsed = Example::Parse(bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Find("k")->bytes, (std::vector<std::string>{"a", "b"}));
  Status s = Scan(bytes, {"j", "k"});
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(s.message().starts_with("unsupported")) << s.ToString();
  EXPECT_NE(s.message().find("'k'"), std::string::npos) << s.ToString();
  EXPECT_EQ(View(0).kind, FeatureKind::kNone);  // reset on error
  ExpectAgrees(bytes, /*allow_unsupported=*/true);
  // Only an error when it decides a requested key.
  ASSERT_TRUE(Scan(bytes, {"j"}).ok());
  EXPECT_EQ(*View(0).FirstInt64(), 1);
  const std::string replaced =
      ExampleOf({Entry("k", merged), Entry("k", Len(1, BytesBody({"c"})))});
  ExpectAgrees(replaced);
  ASSERT_TRUE(Scan(replaced, {"k"}).ok());
  EXPECT_EQ(*View(0).FirstBytes(), "c");
}

TEST_F(ExampleViewTest, EntryWithoutKeyOrValue) {
  const std::string bytes =
      ExampleOf({Len(2, Len(3, PackedInt64s({6}))), Len(1, "nofeature"), Len(1, "") + Len(2, "")});
  ASSERT_TRUE(Scan(bytes, {"", "nofeature"}).ok());
  EXPECT_EQ(View(0).kind, FeatureKind::kNone);  // the later entry for "" has an empty Feature
  EXPECT_EQ(View(1).kind, FeatureKind::kNone);
  EXPECT_EQ(*View(1).size(), 0u);
  ExpectAgrees(bytes);
  ExpectAgrees(ExampleOf({Len(2, Len(3, PackedInt64s({6})))}));
  // The last of two key fields names the entry.
  ExpectAgrees(ExampleOf({Len(1, "first") + Len(2, Len(3, PackedInt64s({6}))) + Len(1, "second")}));
}

TEST_F(ExampleViewTest, LargeAndNegativeInt64s) {
  std::vector<int64_t> values{0,
                              1,
                              -1,
                              127,
                              128,
                              -128,
                              1LL << 62,
                              -(1LL << 62),
                              std::numeric_limits<int64_t>::min(),
                              std::numeric_limits<int64_t>::max()};
  Example ex;
  ex.SetInt64List("v", values);
  const std::string canonical = ex.Serialize();  // the views borrow it
  ASSERT_TRUE(Scan(canonical, {"v"}).ok());
  std::vector<int64_t> got;
  ASSERT_TRUE(View(0).Int64s(&got).ok());
  EXPECT_EQ(got, values);
  EXPECT_EQ(*View(0).size(), values.size());
  // Non-canonical varints protobuf accepts: padded with 0x80 bytes, 10th byte with high bits set.
  const std::string padded_one("\x81\x80\x80\x00", 4);
  const std::string ten_bytes = std::string("\x85") + std::string(8, '\x80') + "\x7f";
  const std::string bytes = ExampleOf({Entry("v", Len(3, Len(1, padded_one + ten_bytes)))});
  ASSERT_TRUE(Scan(bytes, {"v"}).ok());
  ASSERT_TRUE(View(0).Int64s(&got).ok());
  EXPECT_EQ(got, (std::vector<int64_t>{1, std::numeric_limits<int64_t>::min() + 5}));
  ExpectAgrees(bytes);
}

TEST_F(ExampleViewTest, TruncatedPrefixesAreDataLossOrAgree) {
  Example ex;
  ex.SetBytes("image/encoded", std::string(300, '\xff'))
      .SetInt64("image/class/label", -5)
      .SetFloatList("image/object/bbox/xmin", {0.25f, 0.5f})
      .SetBytesList("image/text", {"", "tench"})
      .SetInt64List("empty", {});
  const std::string bytes = ex.Serialize();
  int accepted = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE("prefix of " + std::to_string(n) + " bytes");
    accepted += ExpectAgrees(std::string_view(bytes).substr(0, n));
    if (HasFailure()) break;
  }
  EXPECT_EQ(accepted, 1);  // only the empty prefix is a valid Example
}

TEST_F(ExampleViewTest, GroupWireTypeIsUnsupported) {
  // protobuf skips a well-formed group as an unknown field; we decline it.
  const std::string group = Tag(5, 3) + Tag(1, 0) + Varint(1) + Tag(5, 4);
  for (const std::string& bytes :
       {group + ExampleOf({Entry("k", "")}), ExampleOf({Entry("k", group)}),
        ExampleOf({Entry("k", Len(1, group))})}) {
    EXPECT_TRUE(Example::Parse(bytes).ok());
    Status s = Scan(bytes, {"k"});
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_TRUE(s.message().starts_with("unsupported group")) << s.ToString();
    ExpectAgrees(bytes, /*allow_unsupported=*/true);
  }
}

TEST_F(ExampleViewTest, MalformedWireDataIsDataLoss) {
  const std::string good_entry = Entry("k", Len(3, PackedInt64s({1})));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"truncated varint", Tag(2, 0) + "\x80"},
      {"varint longer than 10 bytes", Tag(2, 0) + std::string(10, '\x80') + "\x01"},
      {"truncated tag", "\x80"},
      {"tag varint longer than 5 bytes", std::string(5, '\x80') + "\x01"},
      {"length past end", Tag(1, 2) + Varint(5) + "abc"},
      {"length of 2 GiB", Tag(1, 2) + "\xff\xff\xff\xff\x0f"},
      {"truncated fixed64", Tag(2, 1) + "1234567"},
      {"truncated fixed32", Tag(2, 5) + "123"},
      {"field number 0", Tag(0, 0) + Varint(1)},
      {"field number 0", std::string(1, '\0')},
      {"end-group tag", Tag(2, 4)},
      {"invalid wire type", Tag(2, 6)},
      {"invalid wire type", Tag(2, 7) + good_entry},
      {"not a multiple of 4", ExampleOf({Entry("k", Len(2, Len(1, "abcdef")))})},
      {"truncated varint", ExampleOf({Entry("k", Len(3, Len(1, "\x01\x80")))})},
      {"truncated fixed32", ExampleOf({Entry("k", Len(2, Tag(1, 5) + "ab"))})},
      {"length past end", ExampleOf({Entry("k", Len(1, Tag(1, 2) + Varint(9) + "x"))})},
      // Malformed data in a feature nobody asked for fails the whole Example, as Parse does.
      {"truncated varint", ExampleOf({good_entry, Entry("other", Len(3, Tag(1, 0) + "\xff"))})},
  };
  for (const auto& [reason, bytes] : cases) {
    SCOPED_TRACE(reason);
    EXPECT_FALSE(Example::Parse(bytes).ok());
    Status s = Scan(bytes, {"k"});
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find(reason), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find(" at byte "), std::string::npos) << s.ToString();
    EXPECT_EQ(View(0).kind, FeatureKind::kNone);
  }
}

TEST_F(ExampleViewTest, KeysAndOutputsMustMatchInSize) {
  std::vector<std::string_view> keys{"a", "b"};
  std::vector<FeatureView> out(1);
  EXPECT_EQ(ScanExample("", keys, out).code(), StatusCode::kInvalidArgument);
}

TEST(FeatureViewTest, KindMismatchAndEmptyListAreInvalidArgument) {
  const std::string empty_ints = PackedInt64s({});
  FeatureView ints{FeatureKind::kInt64, empty_ints};
  EXPECT_EQ(ints.FirstBytes().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ints.FirstInt64().status().code(), StatusCode::kInvalidArgument);  // no values
  std::vector<float> floats{1.0f};
  EXPECT_EQ(ints.Floats(&floats).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(floats.empty());  // cleared even on error
  std::vector<std::string_view> bytes;
  EXPECT_EQ(ints.Bytes(&bytes).code(), StatusCode::kInvalidArgument);
  FeatureView none;
  EXPECT_EQ(*none.size(), 0u);
  std::vector<int64_t> i64;
  EXPECT_EQ(none.Int64s(&i64).code(), StatusCode::kInvalidArgument);
  FeatureView empty_bytes{FeatureKind::kBytes, ""};
  EXPECT_EQ(empty_bytes.FirstBytes().status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(empty_bytes.Bytes(&bytes).ok());
  EXPECT_TRUE(bytes.empty());
}

TEST(FeatureViewTest, HandMadeMalformedListIsDataLoss) {
  // Lists the views borrow: a packed varint cut short, a packed float list of 3 bytes, a value
  // longer than its list, and a good value followed by wire type 7.
  const std::string ints = Tag(1, 2) + Varint(1) + "\x80";
  const std::string floats = Tag(1, 2) + Varint(3) + "abc";
  const std::string bytes = Tag(1, 2) + Varint(30) + "short";
  const std::string tail = Len(1, "ok") + Tag(2, 7);
  const FeatureView bad_ints{FeatureKind::kInt64, ints};
  EXPECT_EQ(bad_ints.size().status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(bad_ints.FirstInt64().status().code(), StatusCode::kDataLoss);
  std::vector<int64_t> i64{7};
  EXPECT_EQ(bad_ints.Int64s(&i64).code(), StatusCode::kDataLoss);
  EXPECT_TRUE(i64.empty());
  const FeatureView bad_floats{FeatureKind::kFloat, floats};
  std::vector<float> f;
  EXPECT_EQ(bad_floats.Floats(&f).code(), StatusCode::kDataLoss);
  const FeatureView bad_bytes{FeatureKind::kBytes, bytes};
  EXPECT_EQ(bad_bytes.FirstBytes().status().code(), StatusCode::kDataLoss);
  std::vector<std::string_view> b;
  EXPECT_EQ(bad_bytes.Bytes(&b).code(), StatusCode::kDataLoss);
  // FirstBytes reads only up to the first value: a bad tail is found by the full walks.
  const FeatureView bad_tail{FeatureKind::kBytes, tail};
  EXPECT_EQ(*bad_tail.FirstBytes(), "ok");
  EXPECT_EQ(bad_tail.size().status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace sluice::formats
