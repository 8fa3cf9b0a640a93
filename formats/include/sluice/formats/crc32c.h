// CRC32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF.
// crc32c("123456789") == 0xe3069283.
//
// Two implementations, chosen once at run time: SSE4.2's crc32 instruction over three interleaved
// streams (combined with precomputed shift tables) where the CPU has it, and a slicing-by-8 table
// fallback elsewhere. Both are tested against each other and the RFC 3720 vectors.
#ifndef SLUICE_FORMATS_CRC32C_H_
#define SLUICE_FORMATS_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::formats::crc32c {

// Returns the CRC32C of data[0, n) continuing from `crc` (the CRC of the preceding bytes; 0 for none).
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

// The individual implementations, exposed for tests and benchmarks.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);
// Only valid when HardwareAvailable().
uint32_t ExtendHardware(uint32_t crc, const void* data, size_t n);
bool HardwareAvailable();

// TFRecord's masking: a CRC of data that itself contains CRCs is weak, so the stored value is rotated
// and offset. masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8.
constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace sluice::formats::crc32c

#endif  // SLUICE_FORMATS_CRC32C_H_
