// Checkpoints: an exact save/load round trip of weights, momentum buffers and BN state; PyTorch
// layouts in the file (read back with the format's own reader, not through LoadCheckpoint); every
// error LoadCheckpoint can return; ListCheckpoints' order; and WriteNpy's byte layout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "sluice/formats/file_util.h"
#include "sluice/formats/safetensors.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/model.h"
#include "sluice/train/npy.h"
#include "sluice/train/optimizer.h"

namespace sluice::train {
namespace {

namespace fs = std::filesystem;
using formats::SafetensorsFile;
using formats::SafetensorsWriter;
using ::testing::HasSubstr;

std::unique_ptr<Model> SmallResnet(int width, uint64_t seed) {
  ModelConfig mc;
  mc.name = "small-resnet";
  mc.width = width;
  mc.blocks = 1;
  mc.num_classes = 3;
  auto m = Model::Create(mc);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  (*m)->Initialize(InitScheme::kTorchvision, seed);
  return std::move(*m);
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sluice_checkpoint_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // A width-4 small-resnet after one training forward (BN running statistics move,
  // num_batches_tracked = 1) and one SGD step with random gradients (momentum buffers non-zero).
  void TrainedModel(std::unique_ptr<Model>* model, std::unique_ptr<Optimizer>* opt) {
    *model = SmallResnet(4, 7);
    *opt = std::make_unique<Optimizer>(OptimizerConfig{.momentum = 0.9, .weight_decay = 1e-3});
    std::mt19937 rng(99);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    Tensor x({2, 8, 8, 3});
    for (int64_t i = 0; i < x.size(); ++i) x[i] = normal(rng) + 0.5f;
    (*model)->Forward(x, true);
    (*model)->ZeroGrad();
    for (Param& p : (*model)->params())
      for (int64_t i = 0; i < p.grad.size(); ++i) p.grad[i] = normal(rng);
    (*opt)->Step((*model)->params(), 0.1);
  }

  // Rewrites `from` to `to` through `edit`, which may drop, replace or add tensors.
  void Rewrite(const std::string& from, const std::string& to,
               const std::function<void(const SafetensorsFile&, SafetensorsWriter*)>& edit) {
    auto file = SafetensorsFile::Open(from);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    SafetensorsWriter w;
    edit(*file, &w);
    for (const auto& [k, v] : file->metadata()) w.SetMetadata(k, v);
    ASSERT_TRUE(w.WriteFile(to).ok());
  }
  static void CopyTensor(const SafetensorsFile& f, const std::string& name, SafetensorsWriter* w) {
    auto t = f.Find(name);
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE(w->Add(name, t->dtype, t->shape, t->data).ok());
  }

  fs::path dir_;
};

TEST_F(CheckpointTest, RoundTripRestoresEveryValueExactly) {
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer> opt;
  TrainedModel(&model, &opt);
  const std::string path = Path("ckpt.safetensors");
  auto meta = CheckpointMetadata::Decode(
      {{"step", "17"}, {"data_epoch", "2"}, {"data_samples", "5"}, {"note", "h\u00e9llo"}}, "caller");
  ASSERT_TRUE(meta.ok());
  ASSERT_TRUE(SaveCheckpoint(path, *model, opt.get(), *meta).ok());

  auto loaded = SmallResnet(4, 12345);  // different init: every value must come from the file
  Optimizer loaded_opt(opt->config());
  auto got = LoadCheckpoint(path, loaded.get(), &loaded_opt);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // The caller's metadata, plus the optimizer's kind and steps.
  EXPECT_EQ(got->step, 17);
  EXPECT_EQ(got->data, (pipeline::DataCursor{2, 5}));
  EXPECT_EQ(got->extra, (Metadata{{"note", "h\u00e9llo"}}));
  EXPECT_EQ(got->optimizer, "momentum");
  EXPECT_EQ(got->optimizer_steps, 1);
  EXPECT_EQ(loaded_opt.steps(), 1);

  ASSERT_EQ(model->params().size(), loaded->params().size());
  int64_t values = 0;
  for (size_t k = 0; k < model->params().size(); ++k) {
    const Param& a = model->params()[k];
    const Param& b = loaded->params()[k];
    ASSERT_EQ(a.name, b.name);
    ASSERT_EQ(a.value.shape(), b.value.shape()) << a.name;
    EXPECT_EQ(std::memcmp(a.value.data(), b.value.data(), a.value.size() * sizeof(float)), 0)
        << a.name;
    const Tensor& ma = opt->Slot(a, 0);
    const Tensor& mb = loaded_opt.Slot(b, 0);
    ASSERT_EQ(ma.size(), mb.size()) << a.name;
    bool nonzero = false;
    for (int64_t i = 0; i < ma.size(); ++i) nonzero |= ma[i] != 0;
    EXPECT_TRUE(nonzero) << a.name << ": the momentum buffer should be non-zero after a step";
    EXPECT_EQ(std::memcmp(ma.data(), mb.data(), ma.size() * sizeof(float)), 0) << a.name;
    values += a.value.size();
  }
  EXPECT_EQ(values, model->num_parameters());
  ASSERT_EQ(model->bn_states().size(), loaded->bn_states().size());
  for (size_t k = 0; k < model->bn_states().size(); ++k) {
    const BnState& a = model->bn_states()[k];
    const BnState& b = loaded->bn_states()[k];
    EXPECT_EQ(a.prefix, b.prefix);
    EXPECT_EQ(a.num_batches_tracked, 1) << a.prefix;
    EXPECT_EQ(b.num_batches_tracked, 1) << b.prefix;
    ASSERT_EQ(a.running_mean.size(), b.running_mean.size());
    EXPECT_NE(a.running_mean[0], 0.0f) << a.prefix << ": the forward should have moved it";
    for (int64_t i = 0; i < a.running_mean.size(); ++i) {
      EXPECT_EQ(a.running_mean[i], b.running_mean[i]) << a.prefix << " mean " << i;
      EXPECT_EQ(a.running_var[i], b.running_var[i]) << a.prefix << " var " << i;
    }
  }
  // Loaded, the model computes the same logits.
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Tensor x({3, 8, 8, 3});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = normal(rng);
  const Tensor ya = model->Forward(x, false);
  const Tensor& yb = loaded->Forward(x, false);
  ASSERT_EQ(ya.size(), yb.size());
  EXPECT_EQ(std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)), 0);
}

TEST_F(CheckpointTest, SaveIsDeterministic) {
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer> opt;
  TrainedModel(&model, &opt);
  ASSERT_TRUE(SaveCheckpoint(Path("a.safetensors"), *model, opt.get(), CheckpointMetadata::AtStep(1)).ok());
  ASSERT_TRUE(SaveCheckpoint(Path("b.safetensors"), *model, opt.get(), CheckpointMetadata::AtStep(1)).ok());
  EXPECT_EQ(*formats::ReadFile(Path("a.safetensors")), *formats::ReadFile(Path("b.safetensors")));
}

TEST_F(CheckpointTest, FileHoldsTorchNamesShapesAndLayout) {
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer> opt;
  TrainedModel(&model, &opt);
  const std::string path = Path("layout.safetensors");
  ASSERT_TRUE(SaveCheckpoint(path, *model, opt.get(), CheckpointMetadata::AtStep(3)).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->metadata().at("step"), "3");

  // Every parameter (and its momentum buffer) is there with its torch_shape; BN state too.
  size_t expected = 0;
  for (const Param& p : model->params()) {
    auto t = file->Find(p.name);
    ASSERT_TRUE(t.ok()) << p.name;
    EXPECT_EQ(t->dtype, formats::SafetensorsDtype::kF32);
    EXPECT_EQ(t->shape, p.torch_shape) << p.name;
    auto m = file->Find(p.name + ".momentum_buffer");
    ASSERT_TRUE(m.ok()) << p.name;
    EXPECT_EQ(m->shape, p.torch_shape) << p.name;
    expected += 2;
  }
  for (const BnState& s : model->bn_states()) {
    const int64_t c = s.running_mean.size();
    EXPECT_EQ(file->Find(s.prefix + ".running_mean")->shape, std::vector<int64_t>{c});
    EXPECT_EQ(file->Find(s.prefix + ".running_var")->shape, std::vector<int64_t>{c});
    auto n = file->Find(s.prefix + ".num_batches_tracked");
    ASSERT_TRUE(n.ok()) << s.prefix;
    EXPECT_EQ(n->dtype, formats::SafetensorsDtype::kI64);
    EXPECT_TRUE(n->shape.empty()) << "a scalar, as in PyTorch's state_dict";
    EXPECT_EQ(file->Int64s(s.prefix + ".num_batches_tracked")->at(0), 1);
    expected += 3;
  }
  EXPECT_EQ(file->size(), expected) << "no other tensors";

  // Spot checks of the names torchvision / TF's CIFAR ResNet give.
  EXPECT_EQ(file->Find("conv1.weight")->shape, (std::vector<int64_t>{4, 3, 3, 3}));
  EXPECT_EQ(file->Find("layer2.0.downsample.0.weight")->shape, (std::vector<int64_t>{8, 4, 1, 1}));
  EXPECT_EQ(file->Find("layer3.0.conv1.weight")->shape, (std::vector<int64_t>{16, 8, 3, 3}));
  EXPECT_EQ(file->Find("fc.weight")->shape, (std::vector<int64_t>{3, 16}));
  EXPECT_TRUE(file->contains("layer1.0.bn2.running_var"));

  // Conv weights: element (kh, kw, ci, co) of our HWIO value sits at OIHW (co, ci, kh, kw).
  for (const std::string name : {"conv1.weight", "layer2.0.conv1.weight",
                                  "layer2.0.downsample.0.weight"}) {
    const Param* p = model->FindParam(name);
    ASSERT_NE(p, nullptr) << name;
    const int64_t KH = p->value.dim(0), KW = p->value.dim(1), CI = p->value.dim(2),
                  CO = p->value.dim(3);
    ASSERT_EQ(p->torch_shape, (std::vector<int64_t>{CO, CI, KH, KW}));
    auto values = file->Floats(name);
    auto momentum = file->Floats(name + ".momentum_buffer");
    ASSERT_TRUE(values.ok() && momentum.ok());
    const Tensor& m = opt->Slot(*p, 0);
    const int64_t picks[][4] = {{0, 0, 0, 0}, {KH - 1, 0, 1, CO - 1}, {0, KW - 1, CI - 1, 1},
                                {KH / 2, KW - 1, 2, CO / 2}, {KH - 1, KW - 1, CI - 1, CO - 1}};
    for (const auto& e : picks) {
      const int64_t h = e[0], w = e[1], i = e[2], o = e[3];
      const int64_t ours = ((h * KW + w) * CI + i) * CO + o;
      const int64_t torch = ((o * CI + i) * KH + h) * KW + w;
      EXPECT_EQ((*values)[torch], p->value[ours]) << name << " (" << h << "," << w << "," << i
                                                   << "," << o << ")";
      EXPECT_EQ((*momentum)[torch], m[ours]) << name << " momentum";
    }
  }
  // Dense weights are (out, in) on both sides: copied as they are.
  const Param* fc = model->FindParam("fc.weight");
  ASSERT_NE(fc, nullptr);
  auto fcv = file->Floats("fc.weight");
  for (int64_t i = 0; i < fc->value.size(); ++i) ASSERT_EQ((*fcv)[i], fc->value[i]) << i;
}

TEST_F(CheckpointTest, ToAndFromTorchLayoutAreInverse) {
  auto model = SmallResnet(4, 1);
  const Param* p = model->FindParam("layer2.0.conv2.weight");
  ASSERT_NE(p, nullptr);
  const std::vector<float> torch = ToTorchLayout(*p, p->value);
  Tensor back(p->value.shape());
  FromTorchLayout(*p, torch, &back);
  EXPECT_EQ(std::memcmp(back.data(), p->value.data(), back.size() * sizeof(float)), 0);
}

TEST_F(CheckpointTest, MissingTensorIsNotFoundNamingIt) {
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer> opt;
  TrainedModel(&model, &opt);
  const std::string full = Path("full.safetensors");
  ASSERT_TRUE(SaveCheckpoint(full, *model, opt.get(), CheckpointMetadata::AtStep(1)).ok());
  for (const std::string missing : {"fc.bias", "layer1.0.bn1.running_var"}) {
    const std::string cut = Path("cut.safetensors");
    Rewrite(full, cut, [&](const SafetensorsFile& f, SafetensorsWriter* w) {
      for (const std::string& n : f.names())
        if (n != missing) CopyTensor(f, n, w);
    });
    auto fresh = SmallResnet(4, 2);
    auto r = LoadCheckpoint(cut, fresh.get(), nullptr);
    ASSERT_FALSE(r.ok()) << missing;
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
    EXPECT_THAT(r.status().message(), HasSubstr("'" + missing + "'"));
  }
}

TEST_F(CheckpointTest, WrongShapeIsInvalidArgumentNamingTensorAndBothShapes) {
  auto small = SmallResnet(4, 1);
  const std::string path = Path("w4.safetensors");
  ASSERT_TRUE(SaveCheckpoint(path, *small, nullptr, CheckpointMetadata::AtStep(0)).ok());
  auto wide = SmallResnet(8, 1);
  auto r = LoadCheckpoint(path, wide.get(), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("conv1.weight"));
  EXPECT_THAT(r.status().message(), HasSubstr(ShapeString({4, 3, 3, 3})));
  EXPECT_THAT(r.status().message(), HasSubstr(ShapeString({8, 3, 3, 3})));
}

TEST_F(CheckpointTest, WrongMomentumShapeIsInvalidArgument) {
  auto model = SmallResnet(4, 1);
  const std::string full = Path("full.safetensors");
  ASSERT_TRUE(SaveCheckpoint(full, *model, nullptr, CheckpointMetadata::AtStep(0)).ok());
  const std::string bad = Path("bad.safetensors");
  Rewrite(full, bad, [&](const SafetensorsFile& f, SafetensorsWriter* w) {
    for (const std::string& n : f.names()) CopyTensor(f, n, w);
    const std::vector<float> zeros(5, 0.0f);
    ASSERT_TRUE(w->Add<float>("fc.bias.momentum_buffer", {5}, zeros).ok());
  });
  Optimizer opt({});
  auto r = LoadCheckpoint(bad, model.get(), &opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("fc.bias.momentum_buffer"));
}

TEST_F(CheckpointTest, ExtraTensorIsInvalidArgument) {
  auto model = SmallResnet(4, 1);
  const std::string full = Path("full.safetensors");
  ASSERT_TRUE(SaveCheckpoint(full, *model, nullptr, CheckpointMetadata::AtStep(0)).ok());
  const std::string extra = Path("extra.safetensors");
  Rewrite(full, extra, [&](const SafetensorsFile& f, SafetensorsWriter* w) {
    for (const std::string& n : f.names()) CopyTensor(f, n, w);
    const std::vector<float> v = {1, 2};
    ASSERT_TRUE(w->Add<float>("layer4.0.conv1.weight", {2}, v).ok());
  });
  auto r = LoadCheckpoint(extra, model.get(), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("layer4.0.conv1.weight"));
}

TEST_F(CheckpointTest, MomentumIsZeroWhenAbsentOrNotWanted) {
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer> opt;
  TrainedModel(&model, &opt);
  const std::string with = Path("with.safetensors");
  const std::string without = Path("without.safetensors");
  ASSERT_TRUE(SaveCheckpoint(with, *model, opt.get(), CheckpointMetadata::AtStep(1)).ok());
  ASSERT_TRUE(SaveCheckpoint(without, *model, nullptr, CheckpointMetadata::AtStep(1)).ok());
  EXPECT_FALSE(SafetensorsFile::Open(without)->contains("fc.weight.momentum_buffer"));

  for (const auto& [path, load] : {std::pair{without, true}, std::pair{with, false}}) {
    Optimizer fresh(opt->config());
    Param* fc = model->FindParam("fc.weight");
    fresh.Slot(*fc, 0).Fill(5.0f);
    LoadOptions options;
    options.load_momentum = load;
    auto r = LoadCheckpoint(path, model.get(), &fresh, options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (load) {
      EXPECT_EQ(fresh.Slot(*fc, 0)[0], 0.0f) << "absent buffers start at zero";
    } else {
      EXPECT_EQ(fresh.Slot(*fc, 0)[0], 5.0f) << "load_momentum=false leaves the optimizer alone";
    }
  }
}

TEST_F(CheckpointTest, MissingOrCorruptFileFails) {
  auto model = SmallResnet(4, 1);
  auto r = LoadCheckpoint(Path("absent.safetensors"), model.get(), nullptr);
  EXPECT_FALSE(r.ok());
  ASSERT_TRUE(formats::WriteFileAtomically(Path("junk.safetensors"), "not a checkpoint").ok());
  r = LoadCheckpoint(Path("junk.safetensors"), model.get(), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
}

TEST_F(CheckpointTest, NamesFollowTheIterConvention) {
  EXPECT_EQ(CheckpointName(0), "checkpoint_iter_0.safetensors");
  EXPECT_EQ(CheckpointName(4701), "checkpoint_iter_4701.safetensors");
  EXPECT_EQ(CheckpointName(std::nullopt), "checkpoint_iter_final.safetensors");
}

TEST_F(CheckpointTest, ListOrdersByStepWithFinalLast) {
  auto model = SmallResnet(4, 1);
  for (int64_t step : {10, 2, 0, 100}) {
    ASSERT_TRUE(SaveCheckpoint(Path(CheckpointName(step)), *model, nullptr,
                               CheckpointMetadata::AtStep(step))
                    .ok());
  }
  ASSERT_TRUE(SaveCheckpoint(Path(CheckpointName(std::nullopt)), *model, nullptr,
                             CheckpointMetadata::AtStep(100)).ok());
  // Skipped: not a checkpoint name, unparsable, and no step in the metadata.
  ASSERT_TRUE(SaveCheckpoint(Path("model.safetensors"), *model, nullptr, CheckpointMetadata::AtStep(5)).ok());
  ASSERT_TRUE(formats::WriteFileAtomically(Path("checkpoint_iter_7.safetensors"), "junk").ok());
  ASSERT_TRUE(SaveCheckpoint(Path("checkpoint_iter_8.safetensors"), *model, nullptr, {}).ok());

  auto list = ListCheckpoints(dir_.string());
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::vector<std::string> names;
  std::vector<int64_t> steps;
  for (const CheckpointEntry& e : *list) {
    names.push_back(fs::path(e.path).filename().string());
    steps.push_back(e.step);
    EXPECT_EQ(e.final, names.back() == "checkpoint_iter_final.safetensors");
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "checkpoint_iter_0.safetensors", "checkpoint_iter_2.safetensors",
                       "checkpoint_iter_10.safetensors", "checkpoint_iter_100.safetensors",
                       "checkpoint_iter_final.safetensors"}));
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 2, 10, 100, 100}));
  EXPECT_TRUE(list->back().final);

  auto none = ListCheckpoints(Path("no_such_dir"));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// --- .npy ----------------------------------------------------------------------------------------

struct NpyParts {
  std::string magic;
  int major = 0, minor = 0;
  size_t header_len = 0;
  std::string header;
  std::string data;
};

NpyParts SplitNpy(const std::string& bytes) {
  NpyParts p;
  EXPECT_GE(bytes.size(), 10u);
  p.magic = bytes.substr(0, 6);
  p.major = static_cast<uint8_t>(bytes[6]);
  p.minor = static_cast<uint8_t>(bytes[7]);
  p.header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
  p.header = bytes.substr(10, p.header_len);
  p.data = bytes.substr(std::min(bytes.size(), 10 + p.header_len));
  return p;
}

TEST_F(CheckpointTest, NpyOneDimFloat) {
  const std::vector<float> v = {1.5f, -2.0f, 3.25f};
  ASSERT_TRUE(WriteNpy(Path("a.npy"), {3}, v).ok());
  const NpyParts p = SplitNpy(*formats::ReadFile(Path("a.npy")));
  EXPECT_EQ(p.magic, std::string("\x93NUMPY", 6));
  EXPECT_EQ(p.major, 1);
  EXPECT_EQ(p.minor, 0);
  EXPECT_EQ((10 + p.header_len) % 64, 0u) << "data starts at a multiple of 64";
  EXPECT_EQ(p.header.back(), '\n');
  EXPECT_THAT(p.header, HasSubstr("'descr': '<f4'"));
  EXPECT_THAT(p.header, HasSubstr("'fortran_order': False"));
  EXPECT_THAT(p.header, HasSubstr("'shape': (3,)"));
  ASSERT_EQ(p.data.size(), 12u);
  EXPECT_EQ(std::memcmp(p.data.data(), v.data(), 12), 0);
}

TEST_F(CheckpointTest, NpyTwoDimInt64) {
  const std::vector<int64_t> v = {1, 2, 3, -4, 5, 1LL << 40};
  ASSERT_TRUE(WriteNpy(Path("b.npy"), {2, 3}, std::span<const int64_t>(v)).ok());
  const NpyParts p = SplitNpy(*formats::ReadFile(Path("b.npy")));
  EXPECT_EQ((10 + p.header_len) % 64, 0u);
  EXPECT_THAT(p.header, HasSubstr("'descr': '<i8'"));
  EXPECT_THAT(p.header, HasSubstr("'shape': (2, 3)"));
  ASSERT_EQ(p.data.size(), 48u);
  EXPECT_EQ(std::memcmp(p.data.data(), v.data(), 48), 0);
}

TEST_F(CheckpointTest, NpyAppenderGrowsTheFirstDimension) {
  NpyAppender a(Path("c.npy"), {2, 2});
  const std::vector<float> rows(12, 0.5f);
  a.Append(std::span<const float>(rows).subspan(0, 4));
  a.Append(std::span<const float>(rows).subspan(4, 8));
  ASSERT_TRUE(a.Close().ok());
  const NpyParts p = SplitNpy(*formats::ReadFile(Path("c.npy")));
  EXPECT_THAT(p.header, HasSubstr("'shape': (3, 2, 2)"));
  EXPECT_EQ(p.data.size(), 48u);
}

TEST_F(CheckpointTest, NpyShapeNotMatchingDataIsInvalidArgument) {
  const std::vector<float> v = {1, 2, 3};
  Status s = WriteNpy(Path("d.npy"), {2, 2}, v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_FALSE(fs::exists(Path("d.npy")));
}

}  // namespace
}  // namespace sluice::train

// --- transfer learning -------------------------------------------------------------------------

namespace sluice::train {
namespace {

TEST(MatchesPatternTest, NamesPrefixesAtDotsAndGlobs) {
  EXPECT_TRUE(MatchesPattern("fc.weight", {"fc"}));
  EXPECT_TRUE(MatchesPattern("fc.weight", {"fc.weight"}));
  EXPECT_FALSE(MatchesPattern("fc2.weight", {"fc"})) << "a prefix ends at a dot";
  EXPECT_FALSE(MatchesPattern("fc", {"fc.weight"}));
  EXPECT_TRUE(MatchesPattern("layer4.1.bn2.running_mean", {"layer4"}));
  EXPECT_FALSE(MatchesPattern("layer41.0.conv1.weight", {"layer4"}));
  EXPECT_TRUE(MatchesPattern("layer4.1.bn2.weight", {"layer4.*.bn?.weight"}));
  EXPECT_FALSE(MatchesPattern("layer3.1.bn2.weight", {"layer4.*.bn?.weight"}));
  EXPECT_TRUE(MatchesPattern("features.8.1.bias", {"classifier", "features.8*"}));
  EXPECT_FALSE(MatchesPattern("fc.weight", {}));
}

class InitFromTest : public CheckpointTest {};

TEST_F(InitFromTest, LoadsAllButTheExcludedTensors) {
  auto source = SmallResnet(4, 1);
  for (BnState& s : source->bn_states()) s.running_mean.Fill(0.25f), s.num_batches_tracked = 9;
  const std::string path = Path("source.safetensors");
  ASSERT_TRUE(SaveCheckpoint(path, *source, nullptr, CheckpointMetadata::AtStep(5)).ok());
  ModelConfig mc = source->config();
  mc.num_classes = 5;  // another head
  auto target = Model::Create(mc);
  ASSERT_TRUE(target.ok());
  (*target)->Initialize(InitScheme::kTorchvision, 2);
  const Tensor fresh_fc = (*target)->FindParam("fc.weight")->value;
  auto r = InitFromCheckpoint(path, {"fc"}, target->get());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->excluded, 2);
  EXPECT_EQ(r->loaded, static_cast<int>(source->params().size()) - 2 +
                           2 * static_cast<int>(source->bn_states().size()));
  for (size_t k = 0; k < source->params().size(); ++k) {
    const Param& a = source->params()[k];
    const Param& b = (*target)->params()[k];
    if (a.name.starts_with("fc.")) continue;
    EXPECT_EQ(std::memcmp(a.value.data(), b.value.data(), a.value.size() * sizeof(float)), 0) << a.name;
  }
  const Param* fc = (*target)->FindParam("fc.weight");
  EXPECT_EQ(std::memcmp(fresh_fc.data(), fc->value.data(), fc->value.size() * sizeof(float)), 0)
      << "fc keeps its initialization";
  for (const BnState& s : (*target)->bn_states()) {
    EXPECT_EQ(s.running_mean[0], 0.25f) << s.prefix;
    EXPECT_EQ(s.num_batches_tracked, 9) << s.prefix;
  }
}

TEST_F(InitFromTest, UnexcludedShapeMismatchAndMissingTensorsAreNamed) {
  auto source = SmallResnet(4, 1);
  const std::string path = Path("source.safetensors");
  ASSERT_TRUE(SaveCheckpoint(path, *source, nullptr, CheckpointMetadata::AtStep(5)).ok());
  ModelConfig mc = source->config();
  mc.num_classes = 5;
  auto target = Model::Create(mc);
  ASSERT_TRUE(target.ok());
  auto r = InitFromCheckpoint(path, {}, target->get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'fc.weight'"));
  EXPECT_THAT(r.status().message(), HasSubstr(ShapeString({3, 16})));
  EXPECT_THAT(r.status().message(), HasSubstr(ShapeString({5, 16})));

  mc.blocks = 2;
  mc.num_classes = 3;
  auto two_blocks = Model::Create(mc);
  ASSERT_TRUE(two_blocks.ok());
  r = InitFromCheckpoint(path, {}, two_blocks->get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("'layer1.1."));
  EXPECT_TRUE(InitFromCheckpoint(path, {"layer*.1.*"}, two_blocks->get()).ok())
      << "excluding the extra blocks makes it load";
}

}  // namespace
}  // namespace sluice::train
