// The architectures of model.h, built as node graphs with torchvision's parameter names.
#include <string>

#include "sluice/train/model.h"

namespace sluice::train {
namespace {

class Builder {
 public:
  Builder(Model* m, const ModelConfig& c) : m_(m), c_(c) {}

  // conv (+ bias) -> node
  int Conv(int x, const std::string& name, int cin, int cout, int k, int stride, int pad,
           bool bias = false) {
    Param* w = m_->AddParam(name + ".weight", ParamKind::kConvWeight, {k, k, cin, cout},
                            {cout, cin, k, k});
    Param* b = bias ? m_->AddParam(name + ".bias", ParamKind::kConvBias, {cout}, {cout}) : nullptr;
    return m_->AddNode(MakeConv2d({cin, cout, k, stride, pad}, w, b), {x});
  }
  // batch norm (+ ReLU) -> node; *gamma_out gets the gamma param
  int Bn(int x, const std::string& name, int channels, bool relu, Param** gamma_out = nullptr) {
    Param* g = m_->AddParam(name + ".weight", ParamKind::kBnWeight, {channels}, {channels});
    Param* b = m_->AddParam(name + ".bias", ParamKind::kBnBias, {channels}, {channels});
    BnState* s = m_->AddBnState(name, channels);
    if (gamma_out) *gamma_out = g;
    return m_->AddNode(MakeBatchNorm({channels, c_.bn_momentum, c_.bn_epsilon, relu}, g, b, s), {x});
  }
  int Head(int x, int channels) {
    int pooled = m_->AddNode(MakeGlobalAvgPool(), {x});
    return Dense(pooled, "fc", channels);
  }
  int Dense(int x, const std::string& name, int channels) {
    Param* w = m_->AddParam(name + ".weight", ParamKind::kDenseWeight, {c_.num_classes, channels},
                            {c_.num_classes, channels});
    Param* b = m_->AddParam(name + ".bias", ParamKind::kDenseBias, {c_.num_classes},
                            {c_.num_classes});
    return m_->AddNode(MakeDense(w, b), {x});
  }

  // BasicBlock: conv3x3(stride)-BN-ReLU-conv3x3-BN, + shortcut, ReLU.
  int Basic(int x, const std::string& p, int cin, int cout, int stride, bool project) {
    int y = Conv(x, p + ".conv1", cin, cout, 3, stride, 1);
    y = Bn(y, p + ".bn1", cout, true);
    y = Conv(y, p + ".conv2", cout, cout, 3, 1, 1);
    Param* gamma;
    y = Bn(y, p + ".bn2", cout, false, &gamma);
    m_->MarkLastBn(gamma);
    int shortcut = x;
    if (project) {
      shortcut = Conv(x, p + ".downsample.0", cin, cout, 1, stride, 0);
      shortcut = Bn(shortcut, p + ".downsample.1", cout, false);
    }
    return m_->AddNode(MakeAdd(true), {y, shortcut});
  }
  // Bottleneck (torchvision v1.5: stride on the 3x3): 1x1-BN-ReLU-3x3(stride)-BN-ReLU-1x1-BN.
  int Bottleneck(int x, const std::string& p, int cin, int width, int stride) {
    const int cout = width * 4;
    int y = Conv(x, p + ".conv1", cin, width, 1, 1, 0);
    y = Bn(y, p + ".bn1", width, true);
    y = Conv(y, p + ".conv2", width, width, 3, stride, 1);
    y = Bn(y, p + ".bn2", width, true);
    y = Conv(y, p + ".conv3", width, cout, 1, 1, 0);
    Param* gamma;
    y = Bn(y, p + ".bn3", cout, false, &gamma);
    m_->MarkLastBn(gamma);
    int shortcut = x;
    if (stride != 1 || cin != cout) {
      shortcut = Conv(x, p + ".downsample.0", cin, cout, 1, stride, 0);
      shortcut = Bn(shortcut, p + ".downsample.1", cout, false);
    }
    return m_->AddNode(MakeAdd(true), {y, shortcut});
  }

 private:
  Model* m_;
  const ModelConfig& c_;
};

// TF official CIFAR ResNet v1: every stage's first block projects (resnet_model.py block_layer).
void BuildCifarResNet(Model* m, const ModelConfig& c, int width, int n) {
  Builder b(m, c);
  int x = b.Conv(Model::kInput, "conv1", 3, width, 3, 1, 1);
  x = b.Bn(x, "bn1", width, true);
  int cin = width;
  for (int stage = 0; stage < 3; ++stage) {
    const int cout = width << stage;
    for (int i = 0; i < n; ++i) {
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(i);
      x = b.Basic(x, p, cin, cout, i == 0 && stage > 0 ? 2 : 1, i == 0);
      cin = cout;
    }
  }
  b.Head(x, cin);
}

void BuildImageNetResNet(Model* m, const ModelConfig& c, const int (&blocks)[4], bool bottleneck) {
  Builder b(m, c);
  int x = b.Conv(Model::kInput, "conv1", 3, 64, 7, 2, 3);
  x = b.Bn(x, "bn1", 64, true);
  x = m->AddNode(MakePool(PoolKind::kMax, 3, 2, 1), {x});
  int cin = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int width = 64 << stage;
    for (int i = 0; i < blocks[stage]; ++i) {
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(i);
      const int stride = i == 0 && stage > 0 ? 2 : 1;
      if (bottleneck) {
        x = b.Bottleneck(x, p, cin, width, stride);
        cin = width * 4;
      } else {
        x = b.Basic(x, p, cin, width, stride, stride != 1 || cin != width);
        cin = width;
      }
    }
  }
  b.Head(x, cin);
}

// CIFAR VGG-16-BN; indices of `features` follow torchvision's vgg16_bn (conv, bn, relu, ..., pool).
void BuildVgg16(Model* m, const ModelConfig& c) {
  Builder b(m, c);
  constexpr int kPool = 0;
  const int cfg[] = {64, 64, kPool, 128, 128, kPool, 256, 256, 256, kPool,
                     512, 512, 512, kPool, 512, 512, 512, kPool};
  int x = Model::kInput, cin = 3, index = 0;
  for (int v : cfg) {
    if (v == kPool) {
      x = m->AddNode(MakePool(PoolKind::kMax, 2, 2, 0), {x});
      index += 1;
      continue;
    }
    x = b.Conv(x, "features." + std::to_string(index), cin, v, 3, 1, 1, /*bias=*/true);
    x = b.Bn(x, "features." + std::to_string(index + 1), v, true);
    index += 3;
    cin = v;
  }
  x = m->AddNode(MakeGlobalAvgPool(), {x});  // 1x1 at 32x32 input: a flatten
  b.Dense(x, "classifier", cin);
}

}  // namespace

std::vector<std::string> ModelNames() {
  return {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "small-resnet",
          "vgg16",    "resnet18", "resnet34", "resnet50"};
}

Result<std::unique_ptr<Model>> Model::Create(const ModelConfig& config) {
  std::unique_ptr<Model> m(new Model(config));
  const std::string& n = config.name;
  if (config.num_classes < 1) return Status::InvalidArgument("num_classes must be at least 1");
  const int cifar_depths[] = {20, 32, 44, 56, 110};
  for (int depth : cifar_depths) {
    if (n == "resnet" + std::to_string(depth)) {
      BuildCifarResNet(m.get(), config, 16, (depth - 2) / 6);
      return m;
    }
  }
  if (n == "small-resnet") {
    if (config.width < 1 || config.width > 256 || config.blocks < 1 || config.blocks > 64)
      return Status::InvalidArgument("small-resnet needs width in [1, 256] and blocks in [1, 64]");
    BuildCifarResNet(m.get(), config, config.width, config.blocks);
  } else if (n == "vgg16") {
    BuildVgg16(m.get(), config);
  } else if (n == "resnet18") {
    BuildImageNetResNet(m.get(), config, {2, 2, 2, 2}, false);
  } else if (n == "resnet34") {
    BuildImageNetResNet(m.get(), config, {3, 4, 6, 3}, false);
  } else if (n == "resnet50") {
    BuildImageNetResNet(m.get(), config, {3, 4, 6, 3}, true);
  } else {
    std::string names;
    for (const std::string& s : ModelNames()) names += (names.empty() ? "" : ", ") + s;
    return Status::InvalidArgument("unknown model '" + n + "' (known: " + names + ")");
  }
  return m;
}

}  // namespace sluice::train
