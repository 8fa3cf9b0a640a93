// Internal: SplitMix64 (Steele, Lea and Flood, "Fast Splittable Pseudorandom Number Generators",
// OOPSLA 2014; constants as in Vigna's reference code). Tiny, fast and fully specified, so shuffles and
// synthetic images are the same on every platform and compiler (std::uniform_int_distribution and
// std::shuffle are implementation-defined). Not thread-safe; give each use its own instance.
#ifndef SLUICE_INGEST_SRC_SPLITMIX64_H_
#define SLUICE_INGEST_SRC_SPLITMIX64_H_

#include <cstdint>

namespace sluice::ingest {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0, by rejection: no modulo bias (shard plans must be exactly uniform).
  uint64_t Below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return x % n;
  }
  // Uniform in [0, 1), 53 bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [lo, hi] (inclusive). Modulo bias below 2^-32 for the small ranges of image
  // jitter; use Below() where exactness matters.
  int64_t UniformInt(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  uint64_t state_;
};

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_SRC_SPLITMIX64_H_
