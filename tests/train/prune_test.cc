// Magnitude pruning (prune.h): exact kept counts, the selection against a brute-force stable sort,
// ties, layerwise scope, iterative levels, masked SGD, and masks in checkpoints.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "sluice/formats/safetensors.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/model.h"
#include "sluice/train/optimizer.h"
#include "sluice/train/prune.h"

namespace sluice::train {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Model> SmallResNet(uint64_t seed) {
  ModelConfig config;
  config.name = "small-resnet";
  config.width = 4;
  config.blocks = 1;
  config.num_classes = 10;
  auto model = Model::Create(config);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  (*model)->Initialize(InitScheme::kTensorFlow, seed);
  return std::move(*model);
}

std::vector<Param*> PrunableByName(Model& m) {
  std::vector<Param*> out;
  for (Param& p : m.params())
    if (p.is_prunable()) out.push_back(&p);
  std::sort(out.begin(), out.end(), [](Param* a, Param* b) { return a->name < b->name; });
  return out;
}

int64_t Keep(double density, int64_t n) { return static_cast<int64_t>(std::floor(density / 100 * n + 0.5)); }

// The brute-force selection: every live weight of `params` as (|w|, position in the concatenation
// of the PyTorch-layout tensors), stably sorted by |w| descending; the first `keep` are kept.
// Returns the expected masks in PyTorch layout.
std::vector<std::vector<float>> BruteForce(const std::vector<Param*>& params, int64_t keep) {
  struct Entry {
    float score;
    size_t param, index;
  };
  std::vector<Entry> live;
  std::vector<std::vector<float>> masks;
  for (size_t k = 0; k < params.size(); ++k) {
    const std::vector<float> w = ToTorchLayout(*params[k], params[k]->value);
    const std::vector<float> m =
        params[k]->masked() ? ToTorchLayout(*params[k], params[k]->mask) : std::vector<float>(w.size(), 1);
    for (size_t i = 0; i < w.size(); ++i)
      if (m[i] != 0) live.push_back({std::abs(w[i]), k, i});
    masks.emplace_back(w.size(), 0.0f);
  }
  std::stable_sort(live.begin(), live.end(), [](const Entry& a, const Entry& b) { return a.score > b.score; });
  for (int64_t j = 0; j < keep; ++j) masks[live[j].param][live[j].index] = 1;
  return masks;
}

void ExpectMasksEqual(const std::vector<Param*>& params, const std::vector<std::vector<float>>& expected) {
  for (size_t k = 0; k < params.size(); ++k) {
    const std::vector<float> got = ToTorchLayout(*params[k], params[k]->mask);
    ASSERT_EQ(got.size(), expected[k].size()) << params[k]->name;
    int64_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += got[i] != expected[k][i];
    EXPECT_EQ(differ, 0) << params[k]->name;
  }
}

int64_t Kept(const Param& p) {
  int64_t n = 0;
  for (int64_t i = 0; i < p.mask.size(); ++i) n += p.mask[i] == 1.0f;
  return n;
}

TEST(PruneMethodTest, ParsesTheReferenceNames) {
  auto g = ParsePruneMethod("prune_all_to_global_80.0");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->scope, PruneMethod::Scope::kGlobal);
  EXPECT_EQ(g->density, 80.0);
  auto l = ParsePruneMethod("prune_all_to_layerwise_51.2");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->scope, PruneMethod::Scope::kLayerwise);
  EXPECT_EQ(l->density, 51.2);
  EXPECT_EQ(PruneMethodName(*g), "prune_all_to_global_80.0");
  EXPECT_EQ(PruneMethodName(*l), "prune_all_to_layerwise_51.2");
  EXPECT_EQ(PruneMethodName({PruneMethod::Scope::kGlobal, 21}), "prune_all_to_global_21.0");
  for (const char* bad : {"prune_all_to_global_", "prune_all_to_global_0", "prune_all_to_global_101",
                          "prune_all_to_global_80x", "prune_global_80.0", "magnitude"})
    EXPECT_FALSE(ParsePruneMethod(bad).ok()) << bad;
}

TEST(PruneTest, GlobalKeepsExactlyTheBruteForceSelection) {
  for (double density : {80.0, 51.2, 21.0, 0.5}) {
    auto m = SmallResNet(1);
    const std::vector<Param*> prunable = PrunableByName(*m);
    int64_t total = 0;
    for (Param* p : prunable) total += p->value.size();
    const auto expected = BruteForce(prunable, Keep(density, total));
    auto r = Prune(m->params(), {PruneMethod::Scope::kGlobal, density});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->total, total);
    EXPECT_EQ(r->kept, Keep(density, total)) << density;
    EXPECT_DOUBLE_EQ(PrunableDensity(m->params()), static_cast<double>(Keep(density, total)) / total);
    ExpectMasksEqual(prunable, expected);
    // The threshold is the smallest kept magnitude, and every pruned weight is at most that.
    float smallest_kept = INFINITY, largest_pruned = 0;
    for (Param* p : prunable)
      for (int64_t i = 0; i < p->value.size(); ++i) {
        const float a = std::abs(p->value[i]);
        if (p->mask[i] != 0) smallest_kept = std::min(smallest_kept, a);
        else largest_pruned = std::max(largest_pruned, a);
      }
    EXPECT_EQ(r->threshold, smallest_kept);
    EXPECT_LE(largest_pruned, smallest_kept);
  }
}

TEST(PruneTest, NeverMasksBatchNormOrBiasesAndLeavesValuesAlone) {
  auto m = SmallResNet(2);
  std::vector<std::vector<float>> before;
  for (const Param& p : m->params()) before.emplace_back(p.value.data(), p.value.data() + p.value.size());
  ASSERT_TRUE(Prune(m->params(), {PruneMethod::Scope::kGlobal, 50}).ok());
  size_t k = 0;
  int convs = 0, dense = 0;
  for (const Param& p : m->params()) {
    EXPECT_EQ(p.masked(), p.is_prunable()) << p.name;
    convs += p.kind == ParamKind::kConvWeight;
    dense += p.kind == ParamKind::kDenseWeight;
    EXPECT_TRUE(std::equal(before[k].begin(), before[k].end(), p.value.data())) << p.name;
    ++k;
  }
  // small-resnet, 1 block per stage: stem, 2 per block, 3 projection shortcuts; and fc.
  EXPECT_EQ(convs, 1 + 3 * 2 + 3);
  EXPECT_EQ(dense, 1);
  ApplyMasks(m->params(), nullptr);
  for (const Param& p : m->params())
    for (int64_t i = 0; i < p.mask.size(); ++i)
      if (p.mask[i] == 0) ASSERT_EQ(p.value[i], 0.0f) << p.name;
}

// Magnitudes from a 3-value set: most of the kept/pruned boundary is one big tie.
TEST(PruneTest, TiesAtTheThresholdAreKeptInCheckpointOrder) {
  for (auto scope : {PruneMethod::Scope::kGlobal, PruneMethod::Scope::kLayerwise}) {
    auto m = SmallResNet(3);
    std::mt19937 rng(5);
    for (Param& p : m->params())
      for (int64_t i = 0; i < p.value.size(); ++i)
        p.value[i] = (rng() % 2 ? 1 : -1) * 0.1f * static_cast<float>(1 + rng() % 3);
    const std::vector<Param*> prunable = PrunableByName(*m);
    int64_t total = 0;
    for (Param* p : prunable) total += p->value.size();
    std::vector<std::vector<float>> expected;
    if (scope == PruneMethod::Scope::kGlobal) {
      expected = BruteForce(prunable, Keep(64, total));
    } else {
      for (Param* p : prunable) expected.push_back(BruteForce({p}, Keep(64, p->value.size()))[0]);
    }
    auto r = Prune(m->params(), {scope, 64});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectMasksEqual(prunable, expected);
    if (scope == PruneMethod::Scope::kGlobal) {
      EXPECT_EQ(r->kept, Keep(64, total));
      EXPECT_FLOAT_EQ(r->threshold, 0.2f) << "64 % of three equally likely magnitudes ends inside 0.2's third";
    } else {
      for (Param* p : prunable) EXPECT_EQ(Kept(*p), Keep(64, p->value.size())) << p->name;
    }
  }
}

TEST(PruneTest, LayerwiseKeepsTheDensityInEveryLayer) {
  auto m = SmallResNet(4);
  auto r = Prune(m->params(), {PruneMethod::Scope::kLayerwise, 21});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (Param* p : PrunableByName(*m)) {
    EXPECT_EQ(Kept(*p), Keep(21, p->value.size())) << p->name;
    ExpectMasksEqual({p}, {BruteForce({p}, Kept(*p))[0]});
  }
  for (const auto& layer : r->layers) EXPECT_EQ(layer.kept, Keep(21, layer.size)) << layer.name;
}

// Levels 80, 64, 51.2 (relative to the original count), each after "training" moved the live
// weights: densities compound to exactly 0.8, 0.64, 0.512 and every mask lies inside the last.
TEST(PruneTest, IterativeDensitiesCompound) {
  auto m = SmallResNet(5);
  const std::vector<Param*> prunable = PrunableByName(*m);
  int64_t total = 0;
  for (Param* p : prunable) total += p->value.size();
  std::mt19937 rng(9);
  std::normal_distribution<float> noise(0, 0.05f);
  std::vector<std::vector<float>> previous;
  for (double density : {80.0, 64.0, 51.2}) {
    const auto expected = BruteForce(prunable, Keep(density, total));
    auto r = Prune(m->params(), {PruneMethod::Scope::kGlobal, density});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->kept, Keep(density, total));
    EXPECT_NEAR(r->density(), density / 100, 0.5 / total);
    ExpectMasksEqual(prunable, expected);
    if (!previous.empty())
      for (size_t k = 0; k < prunable.size(); ++k)
        for (int64_t i = 0; i < prunable[k]->mask.size(); ++i)
          if (previous[k][i] == 0) ASSERT_EQ(prunable[k]->mask[i], 0.0f) << "a pruned weight came back";
    previous.clear();
    for (Param* p : prunable) previous.emplace_back(p->mask.data(), p->mask.data() + p->mask.size());
    ApplyMasks(m->params(), nullptr);
    for (Param* p : prunable)  // retraining: live weights move, pruned ones stay zero
      for (int64_t i = 0; i < p->value.size(); ++i)
        if (p->mask[i] != 0) p->value[i] += noise(rng);
  }
  // Asking for more than is left is refused: pruning never brings weights back.
  auto denser = Prune(m->params(), {PruneMethod::Scope::kGlobal, 60});
  ASSERT_FALSE(denser.ok());
  EXPECT_NE(denser.status().message().find("cannot bring weights back"), std::string::npos)
      << denser.status().message();
}

TEST(PruneTest, NonFiniteWeightIsAnErrorNamingIt) {
  auto m = SmallResNet(6);
  Param* fc = m->FindParam("fc.weight");
  ASSERT_NE(fc, nullptr);
  fc->value[7] = NAN;
  auto r = Prune(m->params(), {PruneMethod::Scope::kGlobal, 80});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("fc.weight"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("element 7"), std::string::npos) << r.status().message();
}

// Real training steps (forward, backward, SGD with momentum and weight decay): pruned weights and
// their momentum stay exactly zero; kept weights move.
TEST(PruneTest, MaskedWeightsAndMomentumStayZeroThroughTraining) {
  for (bool nesterov : {false, true}) {
    auto m = SmallResNet(7);
    Optimizer opt({.momentum = 0.9, .nesterov = nesterov, .weight_decay = 2e-4, .decay_batch_norm = true});
    ASSERT_TRUE(Prune(m->params(), {PruneMethod::Scope::kGlobal, 30}).ok());
    // Momentum is non-zero everywhere before the masks apply: ApplyMasks must clear it.
    for (Param& p : m->params()) opt.Slot(p, 0).Fill(0.5f);
    ApplyMasks(m->params(), &opt);
    std::vector<std::vector<float>> start;
    for (const Param& p : m->params()) start.emplace_back(p.value.data(), p.value.data() + p.value.size());
    std::mt19937 rng(11);
    std::normal_distribution<float> normal;
    Tensor x({8, 16, 16, 3}), dz;
    std::vector<int64_t> labels(8);
    for (int step = 0; step < 5; ++step) {
      for (int64_t i = 0; i < x.size(); ++i) x[i] = normal(rng);
      for (auto& l : labels) l = rng() % 10;
      SoftmaxCrossEntropy(m->Forward(x, true), labels, 0, &dz);
      m->ZeroGrad();
      m->Backward(dz);
      opt.Step(m->params(), 0.1);
    }
    size_t k = 0;
    int64_t discarded = 0;  // non-zero gradients at pruned weights: the test exercises the mask
    for (Param& p : m->params()) {
      const Tensor& v = opt.Slot(p, 0);
      int64_t moved = 0, live = 0;
      for (int64_t i = 0; i < p.value.size(); ++i) {
        if (p.masked() && p.mask[i] == 0) {
          ASSERT_EQ(p.value[i], 0.0f) << p.name << " " << i;
          ASSERT_EQ(v[i], 0.0f) << p.name << " " << i;
          discarded += p.grad[i] != 0.0f;
        } else {
          ++live;
          moved += p.value[i] != start[k][i];
        }
      }
      // (At TF's initialization fc.weight, N(0, 0.01), is pruned whole at 30 %.)
      if (live > 0) EXPECT_GT(moved, live / 2) << p.name;
      ++k;
    }
    EXPECT_GT(discarded, 100);
  }
}

class PruneCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice_prune_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const char* name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(PruneCheckpointTest, MasksRoundTripAndRezeroOnLoad) {
  auto m = SmallResNet(8);
  Optimizer opt({});
  for (Param& p : m->params()) opt.Slot(p, 0).Fill(0.25f);
  ASSERT_TRUE(Prune(m->params(), {PruneMethod::Scope::kGlobal, 40}).ok());
  ApplyMasks(m->params(), &opt);
  ASSERT_TRUE(SaveCheckpoint(Path("a.safetensors"), *m, &opt, CheckpointMetadata::AtStep(3)).ok());
  auto file = formats::SafetensorsFile::Open(Path("a.safetensors"));
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE(file->contains("fc.weight.mask"));
  EXPECT_TRUE(file->contains("conv1.weight.mask"));
  EXPECT_FALSE(file->contains("bn1.weight.mask"));
  EXPECT_FALSE(file->contains("fc.bias.mask"));

  auto fresh = SmallResNet(99);  // different weights, no masks
  Optimizer opt2({});
  ASSERT_TRUE(LoadCheckpoint(Path("a.safetensors"), fresh.get(), &opt2).ok());
  auto a = m->params().begin();
  for (const Param& p : fresh->params()) {
    EXPECT_EQ(p.masked(), a->masked()) << p.name;
    if (p.masked()) EXPECT_TRUE(std::equal(p.mask.data(), p.mask.data() + p.mask.size(), a->mask.data()));
    EXPECT_TRUE(std::equal(p.value.data(), p.value.data() + p.value.size(), a->value.data())) << p.name;
    ++a;
  }
  EXPECT_DOUBLE_EQ(PrunableDensity(fresh->params()), PrunableDensity(m->params()));

  // A dense checkpoint clears the masks of the model it loads into.
  auto dense = SmallResNet(10);
  ASSERT_TRUE(SaveCheckpoint(Path("dense.safetensors"), *dense, nullptr, CheckpointMetadata::AtStep(0)).ok());
  ASSERT_TRUE(LoadCheckpoint(Path("dense.safetensors"), fresh.get(), nullptr).ok());
  for (const Param& p : fresh->params()) EXPECT_FALSE(p.masked()) << p.name;

  // A file whose masked-out weights are not zero (edited by hand) loads with them zeroed.
  formats::SafetensorsWriter w;
  for (const Param& p : dense->params()) {
    ASSERT_TRUE(w.Add<float>(p.name, p.torch_shape, ToTorchLayout(p, p.value)).ok());
    if (p.name == "fc.weight") {
      std::vector<float> mask(p.value.size(), 1.0f);
      mask[0] = 0;
      ASSERT_TRUE(w.Add<float>("fc.weight.mask", p.torch_shape, mask).ok());
    }
  }
  for (const BnState& s : dense->bn_states()) {
    ASSERT_TRUE(w.Add<float>(s.prefix + ".running_mean", {s.running_mean.size()}, s.running_mean.span()).ok());
    ASSERT_TRUE(w.Add<float>(s.prefix + ".running_var", {s.running_var.size()}, s.running_var.span()).ok());
  }
  ASSERT_TRUE(w.WriteFile(Path("edited.safetensors")).ok());
  ASSERT_NE(dense->FindParam("fc.weight")->value[0], 0.0f);
  ASSERT_TRUE(LoadCheckpoint(Path("edited.safetensors"), fresh.get(), nullptr).ok());
  EXPECT_EQ(fresh->FindParam("fc.weight")->value[0], 0.0f);
  EXPECT_EQ(fresh->FindParam("fc.weight")->value[1], dense->FindParam("fc.weight")->value[1]);
}

TEST_F(PruneCheckpointTest, BadMasksAreErrorsNamingTheTensor) {
  auto m = SmallResNet(12);
  auto write = [&](const char* path, const std::string& mask_name, float value) {
    formats::SafetensorsWriter w;
    for (const Param& p : m->params()) {
      ASSERT_TRUE(w.Add<float>(p.name, p.torch_shape, ToTorchLayout(p, p.value)).ok());
      if (p.name + ".mask" == mask_name) {
        std::vector<float> mask(p.value.size(), 1.0f);
        mask[2] = value;
        ASSERT_TRUE(w.Add<float>(mask_name, p.torch_shape, mask).ok());
      }
    }
    for (const BnState& s : m->bn_states()) {
      ASSERT_TRUE(w.Add<float>(s.prefix + ".running_mean", {s.running_mean.size()}, s.running_mean.span()).ok());
      ASSERT_TRUE(w.Add<float>(s.prefix + ".running_var", {s.running_var.size()}, s.running_var.span()).ok());
    }
    ASSERT_TRUE(w.WriteFile(Path(path)).ok());
  };
  write("half.safetensors", "conv1.weight.mask", 0.5f);
  auto r = LoadCheckpoint(Path("half.safetensors"), m.get(), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("conv1.weight.mask"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("element 2"), std::string::npos) << r.status().message();

  write("bn.safetensors", "bn1.weight.mask", 1.0f);
  r = LoadCheckpoint(Path("bn.safetensors"), m.get(), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("never pruned"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace sluice::train
