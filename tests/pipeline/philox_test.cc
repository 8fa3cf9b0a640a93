#include "sluice/pipeline/philox.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <set>

namespace sluice::pipeline {
namespace {

// Random123 tests/kat_vectors, philox4x32 10 (also in TensorFlow's philox test and other ports).
TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(Philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(
      Philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
      (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      Philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
      (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(PhiloxTest, IsConstexpr) {
  static_assert(Philox4x32_10({0, 0, 0, 0}, {0, 0})[0] == 0x6627e8d5);
}

TEST(PhiloxTest, StreamLaysOutCounterAsBlockSampleEpoch) {
  const uint64_t seed = 0x0123456789abcdefULL;
  const uint64_t index = 0x0000000500000007ULL;
  PhiloxStream s(seed, 3, index);
  for (uint32_t block = 0; block < 3; ++block) {
    const PhiloxCounter expect = Philox4x32_10({block, 7, 5, 3}, {0x89abcdef, 0x01234567});
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(s.NextUint32(), expect[i]) << "block " << block << " i " << i;
  }
}

TEST(PhiloxTest, SameKeySameDrawsDifferentKeyDifferentDraws) {
  PhiloxStream a(42, 1, 1000), b(42, 1, 1000);
  PhiloxStream other_sample(42, 1, 1001), other_epoch(42, 2, 1000), other_seed(43, 1, 1000);
  bool differ_sample = false, differ_epoch = false, differ_seed = false;
  for (int i = 0; i < 16; ++i) {
    const uint32_t x = a.NextUint32();
    EXPECT_EQ(x, b.NextUint32());
    differ_sample |= x != other_sample.NextUint32();
    differ_epoch |= x != other_epoch.NextUint32();
    differ_seed |= x != other_seed.NextUint32();
  }
  EXPECT_TRUE(differ_sample && differ_epoch && differ_seed);
}

TEST(PhiloxTest, UniformFloatInUnitIntervalWithMeanHalf) {
  PhiloxStream s(7, 0, 0);
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const float u = s.UniformFloat();
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);  // sd of the mean = 0.29 / sqrt(n) = 0.00065
}

TEST(PhiloxTest, UniformIntCoversClosedRangeEvenly) {
  PhiloxStream s(9, 0, 0);
  std::array<int, 9> counts{};
  const int n = 90000;
  for (int i = 0; i < n; ++i) {
    const int v = s.UniformInt(-4, 4);
    ASSERT_GE(v, -4);
    ASSERT_LE(v, 4);
    ++counts[v + 4];
  }
  for (int c : counts) EXPECT_NEAR(c, n / 9, 500);  // sd ~ 94
  EXPECT_EQ(s.UniformInt(5, 5), 5);
}

TEST(PhiloxTest, UniformUintNonPowerOfTwo) {
  PhiloxStream s(11, 0, 0);
  std::set<uint32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint32_t v = s.UniformUint(3);
    ASSERT_LT(v, 3u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 3u);
  // A range just above 2^31 rejects almost half the draws; must still terminate and stay in range.
  for (int i = 0; i < 1000; ++i) ASSERT_LT(s.UniformUint(0x80000001u), 0x80000001u);
}

}  // namespace
}  // namespace sluice::pipeline
