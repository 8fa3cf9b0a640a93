// Where resnet-train's per-image CPU goes, one core, on real JPEGs held in RAM: libjpeg-turbo's
// full decode (the "decode ceiling"), decoding only resnet-train's crop window at each DCT
// scaling policy, the bicubic resize alone, and the whole ProcessSample (parse + decode + resize +
// flip + normalize). items/s = images/s.
//
// Images: every *.jpg under $SLUICE_BENCH_JPEGS (default /tmp/peers/imagenet_synth/train, written
// by ../shared/peers/make_images.py), at most 1000. The crop windows are resnet-train's own draws
// (seed 0, epoch 0, sample i), so each benchmark sees the same windows.
//
// The host's clock drifts; compare benchmarks of one run, interleaved (the command in
// bench/RESULTS.md): preset_bench --benchmark_enable_random_interleaving=true
// --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <turbojpeg.h>

#include "sluice/formats/example.h"
#include "sluice/formats/image.h"
#include "sluice/formats/image_crop.h"
#include "sluice/pipeline/crop.h"
#include "sluice/pipeline/philox.h"
#include "sluice/pipeline/preset.h"
#include "sluice/pipeline/resize.h"

namespace {

using namespace sluice::pipeline;
namespace formats = sluice::formats;
using formats::ChooseScaleDenom;
using formats::ChooseScaleEighths;
using formats::CropDecodeOptions;
using formats::DecodedCrop;
using formats::DecodeJpegCropEighths;

struct Corpus {
  std::vector<std::string> jpegs;
  std::vector<std::string> records;  // tf.Examples around the same bytes
  std::vector<CropWindow> windows;   // resnet-train's crop of each
  std::vector<formats::ImageInfo> info;
  std::string error;
};

const Corpus& Load() {
  static const Corpus corpus = [] {
    Corpus c;
    const char* env = std::getenv("SLUICE_BENCH_JPEGS");
    const std::filesystem::path root = env ? env : "/tmp/peers/imagenet_synth/train";
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file() && it->path().extension() == ".jpg") files.push_back(it->path());
    }
    if (files.empty()) {
      c.error = "no *.jpg under " + root.string() +
                " (run ../shared/peers/make_images.py or set SLUICE_BENCH_JPEGS)";
      return c;
    }
    std::sort(files.begin(), files.end());
    files.resize(std::min<size_t>(files.size(), 1000));
    for (size_t i = 0; i < files.size(); ++i) {
      std::ifstream in(files[i], std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string bytes = ss.str();
      auto info = formats::ProbeImage(bytes);
      if (!info.ok()) continue;
      PhiloxStream rng(0, 0, i);
      DistortedCropOptions options;
      c.windows.push_back(SampleDistortedCrop(info->height, info->width, {}, options, rng));
      c.info.push_back(*info);
      formats::Example ex;
      ex.SetBytes("image/encoded", bytes).SetInt64("image/class/label", int64_t(i % 10));
      c.records.push_back(ex.Serialize());
      c.jpegs.push_back(std::move(bytes));
    }
    return c;
  }();
  return corpus;
}

void BM_FullDecode(benchmark::State& state) {
  const Corpus& c = Load();
  if (!c.error.empty()) return state.SkipWithError(c.error.c_str());
  size_t i = 0;
  for (auto _ : state) {
    auto image = formats::DecodeImage(c.jpegs[i]);
    if (!image.ok()) return state.SkipWithError(image.status().ToString().c_str());
    benchmark::DoNotOptimize(image->pixels.data());
    i = (i + 1) % c.jpegs.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FullDecode)->Unit(benchmark::kMicrosecond);

// The ceiling as the peers measure it (tjdecode_bench): TurboJPEG's full decode to RGB with its
// defaults (accurate IDCT, fancy upsampling), into a reused buffer; range(0) = 1: TJFLAG_FASTDCT
// (the fast integer IDCT, as the presets decode).
void BM_TurboJpegDecode(benchmark::State& state) {
  const int flags = state.range(0) == 1 ? TJFLAG_FASTDCT : 0;
  const Corpus& c = Load();
  if (!c.error.empty()) return state.SkipWithError(c.error.c_str());
  tjhandle tj = tjInitDecompress();
  std::vector<unsigned char> out;
  size_t i = 0;
  for (auto _ : state) {
    const formats::ImageInfo& info = c.info[i];
    out.resize(size_t(info.width) * info.height * 3);
    const auto* src = reinterpret_cast<const unsigned char*>(c.jpegs[i].data());
    if (tjDecompress2(tj, src, c.jpegs[i].size(), out.data(), info.width, 0, info.height, TJPF_RGB,
                      flags) != 0) {
      state.SkipWithError(tjGetErrorStr2(tj));
      break;
    }
    benchmark::DoNotOptimize(out.data());
    i = (i + 1) % c.jpegs.size();
  }
  tjDestroy(tj);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TurboJpegDecode)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// range(0): 0 = no DCT scaling (window only), 1 = N/8 scaling, 2 = 1/2, 1/4, 1/8 only (the
// presets' choice); range(1): 1 = JDCT_IFAST (the presets' choice, TensorFlow's default), 0 =
// JDCT_ISLOW.
void BM_CropDecode(benchmark::State& state) {
  const Corpus& c = Load();
  if (!c.error.empty()) return state.SkipWithError(c.error.c_str());
  DecodedCrop crop;
  CropDecodeOptions options;
  options.fast_idct = state.range(1) == 1;
  size_t i = 0;
  for (auto _ : state) {
    const CropWindow& w = c.windows[i];
    int eighths = 8;
    if (state.range(0) == 1) eighths = ChooseScaleEighths(w.width, w.height, 224, 224);
    if (state.range(0) == 2) eighths = 8 / ChooseScaleDenom(w.width, w.height, 224, 224);
    auto status = DecodeJpegCropEighths(c.jpegs[i], w, eighths, &crop, options);
    if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
    benchmark::DoNotOptimize(crop.pixels.data());
    i = (i + 1) % c.jpegs.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CropDecode)
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({2, 1})
    ->Unit(benchmark::kMicrosecond);

// The resize alone, from each image's crop window at the N/8 scale (the preset's input).
void BM_ResizeBicubic(benchmark::State& state) {
  const Corpus& c = Load();
  if (!c.error.empty()) return state.SkipWithError(c.error.c_str());
  std::vector<DecodedCrop> crops(std::min<size_t>(c.jpegs.size(), 64));
  for (size_t i = 0; i < crops.size(); ++i) {
    const CropWindow& w = c.windows[i];
    auto status = DecodeJpegCropEighths(c.jpegs[i], w,
                                        ChooseScaleEighths(w.width, w.height, 224, 224), &crops[i]);
    if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
  }
  std::vector<float> out(224 * 224 * 3);
  ResizeScratch scratch;
  size_t i = 0;
  for (auto _ : state) {
    const DecodedCrop& crop = crops[i];
    ResizeBicubic(crop.pixels.data(), {crop.height, crop.width, 3, 224, 224}, out.data(),
                  &scratch);
    benchmark::DoNotOptimize(out.data());
    i = (i + 1) % crops.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ResizeBicubic)->Unit(benchmark::kMicrosecond);

// range(0): 0 = resnet-train, 1 = resnet-eval.
void BM_ProcessSample(benchmark::State& state) {
  const Corpus& c = Load();
  if (!c.error.empty()) return state.SkipWithError(c.error.c_str());
  SampleSpec spec;
  spec.preset = state.range(0) == 0 ? Preset::kResnetTrain : Preset::kResnetEval;
  SampleScratch scratch;
  std::vector<float> out(224 * 224 * 3);
  int64_t label = 0;
  size_t i = 0;
  for (auto _ : state) {
    auto status = ProcessSample(spec, c.records[i], 0, 0, i, &scratch, out.data(), nullptr, &label);
    if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
    i = (i + 1) % c.records.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProcessSample)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
