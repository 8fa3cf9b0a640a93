// TFRecord write and read+verify throughput (MB/s of framed bytes) on page-cached files, and
// tf.Example encode/decode rates, across record sizes (1 KiB: small features; 110 KiB: an ImageNet
// JPEG, the case that matters).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include "bench_inputs.h"
#include "sluice/formats/example.h"
#include "sluice/formats/record_reader.h"
#include "sluice/formats/record_writer.h"

namespace {

using namespace sluice::formats;
using sluice::bench::ImageNetExample;
using sluice::bench::RandomBytes;

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("sluice_bench_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

constexpr size_t kFileBytes = size_t{256} << 20;

void BM_TFRecord_Write(benchmark::State& state) {
  const size_t record_size = state.range(0);
  const std::string record = RandomBytes(record_size, 1);
  const size_t n = kFileBytes / FramedSize(record_size);
  const std::string path = TempPath("write");
  for (auto _ : state) {
    RecordWriterOptions opt;
    opt.sync = false;  // page cache: measures our code, not the disk
    auto w = *RecordWriter::Create(path, opt);
    for (size_t i = 0; i < n; ++i) {
      if (!w->Write(record).ok()) state.SkipWithError("write failed");
    }
    if (!w->Close().ok()) state.SkipWithError("close failed");
  }
  std::filesystem::remove(path);
  state.SetBytesProcessed(state.iterations() * n * FramedSize(record_size));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_TFRecord_Write)->Arg(1 << 10)->Arg(110 << 10)->Unit(benchmark::kMillisecond);

void BM_TFRecord_ReadVerify(benchmark::State& state) {
  const size_t record_size = state.range(0);
  const std::string path = TempPath("read_" + std::to_string(record_size));
  const size_t n = kFileBytes / FramedSize(record_size);
  {
    RecordWriterOptions opt;
    opt.sync = false;
    auto w = *RecordWriter::Create(path, opt);
    std::string record = RandomBytes(record_size, 2);
    for (size_t i = 0; i < n; ++i) (void)w->Write(record);
    (void)w->Close();
  }
  for (auto _ : state) {
    auto r = *RecordReader::Open(path);
    std::string_view rec;
    size_t count = 0;
    sluice::Status s;
    while ((s = r->ReadRecord(&rec)).ok()) ++count;
    if (!s.IsEndOfData() || count != n) state.SkipWithError("read failed");
  }
  std::filesystem::remove(path);
  state.SetBytesProcessed(state.iterations() * n * FramedSize(record_size));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_TFRecord_ReadVerify)->Arg(1 << 10)->Arg(110 << 10)->Unit(benchmark::kMillisecond);

void BM_Example_Encode(benchmark::State& state) {
  Example ex = ImageNetExample(state.range(0));
  std::string out;
  for (auto _ : state) {
    ex.SerializeTo(&out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * out.size());
}
BENCHMARK(BM_Example_Encode)->Arg(0)->Arg(110 << 10);

void BM_Example_Decode(benchmark::State& state) {
  const std::string bytes = ImageNetExample(state.range(0)).Serialize();
  for (auto _ : state) {
    auto ex = Example::Parse(bytes);
    benchmark::DoNotOptimize(ex.ok());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * bytes.size());
}
BENCHMARK(BM_Example_Decode)->Arg(0)->Arg(110 << 10);

}  // namespace
