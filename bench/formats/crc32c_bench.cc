// CRC32C throughput per core: the SSE4.2 three-chain path vs the slicing-by-8 fallback, across
// sizes.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "sluice/formats/crc32c.h"

namespace {

using sluice::formats::crc32c::ExtendHardware;
using sluice::formats::crc32c::ExtendPortable;
using sluice::formats::crc32c::HardwareAvailable;

std::vector<char> Data(size_t n) {
  std::vector<char> v(n);
  std::mt19937 rng(1);
  for (auto& c : v) c = static_cast<char>(rng());
  return v;
}

void BM_Crc32c_Hardware(benchmark::State& state) {
  if (!HardwareAvailable()) {
    state.SkipWithError("no SSE4.2");
    return;
  }
  auto data = Data(state.range(0));
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = ExtendHardware(crc, data.data(), data.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Crc32c_Hardware)->RangeMultiplier(4)->Range(64, 4 << 20);

void BM_Crc32c_Portable(benchmark::State& state) {
  auto data = Data(state.range(0));
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = ExtendPortable(crc, data.data(), data.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Crc32c_Portable)->RangeMultiplier(4)->Range(64, 4 << 20);

}  // namespace
