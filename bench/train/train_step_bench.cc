// Training-step and inference throughput of the models on a fixed random batch (data loading
// excluded), the same protocol as ../shared/peers/train_bench.py for PyTorch: images/s of
// forward + loss + backward + SGD(momentum 0.9, wd 5e-4). Threads: SLUICE_BENCH_THREADS (default 2)
// in one TBB arena. bench/train/train_vs_pytorch.sh runs this and the PyTorch peer side by side.
// SLUICE_BENCH_PROFILE=1 prints the per-layer time table after each benchmark.
#include <benchmark/benchmark.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "sluice/train/model.h"
#include "sluice/train/optimizer.h"

namespace sluice::train {
namespace {

int Threads() {
  const char* t = std::getenv("SLUICE_BENCH_THREADS");
  return t ? std::atoi(t) : 2;
}

void Run(benchmark::State& state, const char* name, int batch, int image, int classes, bool train) {
  ModelConfig mc;
  mc.name = name;
  mc.num_classes = classes;
  auto model = Model::Create(mc);
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  Model& m = **model;
  m.Initialize(InitScheme::kTorchvision, 1);
  const bool profile = std::getenv("SLUICE_BENCH_PROFILE") != nullptr;
  m.EnableProfile(profile);
  Tensor x({batch, image, image, 3});
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < x.size(); ++i) x[i] = normal(rng);
  std::vector<int64_t> labels(batch);
  for (auto& l : labels) l = rng() % classes;
  SgdConfig sc;
  sc.weight_decay = 5e-4;
  SgdMomentum sgd(sc);
  Tensor dlogits;
  tbb::task_arena arena(Threads());
  auto step = [&] {
    arena.execute([&] {
      const Tensor& logits = m.Forward(x, train);
      if (!train) return;
      SoftmaxCrossEntropy(logits, labels, 0, &dlogits);
      m.ZeroGrad();
      m.Backward(dlogits);
      sgd.Step(m.params(), 0.01);
    });
  };
  step();  // warm-up: buffers reach their sizes
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
  const double macs = static_cast<double>(m.MacsPerImage()) * batch;
  state.counters["GFLOP/s"] = benchmark::Counter(2 * macs * (train ? 3 : 1) * state.iterations(),
                                                 benchmark::Counter::kIsRate);
  state.counters["act_MB"] = static_cast<double>(m.ActivationBytes()) / 1e6;
  if (profile) std::fprintf(stderr, "%s\n%s", name, m.ProfileTable().c_str());
}

void BM_Train_ResNet20(benchmark::State& s) { Run(s, "resnet20", 128, 32, 10, true); }
void BM_Train_ResNet56(benchmark::State& s) { Run(s, "resnet56", 128, 32, 10, true); }
void BM_Infer_ResNet20(benchmark::State& s) { Run(s, "resnet20", 128, 32, 10, false); }
void BM_Train_Vgg16(benchmark::State& s) { Run(s, "vgg16", 128, 32, 10, true); }
void BM_Train_ResNet50(benchmark::State& s) { Run(s, "resnet50", 32, 224, 1000, true); }

BENCHMARK(BM_Train_ResNet20)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_Train_ResNet56)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_Infer_ResNet20)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_Train_Vgg16)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_Train_ResNet50)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

}  // namespace
}  // namespace sluice::train

namespace sluice::train {
namespace {

// The machine's GEMM peak as Eigen reaches it: one 1024^3 single-precision product per thread, the
// threads in parallel (the ceiling against which the conv kernels' GFLOP/s are read).
void BM_GemmPeak(benchmark::State& state) {
  using M = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int threads = Threads(), n = 1024;
  std::vector<M> a(threads, M::Random(n, n)), b(threads, M::Random(n, n)), c(threads, M(n, n));
  tbb::task_arena arena(threads);
  for (auto _ : state) {
    arena.execute([&] {
      tbb::parallel_for(0, threads, [&](int t) { c[t].noalias() = a[t] * b[t]; });
    });
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * threads * state.iterations(),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_GemmPeak)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);

}  // namespace
}  // namespace sluice::train
