// Decoding the features a training step needs from one serialized tf.Example: ScanExample
// (zero-copy views) against Example::Parse (protobuf, every feature copied), on an ImageNet-style
// record (build_imagenet_data.py's 15 features around a JPEG, swept 0 and 110 KiB) and a
// CIFAR-style record (3072 raw bytes, 7 features). Both look up image/encoded and image/class/label
// and read them out. Read items/s (records/s): bytes/s counts the whole record, which the scan
// skips rather than reads.
#include <benchmark/benchmark.h>

#include <array>
#include <random>
#include <string>

#include "bench_inputs.h"
#include "sluice/formats/example.h"
#include "sluice/formats/example_view.h"

namespace {

using namespace sluice::formats;
using sluice::bench::ImageNetExample;
using sluice::bench::RandomBytes;

Example CifarExample() {
  Example ex;
  ex.SetBytes("image/encoded", RandomBytes(32 * 32 * 3, 4))
      .SetBytes("image/format", "RAW")
      .SetInt64("image/height", 32)
      .SetInt64("image/width", 32)
      .SetInt64("image/channels", 3)
      .SetInt64("image/class/label", 6)
      .SetBytes("image/class/text", "frog");
  return ex;
}

constexpr std::array<std::string_view, 2> kKeys = {"image/encoded", "image/class/label"};

void RunScan(benchmark::State& state, const std::string& bytes) {
  std::array<FeatureView, kKeys.size()> views;
  for (auto _ : state) {
    if (!ScanExample(bytes, kKeys, views).ok()) state.SkipWithError("scan failed");
    auto image = views[0].FirstBytes();
    auto label = views[1].FirstInt64();
    if (!image.ok() || !label.ok()) state.SkipWithError("lookup failed");
    benchmark::DoNotOptimize(image->data());
    benchmark::DoNotOptimize(*label);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * bytes.size());
}

void RunParse(benchmark::State& state, const std::string& bytes) {
  for (auto _ : state) {
    auto ex = Example::Parse(bytes);
    if (!ex.ok()) state.SkipWithError("parse failed");
    auto image = ex->GetBytes(kKeys[0]);
    auto label = ex->GetInt64(kKeys[1]);
    if (!image.ok() || !label.ok()) state.SkipWithError("lookup failed");
    benchmark::DoNotOptimize(image->data());
    benchmark::DoNotOptimize(*label);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * bytes.size());
}

void BM_ExampleView_ScanImageNet(benchmark::State& state) {
  RunScan(state, ImageNetExample(state.range(0)).Serialize());
}
BENCHMARK(BM_ExampleView_ScanImageNet)->Arg(0)->Arg(110 << 10);

void BM_ExampleView_ParseImageNet(benchmark::State& state) {
  RunParse(state, ImageNetExample(state.range(0)).Serialize());
}
BENCHMARK(BM_ExampleView_ParseImageNet)->Arg(0)->Arg(110 << 10);

void BM_ExampleView_ScanCifar(benchmark::State& state) {
  RunScan(state, CifarExample().Serialize());
}
BENCHMARK(BM_ExampleView_ScanCifar);

void BM_ExampleView_ParseCifar(benchmark::State& state) {
  RunParse(state, CifarExample().Serialize());
}
BENCHMARK(BM_ExampleView_ParseCifar);

}  // namespace
