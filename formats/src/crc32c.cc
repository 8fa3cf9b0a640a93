// CRC32C: a slicing-by-8 table implementation and an SSE4.2 one.
//
// The hardware path runs three independent crc32 chains over three adjacent blocks, because the crc32
// instruction has a latency of 3 cycles but a throughput of 1 per cycle: one chain reaches a third of
// the possible speed. The three partial CRCs are joined with the linearity of the CRC register update:
// reg(A || B, r) = shift(reg(A, r), |B|) ^ reg(B, 0), where shift(x, L) is the register after feeding L
// zero bytes from x. shift is linear in x, so it is a lookup in four 256-entry tables per block size,
// built at first use from the 32 basis vectors (the technique of Mark Adler's crc32c.c).
#include "sluice/formats/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <nmmintrin.h>
#define SLUICE_CRC32C_X86 1
#endif

namespace sluice::formats::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

using Table = std::array<std::array<uint32_t, 256>, 8>;

constexpr Table MakeSlicingTable() {
  Table t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
  return t;
}

constexpr Table kSlicing = MakeSlicingTable();

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts only (static_assert in record code)
}

}  // namespace

uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = kSlicing[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    --n;
  }
  while (n >= 8) {
    uint64_t v = Load64(p) ^ c;
    c = kSlicing[7][v & 0xff] ^ kSlicing[6][(v >> 8) & 0xff] ^ kSlicing[5][(v >> 16) & 0xff] ^
        kSlicing[4][(v >> 24) & 0xff] ^ kSlicing[3][(v >> 32) & 0xff] ^
        kSlicing[2][(v >> 40) & 0xff] ^ kSlicing[1][(v >> 48) & 0xff] ^ kSlicing[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = kSlicing[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

#if SLUICE_CRC32C_X86

namespace {

constexpr size_t kLong = 8192;  // block per chain for large inputs
constexpr size_t kShort = 256;  // block per chain for the tail

using ShiftTable = std::array<std::array<uint32_t, 256>, 4>;

__attribute__((target("sse4.2"))) uint32_t ZerosRegister(uint32_t reg, size_t len) {
  uint64_t c = reg;
  for (size_t i = 0; i < len; i += 8) c = _mm_crc32_u64(c, 0);
  return static_cast<uint32_t>(c);
}

__attribute__((target("sse4.2"))) ShiftTable MakeShiftTable(size_t len) {
  std::array<uint32_t, 32> basis;
  for (int i = 0; i < 32; ++i) basis[i] = ZerosRegister(uint32_t{1} << i, len);
  ShiftTable t{};
  for (int k = 0; k < 4; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t v = 0;
      for (int bit = 0; bit < 8; ++bit) {
        if (b & (1u << bit)) v ^= basis[8 * k + bit];
      }
      t[k][b] = v;
    }
  }
  return t;
}

inline uint32_t Shift(const ShiftTable& t, uint32_t x) {
  return t[0][x & 0xff] ^ t[1][(x >> 8) & 0xff] ^ t[2][(x >> 16) & 0xff] ^ t[3][x >> 24];
}

struct ShiftTables {
  ShiftTable long_table = MakeShiftTable(kLong);
  ShiftTable short_table = MakeShiftTable(kShort);
};

const ShiftTables& Tables() {
  static const ShiftTables tables;  // thread-safe lazy init
  return tables;
}

// Three chains over blocks of `block` bytes each, while at least 3 blocks remain.
__attribute__((target("sse4.2"))) inline uint64_t ThreeWay(uint64_t c, const uint8_t*& p,
                                                            size_t& n, size_t block,
                                                            const ShiftTable& table) {
  while (n >= 3 * block) {
    uint64_t c0 = c, c1 = 0, c2 = 0;
    const uint8_t* end = p + block;
    do {
      c0 = _mm_crc32_u64(c0, Load64(p));
      c1 = _mm_crc32_u64(c1, Load64(p + block));
      c2 = _mm_crc32_u64(c2, Load64(p + 2 * block));
      p += 8;
    } while (p < end);
    c0 = Shift(table, static_cast<uint32_t>(c0)) ^ c1;
    c = Shift(table, static_cast<uint32_t>(c0)) ^ c2;
    p += 2 * block;
    n -= 3 * block;
  }
  return c;
}

}  // namespace

bool HardwareAvailable() {
  static const bool available = __builtin_cpu_supports("sse4.2");
  return available;
}

__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t crc, const void* data,
                                                          size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = static_cast<uint32_t>(~crc);
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  if (n >= 3 * kShort) {
    const ShiftTables& t = Tables();
    c = ThreeWay(c, p, n, kLong, t.long_table);
    c = ThreeWay(c, p, n, kShort, t.short_table);
  }
  while (n >= 8) {
    c = _mm_crc32_u64(c, Load64(p));
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return ~static_cast<uint32_t>(c);
}

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  return HardwareAvailable() ? ExtendHardware(crc, data, n) : ExtendPortable(crc, data, n);
}

#else  // no x86 crc32 instruction

bool HardwareAvailable() { return false; }
uint32_t ExtendHardware(uint32_t crc, const void* data, size_t n) {
  return ExtendPortable(crc, data, n);
}
uint32_t Extend(uint32_t crc, const void* data, size_t n) { return ExtendPortable(crc, data, n); }

#endif

}  // namespace sluice::formats::crc32c
