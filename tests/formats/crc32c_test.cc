#include "sluice/formats/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace sluice::formats::crc32c {
namespace {

// RFC 3720 (iSCSI) appendix B.4 test vectors.
TEST(Crc32cTest, Rfc3720Vectors) {
  std::string zeros(32, '\0');
  EXPECT_EQ(Value(zeros), 0x8a9136aau);
  std::string ones(32, '\xff');
  EXPECT_EQ(Value(ones), 0x62a8ab43u);
  std::string inc(32, '\0'), dec(32, '\0');
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<char>(i);
    dec[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(Value(inc), 0x46dd794eu);
  EXPECT_EQ(Value(dec), 0x113fdb5cu);
  // An iSCSI read command PDU.
  const uint8_t pdu[48] = {0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                           0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                           0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                           0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(Value(pdu, sizeof(pdu)), 0xd9963a56u);
}

TEST(Crc32cTest, CheckValue) { EXPECT_EQ(Value("123456789"), 0xe3069283u); }

TEST(Crc32cTest, EmptyIsZero) { EXPECT_EQ(Value("", 0), 0u); }

TEST(Crc32cTest, ExtendEqualsWhole) {
  std::string s = "hello world, this is a test of extension";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(Extend(Value(s.data(), cut), s.data() + cut, s.size() - cut), Value(s)) << cut;
  }
}

// The hardware path's three-way split and table combination must agree with the table-driven path
// for every length around the block boundaries (256 and 8192 per chain) and every alignment.
TEST(Crc32cTest, HardwareMatchesPortableAcrossSizesAndAlignments) {
  if (!HardwareAvailable()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::mt19937 rng(1234);
  std::vector<uint8_t> buf(3 * 8192 * 2 + 64);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  std::vector<size_t> sizes;
  for (size_t n = 0; n < 64; ++n) sizes.push_back(n);
  for (size_t base : {3 * 256, 3 * 8192}) {
    for (int d = -9; d <= 9; ++d) sizes.push_back(base + d);
  }
  sizes.push_back(buf.size() - 64);
  for (size_t n : sizes) {
    for (size_t align = 0; align < 8; ++align) {
      ASSERT_EQ(ExtendHardware(0x12345678, buf.data() + align, n),
                ExtendPortable(0x12345678, buf.data() + align, n))
          << "n=" << n << " align=" << align;
    }
  }
}

TEST(Crc32cTest, MaskRoundTripsAndDiffers) {
  uint32_t crc = Value("foo");
  EXPECT_NE(crc, Mask(crc));
  EXPECT_NE(crc, Mask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Unmask(Mask(Mask(crc)))));
}

}  // namespace
}  // namespace sluice::formats::crc32c
