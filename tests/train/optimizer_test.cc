// Optimizer against the update rule written out here step by step (plain and Nesterov, weight
// decay, BN exclusion, frozen parameters; every other optimizer's rule is checked against TF's and
// torch.optim by optimizer_interop.py); LrSchedule's piecewise/warmup/cosine/exponential/polynomial
// semantics and its validation; optimizer names, slots and OptimizerConfig::Validate; optimizer
// state through checkpoints; the step counts and schedules the reference recipes resolve to
// (trainer.h); and the hyperparameter text interface of recipe.h (SetHparam, ApplyHparamsFile,
// HparamsToYaml).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sluice/formats/file_util.h"
#include "sluice/formats/safetensors.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/model.h"
#include "sluice/train/optimizer.h"
#include "sluice/train/recipe.h"
#include "sluice/train/trainer.h"

namespace sluice::train {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// --- Optimizer ---------------------------------------------------------------------------------

Param MakeParam(std::string name, ParamKind kind, std::vector<float> values) {
  Param p;
  p.name = std::move(name);
  p.kind = kind;
  const int64_t n = static_cast<int64_t>(values.size());
  p.value.Resize({n});
  p.grad.Resize({n});
  p.grad.SetZero();
  p.torch_shape = {n};
  for (int64_t i = 0; i < n; ++i) p.value[i] = values[i];
  return p;
}

// The reference update (optimizer.h; TF MomentumOptimizer with the L2 term in the loss, i.e.
// torch.optim.SGD(momentum, weight_decay, dampening=0, nesterov)), in double.
struct Reference {
  std::vector<double> w, v;
  void Step(const std::vector<double>& g, double lr, double mu, double wd, bool nesterov) {
    for (size_t i = 0; i < w.size(); ++i) {
      const double gi = g[i] + wd * w[i];
      v[i] = mu * v[i] + gi;
      w[i] -= lr * (nesterov ? gi + mu * v[i] : v[i]);
    }
  }
};

class SgdMomentumTest : public ::testing::TestWithParam<bool> {};

// Three steps with different gradients and rates; a conv weight (decayed) and a BN gamma (not
// decayed with decay_batch_norm=false, but still updated).
TEST_P(SgdMomentumTest, ThreeStepsMatchTheFormula) {
  const bool nesterov = GetParam();
  OptimizerConfig config;
  config.momentum = 0.9;
  config.nesterov = nesterov;
  config.weight_decay = 0.01;
  config.decay_batch_norm = false;
  Optimizer opt(config);

  std::deque<Param> params;
  params.push_back(MakeParam("conv.weight", ParamKind::kConvWeight, {0.5f, -1.25f, 2.0f, 0.0f}));
  params.push_back(MakeParam("bn.weight", ParamKind::kBnWeight, {1.0f, 0.75f, -0.5f}));
  std::vector<Reference> ref;
  for (const Param& p : params) {
    Reference r;
    for (int64_t i = 0; i < p.value.size(); ++i) r.w.push_back(p.value[i]);
    r.v.assign(r.w.size(), 0.0);
    ref.push_back(r);
  }
  EXPECT_EQ(opt.DecayFor(params[0]), 0.01);
  EXPECT_EQ(opt.DecayFor(params[1]), 0.0);

  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const double rates[] = {0.1, 0.05, 0.2};
  for (int step = 0; step < 3; ++step) {
    for (size_t k = 0; k < params.size(); ++k) {
      Param& p = params[k];
      std::vector<double> g;
      for (int64_t i = 0; i < p.grad.size(); ++i) {
        p.grad[i] = normal(rng);
        g.push_back(p.grad[i]);
      }
      ref[k].Step(g, rates[step], 0.9, opt.DecayFor(p), nesterov);
    }
    opt.Step(params, rates[step]);
    for (size_t k = 0; k < params.size(); ++k) {
      const Param& p = params[k];
      const Tensor& v = opt.Slot(p, 0);
      for (int64_t i = 0; i < p.value.size(); ++i) {
        EXPECT_NEAR(p.value[i], ref[k].w[i], 1e-6 * (1 + std::abs(ref[k].w[i])))
            << p.name << "[" << i << "] after step " << step + 1 << (nesterov ? " (nesterov)" : "");
        EXPECT_NEAR(v[i], ref[k].v[i], 1e-6 * (1 + std::abs(ref[k].v[i])))
            << p.name << " momentum[" << i << "] after step " << step + 1;
      }
    }
  }
  // The BN gamma moved (it is updated, only not decayed).
  EXPECT_NE(params[1].value[0], 1.0f);
}

INSTANTIATE_TEST_SUITE_P(PlainAndNesterov, SgdMomentumTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Nesterov" : "Plain"; });

TEST(SgdMomentumFirstStep, PlainStepIsLrTimesDecayedGradient) {
  // One step from v = 0: w1 = w0 - lr * (g + wd * w0), computed by hand: 2 - 0.5 * (1 + 0.1 * 2).
  Optimizer opt({.momentum = 0.9, .nesterov = false, .weight_decay = 0.1});
  std::deque<Param> params;
  params.push_back(MakeParam("w", ParamKind::kDenseWeight, {2.0f}));
  params[0].grad[0] = 1.0f;
  opt.Step(params, 0.5);
  EXPECT_NEAR(params[0].value[0], 1.4, 1e-6);
  EXPECT_NEAR(opt.Slot(params[0], 0)[0], 1.2, 1e-6);
  // Second step, same gradient: v = 0.9 * 1.2 + (1 + 0.1 * 1.4) = 2.22; w = 1.4 - 0.5 * 2.22.
  opt.Step(params, 0.5);
  EXPECT_NEAR(opt.Slot(params[0], 0)[0], 2.22, 1e-6);
  EXPECT_NEAR(params[0].value[0], 0.29, 1e-6);
}

TEST(SgdMomentumFirstStep, NesterovStepAddsMomentumTimesVelocity) {
  // v1 = g' = 1.2; w1 = 2 - 0.5 * (1.2 + 0.9 * 1.2) = 0.86.
  Optimizer opt({.momentum = 0.9, .nesterov = true, .weight_decay = 0.1});
  std::deque<Param> params;
  params.push_back(MakeParam("w", ParamKind::kDenseWeight, {2.0f}));
  params[0].grad[0] = 1.0f;
  opt.Step(params, 0.5);
  EXPECT_NEAR(params[0].value[0], 0.86, 1e-6);
}

TEST(SgdMomentumFirstStep, DenseBiasIsDecayedEvenWithoutBatchNormDecay) {
  Optimizer opt({.momentum = 0.9, .weight_decay = 0.1, .decay_batch_norm = false});
  const Param bias = MakeParam("fc.bias", ParamKind::kDenseBias, {1.0f});
  const Param beta = MakeParam("bn.bias", ParamKind::kBnBias, {1.0f});
  EXPECT_EQ(opt.DecayFor(bias), 0.1);
  EXPECT_EQ(opt.DecayFor(beta), 0.0);
  Optimizer decays_all({.momentum = 0.9, .weight_decay = 0.1, .decay_batch_norm = true});
  EXPECT_EQ(decays_all.DecayFor(beta), 0.1);
}

TEST(SgdMomentumFirstStep, FrozenParamIsUntouched) {
  Optimizer opt({.momentum = 0.9, .weight_decay = 0.5});
  std::deque<Param> params;
  params.push_back(MakeParam("frozen", ParamKind::kConvWeight, {1.0f, -2.0f}));
  params.push_back(MakeParam("live", ParamKind::kConvWeight, {1.0f, -2.0f}));
  for (Param& p : params) p.grad.Fill(3.0f);
  params[0].trainable = false;
  for (int i = 0; i < 3; ++i) opt.Step(params, 0.1);
  EXPECT_EQ(params[0].value[0], 1.0f);
  EXPECT_EQ(params[0].value[1], -2.0f);
  EXPECT_EQ(opt.slots().count("frozen.momentum_buffer"), 0u) << "no momentum buffer for a frozen parameter";
  EXPECT_NE(params[1].value[0], 1.0f);
}

// --- LrSchedule ----------------------------------------------------------------------------------

TEST(LrScheduleTest, PiecewiseBoundaryStepKeepsTheEarlierRate) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kPiecewise;
  s.base = 0.1;
  s.boundaries = {10, 20};
  s.multipliers = {1, 0.1, 0.01};
  ASSERT_TRUE(s.Validate().ok());
  EXPECT_DOUBLE_EQ(s.At(0), 0.1);
  EXPECT_DOUBLE_EQ(s.At(10), 0.1);  // tf.train.piecewise_constant: x <= boundaries[0]
  EXPECT_DOUBLE_EQ(s.At(11), 0.1 * 0.1);
  EXPECT_DOUBLE_EQ(s.At(20), 0.1 * 0.1);
  EXPECT_DOUBLE_EQ(s.At(21), 0.1 * 0.01);
  EXPECT_DOUBLE_EQ(s.At(1000000), 0.1 * 0.01);
}

TEST(LrScheduleTest, WarmupRampsLinearlyThenFollowsTheSchedule) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kPiecewise;
  s.base = 0.4;
  s.warmup_steps = 100;
  s.boundaries = {200};
  s.multipliers = {1, 0.1};
  EXPECT_DOUBLE_EQ(s.At(0), 0.0);
  EXPECT_DOUBLE_EQ(s.At(1), 0.4 * 1 / 100);
  EXPECT_DOUBLE_EQ(s.At(50), 0.2);
  EXPECT_DOUBLE_EQ(s.At(99), 0.4 * 99 / 100);
  EXPECT_DOUBLE_EQ(s.At(100), 0.4);
  EXPECT_DOUBLE_EQ(s.At(200), 0.4);
  EXPECT_DOUBLE_EQ(s.At(201), 0.04);
}

TEST(LrScheduleTest, CosineStartsAtBaseAfterWarmupAndEndsAtZero) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kCosine;
  s.base = 0.2;
  s.warmup_steps = 10;
  s.total_steps = 110;
  ASSERT_TRUE(s.Validate().ok());
  EXPECT_DOUBLE_EQ(s.At(5), 0.1);  // warmup
  EXPECT_DOUBLE_EQ(s.At(10), 0.2);
  EXPECT_NEAR(s.At(60), 0.1, 1e-12);  // half way: cos(pi / 2) = 0
  EXPECT_LT(s.At(61), s.At(60));
  EXPECT_NEAR(s.At(110), 0.0, 1e-12);
  EXPECT_NEAR(s.At(500), 0.0, 1e-12);  // clamped past the end
}

TEST(LrScheduleTest, ConstantIsBase) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kConstant;
  s.base = 0.03;
  EXPECT_DOUBLE_EQ(s.At(0), 0.03);
  EXPECT_DOUBLE_EQ(s.At(123456), 0.03);
}

TEST(LrScheduleTest, ValidateRejectsBadSchedules) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kPiecewise;
  s.boundaries = {10, 20};
  s.multipliers = {1, 0.1};
  Status st = s.Validate();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("multiplier"));

  s.multipliers = {1, 0.1, 0.01};
  s.boundaries = {20, 10};
  st = s.Validate();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("increase"));

  s.boundaries = {10, 10};
  EXPECT_EQ(s.Validate().code(), StatusCode::kInvalidArgument);

  s.boundaries = {10, 20};
  s.base = -0.1;
  EXPECT_EQ(s.Validate().code(), StatusCode::kInvalidArgument);

  LrSchedule cosine;
  cosine.kind = LrSchedule::Kind::kCosine;
  cosine.total_steps = 0;
  EXPECT_EQ(cosine.Validate().code(), StatusCode::kInvalidArgument);
}

TEST(LrScheduleTest, ExponentialStaircaseHoldsEachRateForDecaySteps) {
  // tf.train.exponential_decay(0.1, step, 10, 0.5, staircase=True): 0.1 * 0.5^floor(step / 10).
  LrSchedule s;
  s.kind = LrSchedule::Kind::kExponential;
  s.base = 0.1;
  s.decay_steps = 10;
  s.decay_factor = 0.5;
  ASSERT_TRUE(s.Validate().ok());
  EXPECT_DOUBLE_EQ(s.At(0), 0.1);
  EXPECT_DOUBLE_EQ(s.At(9), 0.1);
  EXPECT_DOUBLE_EQ(s.At(10), 0.05);
  EXPECT_DOUBLE_EQ(s.At(19), 0.05);
  EXPECT_DOUBLE_EQ(s.At(25), 0.025);
  // slim's default factor 0.94: two decays, 0.1 * 0.8836.
  s.decay_factor = 0.94;
  EXPECT_NEAR(s.At(20), 0.08836, 1e-15);
}

TEST(LrScheduleTest, ExponentialWithoutStaircaseIsContinuous) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kExponential;
  s.base = 0.1;
  s.decay_steps = 10;
  s.decay_factor = 0.5;
  s.staircase = false;
  EXPECT_DOUBLE_EQ(s.At(0), 0.1);
  EXPECT_DOUBLE_EQ(s.At(5), 0.07071067811865475);  // 0.1 / sqrt(2)
  EXPECT_DOUBLE_EQ(s.At(10), 0.05);
  EXPECT_DOUBLE_EQ(s.At(15), 0.035355339059327376);  // 0.1 / 2^1.5
}

TEST(LrScheduleTest, ExponentialAfterWarmupCountsFromStepZero) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kExponential;
  s.base = 0.1;
  s.warmup_steps = 4;
  s.decay_steps = 10;
  s.decay_factor = 0.5;
  EXPECT_DOUBLE_EQ(s.At(0), 0.0);
  EXPECT_DOUBLE_EQ(s.At(2), 0.05);  // 0.1 * 2 / 4
  EXPECT_DOUBLE_EQ(s.At(3), 0.075);
  EXPECT_DOUBLE_EQ(s.At(4), 0.1);  // floor(4 / 10) = 0 decays
  EXPECT_DOUBLE_EQ(s.At(9), 0.1);
  EXPECT_DOUBLE_EQ(s.At(10), 0.05);  // not 14: the decay counts from step 0
}

TEST(LrScheduleTest, PolynomialPowerOneIsLinearToEndAndStaysThere) {
  // tf.train.polynomial_decay(0.1, step, 100, end_learning_rate=0.0001, power=1.0, cycle=False).
  LrSchedule s;
  s.kind = LrSchedule::Kind::kPolynomial;
  s.base = 0.1;
  s.decay_steps = 100;
  s.end = 0.0001;
  s.power = 1.0;
  ASSERT_TRUE(s.Validate().ok());
  EXPECT_DOUBLE_EQ(s.At(0), 0.1);
  EXPECT_NEAR(s.At(50), 0.05005, 1e-15);  // 0.0999 * 0.5 + 0.0001
  EXPECT_NEAR(s.At(90), 0.01009, 1e-15);  // 0.0999 * 0.1 + 0.0001
  EXPECT_DOUBLE_EQ(s.At(100), 0.0001);
  EXPECT_DOUBLE_EQ(s.At(101), 0.0001);
  EXPECT_DOUBLE_EQ(s.At(100000), 0.0001);
}

TEST(LrScheduleTest, PolynomialPowerTwo) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kPolynomial;
  s.base = 0.1;
  s.decay_steps = 100;
  s.end = 0.0001;
  s.power = 2.0;
  EXPECT_DOUBLE_EQ(s.At(0), 0.1);
  EXPECT_NEAR(s.At(50), 0.025075, 1e-15);    // 0.0999 * 0.25 + 0.0001
  EXPECT_NEAR(s.At(75), 0.00634375, 1e-15);  // 0.0999 * 0.0625 + 0.0001
  EXPECT_DOUBLE_EQ(s.At(100), 0.0001);
  EXPECT_DOUBLE_EQ(s.At(250), 0.0001);
}

TEST(LrScheduleTest, ValidateRejectsBadDecaySchedules) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::kExponential;
  s.decay_steps = 0;
  Status st = s.Validate();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("decay steps"));
  s.decay_steps = 10;
  EXPECT_TRUE(s.Validate().ok());
  s.decay_factor = 0;
  st = s.Validate();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("learning_rate_decay_factor"));

  LrSchedule p;
  p.kind = LrSchedule::Kind::kPolynomial;
  p.decay_steps = -5;
  EXPECT_EQ(p.Validate().code(), StatusCode::kInvalidArgument);
}

// --- Optimizer kinds and their configuration ----------------------------------------------------

TEST(OptimizerKindTest, ParsesSlimsNamesAndNamesThemBack) {
  const std::pair<const char*, OptimizerKind> kinds[] = {
      {"sgd", OptimizerKind::kSgd},         {"momentum", OptimizerKind::kMomentum},
      {"rmsprop", OptimizerKind::kRmsprop}, {"adam", OptimizerKind::kAdam},
      {"adagrad", OptimizerKind::kAdagrad}, {"adadelta", OptimizerKind::kAdadelta},
      {"ftrl", OptimizerKind::kFtrl}};
  for (const auto& [name, kind] : kinds) {
    auto parsed = ParseOptimizerKind(name);
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, kind) << name;
    EXPECT_STREQ(OptimizerKindName(kind), name);
  }
}

TEST(OptimizerKindTest, UnknownNameIsInvalidArgumentListingKnownOnes) {
  for (const char* bad : {"lamb", "", "Adam", "sgd "}) {
    auto parsed = ParseOptimizerKind(bad);
    ASSERT_FALSE(parsed.ok()) << "'" << bad << "'";
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    std::string quoted = "unknown optimizer '";
    quoted.append(bad).append("'");
    EXPECT_THAT(parsed.status().message(), HasSubstr(quoted));
    EXPECT_THAT(parsed.status().message(),
                HasSubstr("sgd, momentum, rmsprop, adam, adagrad, adadelta, ftrl"));
  }
}

TEST(OptimizerKindTest, SlotNamesAndInitialValuesAreTfs) {
  OptimizerConfig c;
  c.adagrad_initial_accumulator_value = 0.25;
  c.ftrl_initial_accumulator_value = 0.5;
  auto slots = [&](OptimizerKind kind) {
    c.kind = kind;
    Optimizer opt(c);
    std::vector<std::pair<std::string, float>> out;
    for (size_t i = 0; i < opt.SlotNames().size(); ++i)
      out.emplace_back(opt.SlotNames()[i], opt.SlotInit(i));
    return out;
  };
  using V = std::vector<std::pair<std::string, float>>;
  EXPECT_EQ(slots(OptimizerKind::kSgd), V{});
  EXPECT_EQ(slots(OptimizerKind::kMomentum), (V{{"momentum_buffer", 0.0f}}));
  EXPECT_EQ(slots(OptimizerKind::kRmsprop), (V{{"square_avg", 1.0f}, {"momentum_buffer", 0.0f}}));
  EXPECT_EQ(slots(OptimizerKind::kAdam), (V{{"exp_avg", 0.0f}, {"exp_avg_sq", 0.0f}}));
  EXPECT_EQ(slots(OptimizerKind::kAdagrad), (V{{"sum", 0.25f}}));
  EXPECT_EQ(slots(OptimizerKind::kAdadelta), (V{{"square_avg", 0.0f}, {"acc_delta", 0.0f}}));
  EXPECT_EQ(slots(OptimizerKind::kFtrl), (V{{"accumulator", 0.5f}, {"linear", 0.0f}}));
}

TEST(OptimizerConfigTest, SlimDefaultsAreValidForEveryKind) {
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kRmsprop,
                             OptimizerKind::kAdam, OptimizerKind::kAdagrad,
                             OptimizerKind::kAdadelta, OptimizerKind::kFtrl}) {
    OptimizerConfig c;
    c.kind = kind;
    EXPECT_TRUE(c.Validate().ok()) << OptimizerKindName(kind) << ": " << c.Validate().ToString();
  }
}

TEST(OptimizerConfigTest, ValidateRejectsBadValues) {
  const double nan = std::nan("");
  struct Case {
    OptimizerKind kind;
    std::function<void(OptimizerConfig&)> edit;
    const char* message;
  };
  const Case cases[] = {
      {OptimizerKind::kSgd, [](auto& c) { c.weight_decay = -1e-4; }, "weight_decay"},
      {OptimizerKind::kAdam, [&](auto& c) { c.weight_decay = nan; }, "weight_decay"},
      {OptimizerKind::kMomentum, [](auto& c) { c.momentum = -0.1; }, "momentum"},
      {OptimizerKind::kRmsprop, [](auto& c) { c.rmsprop_decay = 1.0; }, "rmsprop_decay"},
      {OptimizerKind::kRmsprop, [](auto& c) { c.rmsprop_decay = -0.5; }, "rmsprop_decay"},
      {OptimizerKind::kRmsprop, [](auto& c) { c.rmsprop_momentum = -1; }, "rmsprop_momentum"},
      {OptimizerKind::kRmsprop, [](auto& c) { c.epsilon = 0; }, "opt_epsilon"},
      {OptimizerKind::kAdam, [](auto& c) { c.adam_beta1 = 1.0; }, "adam_beta1"},
      {OptimizerKind::kAdam, [](auto& c) { c.adam_beta2 = -0.1; }, "adam_beta2"},
      {OptimizerKind::kAdam, [&](auto& c) { c.adam_beta2 = nan; }, "adam_beta2"},
      {OptimizerKind::kAdam, [](auto& c) { c.epsilon = -1; }, "opt_epsilon"},
      {OptimizerKind::kAdagrad, [](auto& c) { c.adagrad_initial_accumulator_value = 0; },
       "adagrad_initial_accumulator_value"},
      {OptimizerKind::kAdadelta, [](auto& c) { c.adadelta_rho = 1.0; }, "adadelta_rho"},
      {OptimizerKind::kAdadelta, [](auto& c) { c.epsilon = 0; }, "opt_epsilon"},
      {OptimizerKind::kFtrl, [](auto& c) { c.ftrl_learning_rate_power = 0.5; },
       "ftrl_learning_rate_power"},
      {OptimizerKind::kFtrl, [](auto& c) { c.ftrl_initial_accumulator_value = -0.1; },
       "ftrl_initial_accumulator_value"},
      {OptimizerKind::kFtrl, [](auto& c) { c.ftrl_l1 = -0.01; }, "ftrl_l1"},
      {OptimizerKind::kFtrl, [](auto& c) { c.ftrl_l2 = -0.01; }, "ftrl_l2"},
  };
  for (const Case& k : cases) {
    OptimizerConfig c;
    c.kind = k.kind;
    k.edit(c);
    const Status s = c.Validate();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument)
        << OptimizerKindName(k.kind) << ", " << k.message;
    EXPECT_THAT(s.message(), HasSubstr(k.message)) << OptimizerKindName(k.kind);
  }
  // A field another kind reads is not checked: rmsprop_decay = 1 is fine for momentum.
  OptimizerConfig c;
  c.rmsprop_decay = 1.0;
  EXPECT_TRUE(c.Validate().ok());
}

// --- Optimizer state in checkpoints --------------------------------------------------------------

class OptimizerCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() /
             ("sluice_optimizer_ckpt_" + std::to_string(::getpid()) + ".safetensors"))
                .string();
  }
  void TearDown() override { fs::remove(path_); }

  static std::unique_ptr<Model> SmallResnet(uint64_t seed) {
    ModelConfig mc;
    mc.name = "small-resnet";
    mc.width = 4;
    mc.blocks = 1;
    mc.num_classes = 3;
    auto m = Model::Create(mc);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    (*m)->Initialize(InitScheme::kTorchvision, seed);
    return std::move(*m);
  }
  // Seeded gradients, the same for every model given the same seed.
  static void Gradients(Model& m, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (Param& p : m.params())
      for (int64_t i = 0; i < p.grad.size(); ++i) p.grad[i] = normal(rng);
  }
  static bool SameFloats(const Tensor& a, const Tensor& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  }

  std::string path_;
};

TEST_F(OptimizerCheckpointTest, AdamSlotsAndStepsSurviveARoundTrip) {
  const OptimizerConfig adam{.kind = OptimizerKind::kAdam, .weight_decay = 1e-3, .epsilon = 1e-3};
  auto model = SmallResnet(7);
  Optimizer opt(adam);
  for (uint32_t step = 1; step <= 3; ++step) {
    Gradients(*model, step);
    opt.Step(model->params(), 0.01);
  }
  ASSERT_TRUE(SaveCheckpoint(path_, *model, &opt, CheckpointMetadata::AtStep(3)).ok());

  auto loaded = SmallResnet(8);
  Optimizer loaded_opt(adam);
  auto meta = LoadCheckpoint(path_, loaded.get(), &loaded_opt);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->optimizer, "adam");
  EXPECT_EQ(meta->optimizer_steps, 3);
  EXPECT_EQ(loaded_opt.steps(), 3) << "Adam's t, for its bias correction";
  for (size_t k = 0; k < model->params().size(); ++k) {
    const Param& a = model->params()[k];
    const Param& b = loaded->params()[k];
    EXPECT_TRUE(SameFloats(a.value, b.value)) << a.name;
    for (size_t s = 0; s < 2; ++s) {
      EXPECT_TRUE(SameFloats(opt.Slot(a, s), loaded_opt.Slot(b, s)))
          << a.name << "." << opt.SlotNames()[s];
      EXPECT_NE(opt.Slot(a, s)[0], 0.0f)
          << a.name << "." << opt.SlotNames()[s] << " should have moved";
    }
  }
  // A fourth step continues bit for bit (same t, same slots).
  Gradients(*model, 4);
  Gradients(*loaded, 4);
  opt.Step(model->params(), 0.01);
  loaded_opt.Step(loaded->params(), 0.01);
  for (size_t k = 0; k < model->params().size(); ++k)
    EXPECT_TRUE(SameFloats(model->params()[k].value, loaded->params()[k].value))
        << model->params()[k].name;
}

TEST_F(OptimizerCheckpointTest, AdamCheckpointLoadsIntoMomentumWithFreshState) {
  auto model = SmallResnet(7);
  Optimizer adam({.kind = OptimizerKind::kAdam, .epsilon = 1e-3});
  for (uint32_t step = 1; step <= 2; ++step) {
    Gradients(*model, step);
    adam.Step(model->params(), 0.01);
  }
  ASSERT_TRUE(SaveCheckpoint(path_, *model, &adam, CheckpointMetadata::AtStep(2)).ok());

  auto loaded = SmallResnet(8);
  Optimizer momentum({.kind = OptimizerKind::kMomentum, .momentum = 0.9});
  momentum.set_steps(17);
  auto meta = LoadCheckpoint(path_, loaded.get(), &momentum);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString()
                         << " (another optimizer's slots are not an error)";
  EXPECT_EQ(momentum.steps(), 0) << "another optimizer's step count does not carry over";
  for (size_t k = 0; k < model->params().size(); ++k) {
    const Param& p = loaded->params()[k];
    EXPECT_TRUE(SameFloats(model->params()[k].value, p.value)) << p.name;
    const Tensor& v = momentum.Slot(p, 0);
    for (int64_t i = 0; i < v.size(); ++i)
      ASSERT_EQ(v[i], 0.0f) << p.name << ".momentum_buffer[" << i << "]";
  }
  EXPECT_EQ(momentum.slots().count(loaded->params()[0].name + ".exp_avg"), 0u);
}

// TF restores no other optimizer's slots; names shared across kinds must not carry state over
// either: rmsprop's momentum_buffer is lr * g / rms (momentum's sums g) and its square_avg starts
// at 1 (adadelta's at 0).
TEST_F(OptimizerCheckpointTest, AnotherOptimizersSlotOfTheSameNameStartsOver) {
  auto model = SmallResnet(7);
  Optimizer rmsprop({.kind = OptimizerKind::kRmsprop});
  for (uint32_t step = 1; step <= 2; ++step) {
    Gradients(*model, step);
    rmsprop.Step(model->params(), 0.01);
  }
  ASSERT_TRUE(SaveCheckpoint(path_, *model, &rmsprop, CheckpointMetadata::AtStep(2)).ok());
  const Param& first = model->params()[0];
  ASSERT_NE(rmsprop.Slot(first, 1)[0], 0.0f) << "rmsprop's momentum_buffer should have moved";

  for (OptimizerKind kind : {OptimizerKind::kMomentum, OptimizerKind::kAdadelta}) {
    auto loaded = SmallResnet(8);
    Optimizer opt({.kind = kind});
    auto meta = LoadCheckpoint(path_, loaded.get(), &opt);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    for (const Param& p : loaded->params()) {
      for (size_t s = 0; s < opt.SlotNames().size(); ++s) {
        const Tensor& t = opt.Slot(p, s);
        for (int64_t i = 0; i < t.size(); ++i)
          ASSERT_EQ(t[i], opt.SlotInit(s))
              << OptimizerKindName(kind) << ": " << p.name << "." << opt.SlotNames()[s] << "[" << i
              << "] came from rmsprop's slot of that name";
      }
    }
  }
}

// A checkpoint from before optimizers had kinds (no "optimizer" metadata) is momentum's: it still
// gives momentum its buffers, and rmsprop none.
TEST_F(OptimizerCheckpointTest, CheckpointWithoutOptimizerNameIsMomentums) {
  auto model = SmallResnet(7);
  Optimizer momentum({.kind = OptimizerKind::kMomentum, .momentum = 0.9});
  Gradients(*model, 1);
  momentum.Step(model->params(), 0.1);
  ASSERT_TRUE(SaveCheckpoint(path_, *model, &momentum, CheckpointMetadata::AtStep(1)).ok());
  {
    auto file = formats::SafetensorsFile::Open(path_);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    formats::SafetensorsWriter w;
    for (const std::string& name : file->names()) {
      auto t = file->Find(name);
      ASSERT_TRUE(t.ok());
      ASSERT_TRUE(w.Add(name, t->dtype, t->shape, t->data).ok());
    }
    for (const auto& [k, v] : file->metadata())
      if (k != "optimizer" && k != "optimizer_steps") w.SetMetadata(k, v);
    ASSERT_TRUE(w.WriteFile(path_).ok());
  }
  auto loaded = SmallResnet(8);
  Optimizer loaded_opt({.kind = OptimizerKind::kMomentum, .momentum = 0.9});
  auto meta = LoadCheckpoint(path_, loaded.get(), &loaded_opt);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_TRUE(meta->optimizer.empty());
  EXPECT_EQ(loaded_opt.steps(), 0);
  for (size_t k = 0; k < model->params().size(); ++k)
    EXPECT_TRUE(SameFloats(momentum.Slot(model->params()[k], 0),
                           loaded_opt.Slot(loaded->params()[k], 0)))
        << model->params()[k].name;
  Optimizer rmsprop({.kind = OptimizerKind::kRmsprop});
  ASSERT_TRUE(LoadCheckpoint(path_, loaded.get(), &rmsprop).ok());
  const Tensor& buffer = rmsprop.Slot(loaded->params()[0], 1);
  ASSERT_EQ(rmsprop.SlotNames()[1], "momentum_buffer");
  for (int64_t i = 0; i < buffer.size(); ++i)
    ASSERT_EQ(buffer[i], 0.0f) << "rmsprop's momentum_buffer[" << i << "] came from momentum's";
}

// --- Recipes resolved to steps and schedules ---------------------------------------------------

TEST(ResolveTest, TfCifarResnetAtFullCifar) {
  TrainConfig c;
  ASSERT_TRUE(ApplyRecipe("tf-cifar-resnet", &c).ok());
  EXPECT_EQ(c.optimization.batch_size, 128);
  const int64_t steps = ResolveTrainSteps(c, 50000);
  EXPECT_EQ(steps, 71108);
  const LrSchedule s = ResolveSchedule(c, 50000, steps);
  ASSERT_TRUE(s.Validate().ok());
  EXPECT_EQ(s.kind, LrSchedule::Kind::kPiecewise);
  EXPECT_DOUBLE_EQ(s.base, 0.1);
  EXPECT_EQ(s.warmup_steps, 0);
  // resnet_run_loop.learning_rate_with_decay: int(batches_per_epoch * epoch), 390.625 per epoch.
  EXPECT_EQ(s.boundaries, (std::vector<int64_t>{35546, 53125}));
  EXPECT_DOUBLE_EQ(s.At(35546), 0.1);
  EXPECT_DOUBLE_EQ(s.At(35547), 0.01);
  EXPECT_NEAR(s.At(53126), 0.001, 1e-15);
}

TEST(ResolveTest, TfCifarResnetScalesStepsToDatasetAndBatch) {
  TrainConfig c;
  ASSERT_TRUE(ApplyRecipe("tf-cifar-resnet", &c).ok());
  c.optimization.batch_size = 256;
  // round(71108 * (25000 / 50000) * (128 / 256)) = 17777.
  EXPECT_EQ(ResolveTrainSteps(c, 25000), 17777);
  c.schedule.train_steps = 42;
  EXPECT_EQ(ResolveTrainSteps(c, 25000), 42);
}

TEST(ResolveTest, TpuImagenetResnet50) {
  TrainConfig c;
  ASSERT_TRUE(ApplyRecipe("tpu-imagenet-resnet50", &c).ok());
  EXPECT_EQ(c.optimization.batch_size, 1024);
  const int64_t images = 1281167;
  const int64_t steps = ResolveTrainSteps(c, images);
  EXPECT_EQ(steps, 112590);
  const LrSchedule s = ResolveSchedule(c, images, steps);
  ASSERT_TRUE(s.Validate().ok());
  EXPECT_DOUBLE_EQ(s.base, 0.4);
  EXPECT_EQ(s.warmup_steps, 6256);  // round(5 * 1281167 / 1024) = round(6255.70)
  EXPECT_DOUBLE_EQ(s.At(6256), 0.4);
  EXPECT_DOUBLE_EQ(s.At(3128), 0.2);
  // Rule "tpu": the rate changes at the first step whose epoch (step / steps_per_epoch) is >= 30.
  const double steps_per_epoch = static_cast<double>(images) / 1024;
  for (double epoch : {30.0, 60.0, 80.0}) {
    int64_t first = static_cast<int64_t>(std::ceil(epoch * steps_per_epoch));
    ASSERT_GE(first / steps_per_epoch, epoch);
    ASSERT_LT((first - 1) / steps_per_epoch, epoch);
    EXPECT_GT(s.At(first - 1), s.At(first) * 5) << "epoch " << epoch << ", step " << first;
    EXPECT_DOUBLE_EQ(s.At(first), s.At(first + 1)) << "epoch " << epoch;
  }
  EXPECT_DOUBLE_EQ(s.At(37534), 0.4);  // epoch 29.9997
  EXPECT_NEAR(s.At(37535), 0.04, 1e-15);  // epoch 30.0005
  EXPECT_NEAR(s.At(112589), 0.0004, 1e-15);
}

TEST(ResolveTest, ForcedLearningRateIsConstant) {
  TrainConfig c;
  c.schedule.force_learning_rate = 0.003;
  const LrSchedule s = ResolveSchedule(c, 50000, 100);
  EXPECT_EQ(s.kind, LrSchedule::Kind::kConstant);
  EXPECT_DOUBLE_EQ(s.At(0), 0.003);
  EXPECT_DOUBLE_EQ(s.At(99), 0.003);
}

TEST(ResolveTest, UnknownRecipeIsInvalidArgumentListingKnownOnes) {
  TrainConfig c;
  Status s = ApplyRecipe("imagenet-in-5-minutes", &c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("imagenet-in-5-minutes"));
  EXPECT_THAT(s.message(), HasSubstr("tf-cifar-resnet"));
}

TEST(ResolveTest, ApplyRecipeKeepsRunControlFields) {
  TrainConfig c;
  c.data.dir = "/d";
  c.run.model_dir = "/m";
  c.run.checkpoint_iters = {0, 5};
  c.run.train_threads = 3;
  c.optimization.batch_size = 7;
  ASSERT_TRUE(ApplyRecipe("vgg-cifar", &c).ok());
  EXPECT_EQ(c.data.dir, "/d");
  EXPECT_EQ(c.run.model_dir, "/m");
  EXPECT_EQ(c.run.checkpoint_iters, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(c.run.train_threads, 3);
  EXPECT_EQ(c.optimization.batch_size, 128);  // a hyperparameter: reset to the recipe's
  EXPECT_EQ(c.model.name, "vgg16");
  EXPECT_DOUBLE_EQ(c.optimization.optimizer.weight_decay, 5e-4);
}

// --- Hyperparameters as text ---------------------------------------------------------------------

void ExpectInvalid(const Status& s, const std::string& key) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(key));
}

TEST(HparamTest, SetHparamParsesNumbersBoolsAndLists) {
  TrainConfig c;
  ASSERT_TRUE(SetHparam(&c, "batch_size", "64").ok());
  EXPECT_EQ(c.optimization.batch_size, 64);
  ASSERT_TRUE(SetHparam(&c, "train_steps", "1e3").ok());
  EXPECT_EQ(c.schedule.train_steps, 1000);
  ASSERT_TRUE(SetHparam(&c, "base_learning_rate", "0.025").ok());
  EXPECT_DOUBLE_EQ(c.schedule.base_learning_rate, 0.025);
  ASSERT_TRUE(SetHparam(&c, "bn_momentum", "0.9").ok());
  EXPECT_FLOAT_EQ(c.model.bn_momentum, 0.9f);
  ASSERT_TRUE(SetHparam(&c, "nesterov", "true").ok());
  EXPECT_TRUE(c.optimization.optimizer.nesterov);
  ASSERT_TRUE(SetHparam(&c, "weight_decay_batch_norm", "False").ok());
  EXPECT_FALSE(c.optimization.optimizer.decay_batch_norm);
  ASSERT_TRUE(SetHparam(&c, "lr_boundary_epochs", "[10, 20.5]").ok());
  EXPECT_EQ(c.schedule.lr_boundary_epochs, (std::vector<double>{10, 20.5}));
  ASSERT_TRUE(SetHparam(&c, "lr_multipliers", "1,0.5,0.25").ok());
  EXPECT_EQ(c.schedule.lr_multipliers, (std::vector<double>{1, 0.5, 0.25}));
  ASSERT_TRUE(SetHparam(&c, "lr_multipliers", "[]").ok());
  EXPECT_TRUE(c.schedule.lr_multipliers.empty());
  ASSERT_TRUE(SetHparam(&c, "lr_schedule", "cosine").ok());
  EXPECT_EQ(c.schedule.lr_schedule, LrSchedule::Kind::kCosine);
  ASSERT_TRUE(SetHparam(&c, "init", "torchvision").ok());
  EXPECT_EQ(c.init, InitScheme::kTorchvision);
  ASSERT_TRUE(SetHparam(&c, "model", "small-resnet").ok());
  EXPECT_EQ(c.model.name, "small-resnet");
  ASSERT_TRUE(SetHparam(&c, "train_preset", "resnet-train").ok());
  EXPECT_EQ(c.pipeline.preset, pipeline::Preset::kResnetTrain);
  ASSERT_TRUE(SetHparam(&c, "seed", "12345").ok());
  EXPECT_EQ(c.run.seed, 12345u);
}

TEST(HparamTest, SetHparamRejectsUnknownKeysAndBadValues) {
  TrainConfig c;
  ExpectInvalid(SetHparam(&c, "no_such_key", "1"), "no_such_key");
  ExpectInvalid(SetHparam(&c, "batch_size", "abc"), "batch_size");
  ExpectInvalid(SetHparam(&c, "batch_size", "1.5"), "batch_size");
  ExpectInvalid(SetHparam(&c, "batch_size", "12x"), "batch_size");
  ExpectInvalid(SetHparam(&c, "base_learning_rate", ""), "base_learning_rate");
  ExpectInvalid(SetHparam(&c, "base_learning_rate", "nan"), "base_learning_rate");
  ExpectInvalid(SetHparam(&c, "nesterov", "maybe"), "nesterov");
  ExpectInvalid(SetHparam(&c, "lr_boundary_epochs", "10,x"), "lr_boundary_epochs");
  ExpectInvalid(SetHparam(&c, "lr_schedule", "linear"), "lr_schedule");
  ExpectInvalid(SetHparam(&c, "lr_boundary_rule", "gpu"), "lr_boundary_rule");
  ExpectInvalid(SetHparam(&c, "init", "xavier"), "init");
  ExpectInvalid(SetHparam(&c, "eval_preset", "no-such-preset"), "eval_preset");
  EXPECT_EQ(c.optimization.batch_size, 128) << "a rejected value leaves the field as it was";
}

class HparamsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sluice_hparams_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    EXPECT_TRUE(formats::WriteFileAtomically(path, text).ok());
    return path;
  }
  fs::path dir_;
};

TEST_F(HparamsFileTest, AppliesScalarsAndLists) {
  TrainConfig c;
  const std::string path = Write("h.yaml",
                                 "# comment\n"
                                 "batch_size: 32\n"
                                 "nesterov: true\n"
                                 "lr_boundary_epochs: [5, 7.5]\n"
                                 "lr_multipliers:\n"
                                 "  - 1\n"
                                 "  - 0.1\n"
                                 "  - 0.01\n"
                                 "model: small-resnet\n");
  Status s = ApplyHparamsFile(path, &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.optimization.batch_size, 32);
  EXPECT_TRUE(c.optimization.optimizer.nesterov);
  EXPECT_EQ(c.schedule.lr_boundary_epochs, (std::vector<double>{5, 7.5}));
  EXPECT_EQ(c.schedule.lr_multipliers, (std::vector<double>{1, 0.1, 0.01}));
  EXPECT_EQ(c.model.name, "small-resnet");
}

// Nested maps flatten with '.'. No key of HparamKeys() contains a '.', so a nested key can only
// come back as unknown, named in its joined form (this pins the flattening).
TEST_F(HparamsFileTest, NestedMapKeysApplyAsTopLevelKeys) {
  TrainConfig c;
  const std::string path = Write("nested.yaml",
                                 "batch_size: 16\n"
                                 "optimizer:\n"
                                 "  schedule:\n"
                                 "    momentum: 0.8\n"
                                 "  bogus_key: 1\n");
  Status s = ApplyHparamsFile(path, &c);
  ExpectInvalid(s, "bogus_key");
  EXPECT_THAT(s.message(), HasSubstr(path));
  TrainConfig d;
  ASSERT_TRUE(ApplyHparamsFile(Write("nested_ok.yaml", "train:\n  batch_size: 16\noptimizer:\n  momentum: 0.8\n"), &d).ok());
  EXPECT_EQ(d.optimization.batch_size, 16);
  EXPECT_DOUBLE_EQ(d.optimization.optimizer.momentum, 0.8);
}

TEST_F(HparamsFileTest, BadValueNamesFileAndKey) {
  TrainConfig c;
  const std::string path = Write("bad.yaml", "width: 8\nblocks: many\n");
  Status s = ApplyHparamsFile(path, &c);
  ExpectInvalid(s, "blocks");
  EXPECT_THAT(s.message(), HasSubstr(path));
}

TEST_F(HparamsFileTest, MissingFileIsNotFoundAndBrokenYamlIsInvalid) {
  TrainConfig c;
  Status s = ApplyHparamsFile((dir_ / "absent.yaml").string(), &c);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  s = ApplyHparamsFile(Write("broken.yaml", "a: [1, 2\n"), &c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
}

TrainConfig ModifiedConfig() {
  TrainConfig c;
  EXPECT_TRUE(ApplyRecipe("tpu-imagenet-resnet50", &c).ok());
  c.model.name = "small-resnet";
  c.model.width = 12;
  c.model.blocks = 2;
  c.model.num_classes = 7;
  c.model.bn_momentum = 0.95f;
  c.model.bn_epsilon = 1e-3f;
  c.model.dropout = 0.3f;
  c.model.drop_connect = 0.125f;
  c.init = InitScheme::kTorchvision;
  c.pipeline.preset = pipeline::Preset::kCifarTrain;
  c.data.eval_preset = pipeline::Preset::kCifarEval;
  c.pipeline.image_size = 40;
  c.optimization.batch_size = 48;
  c.schedule.base_learning_rate = 0.05;
  c.schedule.lr_batch_denominator = 64;
  c.schedule.lr_schedule = LrSchedule::Kind::kCosine;
  c.schedule.lr_boundary_epochs = {3, 4.5};
  c.schedule.lr_multipliers = {1, 0.2, 0.04};
  c.schedule.lr_boundary_rule = BoundaryRule::kTf;
  c.schedule.warmup_epochs = 1.5;
  c.schedule.force_learning_rate = 0.125;
  // Paths and names with YAML's special characters: quotes, ': ', ' #', a leading '-'.
  c.lottery.prune_method = "prune_all_to_global_51.2";
  c.lottery.prune_at = "runs/it's: #1/checkpoint_iter_final.safetensors";
  c.lottery.reset_to = "-runs/[a]/checkpoint_iter_4701.safetensors";
  c.lottery.reset_global_step_to = "runs/''/{b}/checkpoint_iter_4701.safetensors";
  c.optimization.optimizer.momentum = 0.875;
  c.optimization.optimizer.nesterov = false;
  c.optimization.optimizer.weight_decay = 3e-5;
  c.optimization.optimizer.decay_batch_norm = true;
  c.optimization.optimizer.kind = OptimizerKind::kFtrl;
  c.optimization.optimizer.epsilon = 0.25;
  c.optimization.optimizer.rmsprop_decay = 0.8;
  c.optimization.optimizer.rmsprop_momentum = 0.7;
  c.optimization.optimizer.adam_beta1 = 0.85;
  c.optimization.optimizer.adam_beta2 = 0.995;
  c.optimization.optimizer.adagrad_initial_accumulator_value = 0.3;
  c.optimization.optimizer.adadelta_rho = 0.9;
  c.optimization.optimizer.ftrl_learning_rate_power = -0.75;
  c.optimization.optimizer.ftrl_initial_accumulator_value = 0.2;
  c.optimization.optimizer.ftrl_l1 = 0.01;
  c.optimization.optimizer.ftrl_l2 = 0.02;
  c.schedule.num_epochs_per_decay = 2.4;
  c.schedule.learning_rate_decay_factor = 0.97;
  c.schedule.lr_staircase = false;
  c.schedule.end_learning_rate = 0.0005;
  c.schedule.polynomial_power = 2;
  c.optimization.moving_average_decay = 0.9999;
  c.transfer.init_from = "runs/it's: #2/checkpoint_iter_final.safetensors";
  c.transfer.init_exclude = {"fc", "layer4.*.bn?", "it's: #x"};
  c.transfer.trainable = {"layer4", "fc"};
  c.optimization.label_smoothing = 0.1;
  c.schedule.train_steps = 777;
  c.schedule.train_epochs = 12.5;
  c.schedule.reference_steps = 1000;
  c.schedule.reference_images = 2000;
  c.schedule.reference_batch = 32;
  c.run.eval_every = 50;
  c.run.eval_limit = 300;
  c.run.log_every = 5;
  c.run.seed = 987654321;
  return c;
}

void ExpectSameHparams(const TrainConfig& a, const TrainConfig& b) {
  EXPECT_EQ(a.model.name, b.model.name);
  EXPECT_EQ(a.model.width, b.model.width);
  EXPECT_EQ(a.model.blocks, b.model.blocks);
  EXPECT_EQ(a.model.num_classes, b.model.num_classes);
  EXPECT_EQ(a.model.bn_momentum, b.model.bn_momentum);
  EXPECT_EQ(a.model.bn_epsilon, b.model.bn_epsilon);
  EXPECT_EQ(a.model.dropout, b.model.dropout);
  EXPECT_EQ(a.model.drop_connect, b.model.drop_connect);
  EXPECT_EQ(a.model.zero_init_last_bn, b.model.zero_init_last_bn);
  EXPECT_EQ(a.init, b.init);
  EXPECT_EQ(a.pipeline.preset, b.pipeline.preset);
  EXPECT_EQ(a.data.eval_preset, b.data.eval_preset);
  EXPECT_EQ(a.pipeline.image_size, b.pipeline.image_size);
  EXPECT_EQ(a.optimization.batch_size, b.optimization.batch_size);
  EXPECT_EQ(a.schedule.base_learning_rate, b.schedule.base_learning_rate);
  EXPECT_EQ(a.schedule.lr_batch_denominator, b.schedule.lr_batch_denominator);
  EXPECT_EQ(a.schedule.lr_schedule, b.schedule.lr_schedule);
  EXPECT_EQ(a.schedule.lr_boundary_epochs, b.schedule.lr_boundary_epochs);
  EXPECT_EQ(a.schedule.lr_multipliers, b.schedule.lr_multipliers);
  EXPECT_EQ(a.schedule.lr_boundary_rule, b.schedule.lr_boundary_rule);
  EXPECT_EQ(a.schedule.warmup_epochs, b.schedule.warmup_epochs);
  EXPECT_EQ(a.schedule.force_learning_rate, b.schedule.force_learning_rate);
  EXPECT_EQ(a.lottery.prune_method, b.lottery.prune_method);
  EXPECT_EQ(a.lottery.prune_at, b.lottery.prune_at);
  EXPECT_EQ(a.lottery.reset_to, b.lottery.reset_to);
  EXPECT_EQ(a.lottery.reset_global_step_to, b.lottery.reset_global_step_to);
  EXPECT_EQ(a.optimization.optimizer.momentum, b.optimization.optimizer.momentum);
  EXPECT_EQ(a.optimization.optimizer.nesterov, b.optimization.optimizer.nesterov);
  EXPECT_EQ(a.optimization.optimizer.weight_decay, b.optimization.optimizer.weight_decay);
  EXPECT_EQ(a.optimization.optimizer.decay_batch_norm, b.optimization.optimizer.decay_batch_norm);
  EXPECT_EQ(a.optimization.optimizer.kind, b.optimization.optimizer.kind);
  EXPECT_EQ(a.optimization.optimizer.epsilon, b.optimization.optimizer.epsilon);
  EXPECT_EQ(a.optimization.optimizer.rmsprop_decay, b.optimization.optimizer.rmsprop_decay);
  EXPECT_EQ(a.optimization.optimizer.rmsprop_momentum, b.optimization.optimizer.rmsprop_momentum);
  EXPECT_EQ(a.optimization.optimizer.adam_beta1, b.optimization.optimizer.adam_beta1);
  EXPECT_EQ(a.optimization.optimizer.adam_beta2, b.optimization.optimizer.adam_beta2);
  EXPECT_EQ(a.optimization.optimizer.adagrad_initial_accumulator_value, b.optimization.optimizer.adagrad_initial_accumulator_value);
  EXPECT_EQ(a.optimization.optimizer.adadelta_rho, b.optimization.optimizer.adadelta_rho);
  EXPECT_EQ(a.optimization.optimizer.ftrl_learning_rate_power, b.optimization.optimizer.ftrl_learning_rate_power);
  EXPECT_EQ(a.optimization.optimizer.ftrl_initial_accumulator_value, b.optimization.optimizer.ftrl_initial_accumulator_value);
  EXPECT_EQ(a.optimization.optimizer.ftrl_l1, b.optimization.optimizer.ftrl_l1);
  EXPECT_EQ(a.optimization.optimizer.ftrl_l2, b.optimization.optimizer.ftrl_l2);
  EXPECT_EQ(a.schedule.num_epochs_per_decay, b.schedule.num_epochs_per_decay);
  EXPECT_EQ(a.schedule.learning_rate_decay_factor, b.schedule.learning_rate_decay_factor);
  EXPECT_EQ(a.schedule.lr_staircase, b.schedule.lr_staircase);
  EXPECT_EQ(a.schedule.end_learning_rate, b.schedule.end_learning_rate);
  EXPECT_EQ(a.schedule.polynomial_power, b.schedule.polynomial_power);
  EXPECT_EQ(a.optimization.moving_average_decay, b.optimization.moving_average_decay);
  EXPECT_EQ(a.transfer.init_from, b.transfer.init_from);
  EXPECT_EQ(a.transfer.init_exclude, b.transfer.init_exclude);
  EXPECT_EQ(a.transfer.trainable, b.transfer.trainable);
  EXPECT_EQ(a.schedule.train_epochs, b.schedule.train_epochs);
  EXPECT_EQ(a.optimization.label_smoothing, b.optimization.label_smoothing);
  EXPECT_EQ(a.schedule.train_steps, b.schedule.train_steps);
  EXPECT_EQ(a.schedule.reference_steps, b.schedule.reference_steps);
  EXPECT_EQ(a.schedule.reference_images, b.schedule.reference_images);
  EXPECT_EQ(a.schedule.reference_batch, b.schedule.reference_batch);
  EXPECT_EQ(a.run.eval_every, b.run.eval_every);
  EXPECT_EQ(a.run.eval_limit, b.run.eval_limit);
  EXPECT_EQ(a.run.log_every, b.run.log_every);
  EXPECT_EQ(a.run.seed, b.run.seed);
}

// Drops the "recipe: ..." line: `recipe` is not a settable key (see the test below).
std::string WithoutRecipeLine(const std::string& yaml) {
  std::string out;
  size_t pos = 0;
  while (pos < yaml.size()) {
    size_t end = yaml.find('\n', pos);
    if (end == std::string::npos) end = yaml.size();
    const std::string line = yaml.substr(pos, end - pos);
    if (!line.starts_with("recipe:")) out += line + "\n";
    pos = end + 1;
  }
  return out;
}

TEST_F(HparamsFileTest, YamlRoundTripGivesTheSameHyperparameters) {
  const TrainConfig modified = ModifiedConfig();
  const std::string yaml = HparamsToYaml(modified);
  for (const std::string& key : HparamKeys())
    EXPECT_THAT(yaml, HasSubstr("\n" + key + ": ")) << "key missing from the YAML";
  TrainConfig fresh;
  Status s = ApplyHparamsFile(Write("round.yaml", WithoutRecipeLine(yaml)), &fresh);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << yaml;
  ExpectSameHparams(modified, fresh);
  EXPECT_EQ(WithoutRecipeLine(HparamsToYaml(fresh)), WithoutRecipeLine(yaml));
}

// A run's own DIR/hparams.yaml (whose first line is "recipe: <name>") applies back under the same
// --recipe; under another recipe the recipe line is refused rather than silently ignored.
TEST_F(HparamsFileTest, RunsOwnHparamsYamlAppliesBack) {
  const TrainConfig modified = ModifiedConfig();
  const std::string path = Write("run.yaml", HparamsToYaml(modified));
  TrainConfig fresh;
  fresh.recipe = modified.recipe;
  Status s = ApplyHparamsFile(path, &fresh);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectSameHparams(modified, fresh);
  TrainConfig other;
  other.recipe = "vgg-cifar";
  ExpectInvalid(ApplyHparamsFile(path, &other), "recipe");
}

}  // namespace
}  // namespace sluice::train
