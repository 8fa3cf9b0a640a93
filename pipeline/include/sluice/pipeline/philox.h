// Philox4x32-10 counter-based random numbers (Salmon, Moraes, Dror, Shaw, "Parallel random numbers:
// as easy as 1, 2, 3", SC'11; constants from D. E. Shaw Research's Random123).
//
// Every random choice the pipeline makes for a sample is a pure function of (seed, epoch, sample
// index, draw number): a sample's crop and flip do not depend on which thread ran it or on what
// other samples drew before it, so batches are identical for any thread count and a resumed run
// continues exactly.
#ifndef SLUICE_PIPELINE_PHILOX_H_
#define SLUICE_PIPELINE_PHILOX_H_

#include <array>
#include <cstdint>

namespace sluice::pipeline {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53;  // multipliers of the two S-boxes
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57;
inline constexpr uint32_t kPhiloxW0 =
    0x9E3779B9;  // Weyl key increments (golden ratio, sqrt(3) - 1)
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85;

// The bijection itself: 10 rounds of Philox4x32 on `counter` under `key`. Matches Random123's
// philox4x32(ctr, key) and its kat_vectors.
constexpr PhiloxCounter Philox4x32_10(PhiloxCounter c, PhiloxKey k) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {  // the key schedule bumps the key between rounds
      k[0] += kPhiloxW0;
      k[1] += kPhiloxW1;
    }
    const uint64_t p0 = uint64_t{kPhiloxM0} * c[0];
    const uint64_t p1 = uint64_t{kPhiloxM1} * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
  }
  return c;
}

// The draws of one sample in one epoch. Key = the 64-bit run seed; counter = {block, sample index
// low, sample index high, epoch}: block b yields draws 4b..4b+3, so a sample may draw 2^34 values
// before its stream would wrap. Cheap to construct; not thread-safe (one per sample, owned by the
// caller).
class PhiloxStream {
 public:
  PhiloxStream(uint64_t seed, uint32_t epoch, uint64_t sample_index)
      : key_{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)},
        counter_{0, static_cast<uint32_t>(sample_index), static_cast<uint32_t>(sample_index >> 32),
                 epoch} {}

  // The next raw 32-bit draw.
  uint32_t NextUint32() {
    if (used_ == 4) {
      block_ = Philox4x32_10(counter_, key_);
      ++counter_[0];
      used_ = 0;
    }
    return block_[used_++];
  }

  // Uniform in [0, 1): the top 24 bits of a draw times 2^-24, so every value is exact in float and
  // 1.0f is never returned.
  float UniformFloat() { return static_cast<float>(NextUint32() >> 8) * (1.0f / 16777216.0f); }

  // Uniform in [0, n), without modulo bias (rejection of the incomplete last stripe). n must be >
  // 0.
  uint32_t UniformUint(uint32_t n) {
    // Accept x < limit, where limit is the largest multiple of n representable in 2^32.
    const uint32_t rejected = static_cast<uint32_t>(-n) % n;  // 2^32 mod n
    for (;;) {
      const uint32_t x = NextUint32();
      if (x >= rejected) return (x - rejected) % n;
    }
  }

  // Uniform integer in the closed range [lo, hi]; requires lo <= hi.
  int UniformInt(int lo, int hi) {
    const uint32_t span = static_cast<uint32_t>(static_cast<int64_t>(hi) - lo);
    if (span == 0xFFFFFFFFu) return static_cast<int>(NextUint32());
    return static_cast<int>(static_cast<int64_t>(lo) + UniformUint(span + 1));
  }

  // A fair coin (e.g. the random horizontal flip).
  bool Bernoulli() { return UniformFloat() < 0.5f; }

 private:
  PhiloxKey key_;
  PhiloxCounter counter_;  // counter_[0] = next block to generate
  PhiloxCounter block_{};
  int used_ = 4;  // draws consumed from block_; 4 = empty
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_PHILOX_H_
