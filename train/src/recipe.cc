#include "sluice/train/recipe.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>

#include "number_text.h"

namespace sluice::train {
namespace {

using pipeline::Preset;

// --- value parsing -------------------------------------------------------------------------------

Result<double> ParseDouble(const std::string& key, const std::string& v) {
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size() && std::isfinite(d)) return d;
  } catch (...) {
  }
  return Status::InvalidArgument("hparam " + key + ": '" + v + "' is not a number");
}

// Integers as written (any int64, or a uint64 for the seed, reinterpreted), or a float with an
// integral value ("1e3").
Result<int64_t> ParseInt(const std::string& key, const std::string& v) {
  try {
    size_t used = 0;
    if (!v.empty() && v[0] != '-') {
      const unsigned long long u = std::stoull(v, &used);
      if (used == v.size()) return static_cast<int64_t>(u);
    } else {
      const long long i = std::stoll(v, &used);
      if (used == v.size()) return static_cast<int64_t>(i);
    }
  } catch (...) {
  }
  SLUICE_ASSIGN_OR_RETURN(double d, ParseDouble(key, v));
  if (d != std::floor(d) || std::abs(d) > 9e15)
    return Status::InvalidArgument("hparam " + key + ": '" + v + "' is not an integer");
  return static_cast<int64_t>(d);
}

Result<bool> ParseBool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "True" || v == "1") return true;
  if (v == "false" || v == "False" || v == "0") return false;
  return Status::InvalidArgument("hparam " + key + ": '" + v + "' is not true or false");
}

std::vector<std::string> SplitList(std::string v) {
  if (!v.empty() && v.front() == '[') v = v.substr(1);
  if (!v.empty() && v.back() == ']') v.pop_back();
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::string Num(double d) { return ShortestText(d); }

template <typename T>
std::string List(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Num(static_cast<double>(v[i]));
  return s + "]";
}

// --- the key table -------------------------------------------------------------------------------

struct Field {
  const char* key;
  std::function<Status(TrainConfig*, const std::string&)> set;
  std::function<std::string(const TrainConfig&)> get;
};

#define SLUICE_DOUBLE_FIELD(name, member)                                         \
  Field {                                                                         \
    name,                                                                         \
        [](TrainConfig* c, const std::string& v) -> Status {                     \
          SLUICE_ASSIGN_OR_RETURN(double d, ParseDouble(name, v));               \
          c->member = d;                                                          \
          return Status::Ok();                                                    \
        },                                                                        \
        [](const TrainConfig& c) { return Num(static_cast<double>(c.member)); } \
  }
#define SLUICE_INT_FIELD(name, member)                                              \
  Field {                                                                           \
    name,                                                                           \
        [](TrainConfig* c, const std::string& v) -> Status {                       \
          SLUICE_ASSIGN_OR_RETURN(int64_t d, ParseInt(name, v));                   \
          c->member = static_cast<decltype(c->member)>(d);                          \
          return Status::Ok();                                                      \
        },                                                                          \
        [](const TrainConfig& c) { return std::to_string(c.member); }              \
  }
#define SLUICE_BOOL_FIELD(name, member)                                             \
  Field {                                                                           \
    name,                                                                           \
        [](TrainConfig* c, const std::string& v) -> Status {                       \
          SLUICE_ASSIGN_OR_RETURN(bool d, ParseBool(name, v));                     \
          c->member = d;                                                            \
          return Status::Ok();                                                      \
        },                                                                          \
        [](const TrainConfig& c) { return std::string(c.member ? "true" : "false"); } \
  }

// Paths and names: YAML single-quoted ('' for a quote), "" when empty (a null, which leaves the field
// as it is when applied back).
#define SLUICE_STRING_FIELD(name, member)                                                   \
  Field {                                                                                   \
    name,                                                                                   \
        [](TrainConfig* c, const std::string& v) -> Status {                               \
          c->member = v;                                                                    \
          return Status::Ok();                                                              \
        },                                                                                  \
        [](const TrainConfig& c) { return c.member.empty() ? std::string() : Quote(c.member); } \
  }

// Lists of names or patterns: a YAML flow list of single-quoted strings; set from "a,b" or "[a, b]".
#define SLUICE_STRINGS_FIELD(name, member)                                                  \
  Field {                                                                                   \
    name,                                                                                   \
        [](TrainConfig* c, const std::string& v) -> Status {                               \
          c->member.clear();                                                                \
          for (std::string item : SplitList(v)) {                                           \
            if (item.size() >= 2 && item.front() == '\'' && item.back() == '\'')             \
              item = item.substr(1, item.size() - 2);                                       \
            c->member.push_back(item);                                                      \
          }                                                                                 \
          return Status::Ok();                                                              \
        },                                                                                  \
        [](const TrainConfig& c) {                                                          \
          std::string out = "[";                                                            \
          for (size_t i = 0; i < c.member.size(); ++i)                                      \
            out += (i ? ", " : "") + Quote(c.member[i]);                                    \
          return out + "]";                                                                 \
        }                                                                                   \
  }

std::string Quote(const std::string& v) {
  std::string out = "'";
  for (char ch : v) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

Status SetPreset(const std::string& key, const std::string& v, Preset* p) {
  auto parsed = pipeline::ParsePreset(v);
  if (!parsed.ok()) return Status::InvalidArgument("hparam " + key + ": " + parsed.status().message());
  *p = *parsed;
  return Status::Ok();
}

const std::vector<Field>& Fields() {
  static const std::vector<Field> fields = {
      {"model",
       [](TrainConfig* c, const std::string& v) {
         c->model.name = v;
         return Status::Ok();
       },
       [](const TrainConfig& c) { return c.model.name; }},
      SLUICE_INT_FIELD("width", model.width),
      SLUICE_INT_FIELD("blocks", model.blocks),
      SLUICE_INT_FIELD("num_classes", model.num_classes),
      SLUICE_DOUBLE_FIELD("bn_momentum", model.bn_momentum),
      SLUICE_DOUBLE_FIELD("bn_epsilon", model.bn_epsilon),
      SLUICE_BOOL_FIELD("zero_init_last_bn", model.zero_init_last_bn),
      SLUICE_DOUBLE_FIELD("dropout", model.dropout),
      SLUICE_DOUBLE_FIELD("drop_connect", model.drop_connect),
      {"init",
       [](TrainConfig* c, const std::string& v) {
         if (v == "tensorflow") c->init = InitScheme::kTensorFlow;
         else if (v == "torchvision") c->init = InitScheme::kTorchvision;
         else return Status::InvalidArgument("hparam init: '" + v + "' (tensorflow, torchvision)");
         return Status::Ok();
       },
       [](const TrainConfig& c) {
         return std::string(c.init == InitScheme::kTensorFlow ? "tensorflow" : "torchvision");
       }},
      {"train_preset",
       [](TrainConfig* c, const std::string& v) { return SetPreset("train_preset", v, &c->pipeline.preset); },
       [](const TrainConfig& c) { return std::string(pipeline::PresetName(c.pipeline.preset)); }},
      {"eval_preset",
       [](TrainConfig* c, const std::string& v) { return SetPreset("eval_preset", v, &c->data.eval_preset); },
       [](const TrainConfig& c) { return std::string(pipeline::PresetName(c.data.eval_preset)); }},
      SLUICE_INT_FIELD("image_size", pipeline.image_size),
      SLUICE_INT_FIELD("batch_size", optimization.batch_size),
      SLUICE_DOUBLE_FIELD("base_learning_rate", schedule.base_learning_rate),
      SLUICE_INT_FIELD("lr_batch_denominator", schedule.lr_batch_denominator),
      {"lr_schedule",
       [](TrainConfig* c, const std::string& v) {
         // slim's --learning_rate_decay_type names too: fixed, exponential, polynomial.
         if (v == "piecewise") c->schedule.lr_schedule = LrSchedule::Kind::kPiecewise;
         else if (v == "cosine") c->schedule.lr_schedule = LrSchedule::Kind::kCosine;
         else if (v == "constant" || v == "fixed") c->schedule.lr_schedule = LrSchedule::Kind::kConstant;
         else if (v == "exponential") c->schedule.lr_schedule = LrSchedule::Kind::kExponential;
         else if (v == "polynomial") c->schedule.lr_schedule = LrSchedule::Kind::kPolynomial;
         else return Status::InvalidArgument("hparam lr_schedule: '" + v +
                                             "' (piecewise, cosine, constant or fixed, exponential, polynomial)");
         return Status::Ok();
       },
       [](const TrainConfig& c) {
         switch (c.schedule.lr_schedule) {
           case LrSchedule::Kind::kPiecewise: return std::string("piecewise");
           case LrSchedule::Kind::kCosine: return std::string("cosine");
           case LrSchedule::Kind::kExponential: return std::string("exponential");
           case LrSchedule::Kind::kPolynomial: return std::string("polynomial");
           default: return std::string("constant");
         }
       }},
      {"lr_boundary_epochs",
       [](TrainConfig* c, const std::string& v) -> Status {
         c->schedule.lr_boundary_epochs.clear();
         for (const std::string& s : SplitList(v)) {
           SLUICE_ASSIGN_OR_RETURN(double d, ParseDouble("lr_boundary_epochs", s));
           c->schedule.lr_boundary_epochs.push_back(d);
         }
         return Status::Ok();
       },
       [](const TrainConfig& c) { return List(c.schedule.lr_boundary_epochs); }},
      {"lr_multipliers",
       [](TrainConfig* c, const std::string& v) -> Status {
         c->schedule.lr_multipliers.clear();
         for (const std::string& s : SplitList(v)) {
           SLUICE_ASSIGN_OR_RETURN(double d, ParseDouble("lr_multipliers", s));
           c->schedule.lr_multipliers.push_back(d);
         }
         return Status::Ok();
       },
       [](const TrainConfig& c) { return List(c.schedule.lr_multipliers); }},
      {"lr_boundary_rule",
       [](TrainConfig* c, const std::string& v) -> Status {
         SLUICE_ASSIGN_OR_RETURN(c->schedule.lr_boundary_rule, ParseBoundaryRule(v));
         return Status::Ok();
       },
       [](const TrainConfig& c) { return std::string(BoundaryRuleName(c.schedule.lr_boundary_rule)); }},
      SLUICE_DOUBLE_FIELD("warmup_epochs", schedule.warmup_epochs),
      SLUICE_DOUBLE_FIELD("force_learning_rate", schedule.force_learning_rate),
      SLUICE_DOUBLE_FIELD("num_epochs_per_decay", schedule.num_epochs_per_decay),
      SLUICE_DOUBLE_FIELD("learning_rate_decay_factor", schedule.learning_rate_decay_factor),
      SLUICE_BOOL_FIELD("lr_staircase", schedule.lr_staircase),
      SLUICE_DOUBLE_FIELD("end_learning_rate", schedule.end_learning_rate),
      SLUICE_DOUBLE_FIELD("polynomial_power", schedule.polynomial_power),
      SLUICE_STRING_FIELD("prune_method", lottery.prune_method),
      SLUICE_STRING_FIELD("prune_at", lottery.prune_at),
      SLUICE_STRING_FIELD("reset_to", lottery.reset_to),
      SLUICE_STRING_FIELD("reset_global_step_to", lottery.reset_global_step_to),
      {"optimizer",
       [](TrainConfig* c, const std::string& v) -> Status {
         auto kind = ParseOptimizerKind(v);
         if (!kind.ok()) return Status::InvalidArgument("hparam optimizer: " + kind.status().message());
         c->optimization.optimizer.kind = *kind;
         return Status::Ok();
       },
       [](const TrainConfig& c) { return std::string(OptimizerKindName(c.optimization.optimizer.kind)); }},
      SLUICE_DOUBLE_FIELD("momentum", optimization.optimizer.momentum),
      SLUICE_BOOL_FIELD("nesterov", optimization.optimizer.nesterov),
      SLUICE_DOUBLE_FIELD("weight_decay", optimization.optimizer.weight_decay),
      SLUICE_BOOL_FIELD("weight_decay_batch_norm", optimization.optimizer.decay_batch_norm),
      SLUICE_DOUBLE_FIELD("opt_epsilon", optimization.optimizer.epsilon),
      SLUICE_DOUBLE_FIELD("rmsprop_decay", optimization.optimizer.rmsprop_decay),
      SLUICE_DOUBLE_FIELD("rmsprop_momentum", optimization.optimizer.rmsprop_momentum),
      SLUICE_DOUBLE_FIELD("adam_beta1", optimization.optimizer.adam_beta1),
      SLUICE_DOUBLE_FIELD("adam_beta2", optimization.optimizer.adam_beta2),
      SLUICE_DOUBLE_FIELD("adagrad_initial_accumulator_value", optimization.optimizer.adagrad_initial_accumulator_value),
      SLUICE_DOUBLE_FIELD("adadelta_rho", optimization.optimizer.adadelta_rho),
      SLUICE_DOUBLE_FIELD("ftrl_learning_rate_power", optimization.optimizer.ftrl_learning_rate_power),
      SLUICE_DOUBLE_FIELD("ftrl_initial_accumulator_value", optimization.optimizer.ftrl_initial_accumulator_value),
      SLUICE_DOUBLE_FIELD("ftrl_l1", optimization.optimizer.ftrl_l1),
      SLUICE_DOUBLE_FIELD("ftrl_l2", optimization.optimizer.ftrl_l2),
      SLUICE_DOUBLE_FIELD("label_smoothing", optimization.label_smoothing),
      SLUICE_DOUBLE_FIELD("moving_average_decay", optimization.moving_average_decay),
      SLUICE_STRING_FIELD("init_from", transfer.init_from),
      SLUICE_STRINGS_FIELD("init_exclude", transfer.init_exclude),
      SLUICE_STRINGS_FIELD("trainable", transfer.trainable),
      SLUICE_INT_FIELD("train_steps", schedule.train_steps),
      SLUICE_DOUBLE_FIELD("train_epochs", schedule.train_epochs),
      SLUICE_INT_FIELD("reference_steps", schedule.reference_steps),
      SLUICE_INT_FIELD("reference_images", schedule.reference_images),
      SLUICE_INT_FIELD("reference_batch", schedule.reference_batch),
      SLUICE_INT_FIELD("eval_every", run.eval_every),
      SLUICE_INT_FIELD("eval_limit", run.eval_limit),
      SLUICE_INT_FIELD("log_every", run.log_every),
      SLUICE_INT_FIELD("seed", run.seed),
  };
  return fields;
}

// A nested map's keys apply as if written at the top level: sections (`optimizer:`, `train:`) are
// for the reader.
void Flatten(const YAML::Node& node, const std::string& key,
             std::vector<std::pair<std::string, std::string>>* out) {
  if (node.IsMap()) {
    for (const auto& kv : node) Flatten(kv.second, kv.first.as<std::string>(), out);
  } else if (node.IsSequence()) {
    std::string joined;
    for (const auto& item : node) joined += (joined.empty() ? "" : ",") + item.as<std::string>();
    out->emplace_back(key, joined);
  } else if (node.IsScalar()) {
    out->emplace_back(key, node.as<std::string>());
  }
}

}  // namespace

Result<BoundaryRule> ParseBoundaryRule(std::string_view name) {
  if (name == "tf") return BoundaryRule::kTf;
  if (name == "tpu") return BoundaryRule::kTpu;
  return Status::InvalidArgument("hparam lr_boundary_rule: '" + std::string(name) + "' (tf, tpu)");
}

std::string_view BoundaryRuleName(BoundaryRule rule) {
  return rule == BoundaryRule::kTpu ? "tpu" : "tf";
}

namespace {
constexpr std::pair<RunMode, std::string_view> kRunModes[] = {
    {RunMode::kTrain, "train"},
    {RunMode::kTrainAndEval, "train_and_eval"},
    {RunMode::kEval, "eval"},
    {RunMode::kPredict, "predict"}};
}  // namespace

Result<RunMode> ParseRunMode(std::string_view name) {
  for (auto [mode, n] : kRunModes)
    if (n == name) return mode;
  return Status::InvalidArgument("--mode '" + std::string(name) +
                                 "' (train, eval, train_and_eval, predict)");
}

std::string_view RunModeName(RunMode mode) {
  for (auto [m, n] : kRunModes)
    if (m == mode) return n;
  return "?";
}

std::vector<std::pair<std::string, std::string>> RecipeDescriptions() {
  return {
      {"tf-cifar-resnet",
       "TF official CIFAR-10 ResNet v1 (the rewinding papers' runs): batch 128, SGD momentum 0.9, "
       "wd 2e-4 on every variable, LR 0.1 x0.1 at epochs 91/136, 71,108 steps at 50,000 images, "
       "BN momentum 0.997, TF initializers"},
      {"vgg-cifar", "tf-cifar-resnet with model vgg16 and weight decay 5e-4"},
      {"tpu-imagenet-resnet50",
       "TPU ResNet-50 ImageNet: batch 1024, LR 0.1 x batch/256 with 5-epoch linear warmup, x0.1 at "
       "epochs 30/60/80, 112,590 steps at 1,281,167 images, Nesterov 0.9, wd 1e-4 not on BN, BN "
       "momentum 0.9, last BN gamma of each block 0"},
      {"flowers-finetune",
       "ResNet-50 fine-tuned on flowers (sluice ingest flowers) from --init-from (e.g. ImageNet "
       "weights), head (fc) excluded and re-initialized: batch 64, 15 epochs (steps from the "
       "manifest), LR 0.01 cosine, Nesterov 0.9, wd 1e-4 not on BN, BN momentum 0.9, resnet presets"},
      {"tpu-efficientnet-b0",
       "TPU EfficientNet-B0 ImageNet: batch 2048, RMSProp (decay 0.9, momentum 0.9, eps 1e-3), LR "
       "0.016 x batch/256 with 5-epoch warmup, x0.97 every 2.4 epochs, wd 1e-5 not on BN, EMA "
       "0.9999, label smoothing 0.1, BN momentum 0.99 eps 1e-3, 350 epochs"},
      {"slim-vgg16",
       "slim train_image_classifier.py vgg_16: vgg-train/vgg-eval, batch 32, RMSProp (decay 0.9, "
       "momentum 0.9, eps 1.0), LR 0.01 x0.94 every 2 epochs, wd 4e-5, 74 epochs"},
      {"slim-vgg19", "slim-vgg16 with vgg_19"},
  };
}

Status ApplyRecipe(const std::string& name, TrainConfig* config) {
  // A recipe sets hyperparameters; where the data is, the run control and the thread budget stay.
  TrainConfig fresh;
  fresh.data.dir = config->data.dir;
  const RunControl run = config->run;
  fresh.run = {.mode = run.mode, .checkpoint = run.checkpoint, .predict_split = run.predict_split,
               .predictions = run.predictions, .top_k = run.top_k, .model_dir = run.model_dir,
               .checkpoint_iters = run.checkpoint_iters, .train_threads = run.train_threads,
               .resume = run.resume};
  fresh.pipeline.threads = config->pipeline.threads;
  fresh.recipe = name;
  if (name == "tf-cifar-resnet" || name == "vgg-cifar") {
    // TrainConfig's defaults are this recipe (cifar10_main.py + resnet_run_loop.py of TF 1.13).
    if (name == "vgg-cifar") {
      fresh.model.name = "vgg16";
      fresh.optimization.optimizer.weight_decay = 5e-4;
    }
  } else if (name == "tpu-imagenet-resnet50") {
    fresh.model.name = "resnet50";
    fresh.model.num_classes = 1001;  // build_imagenet_data.py labels 1..1000, 0 unused
    fresh.model.bn_momentum = 0.9f;
    fresh.model.zero_init_last_bn = true;
    fresh.pipeline.preset = pipeline::Preset::kResnetTrain;
    fresh.data.eval_preset = pipeline::Preset::kResnetEval;
    fresh.optimization.batch_size = 1024;
    fresh.schedule.base_learning_rate = 0.1;
    fresh.schedule.lr_batch_denominator = 256;
    fresh.schedule.warmup_epochs = 5;
    fresh.schedule.lr_boundary_epochs = {30, 60, 80};
    fresh.schedule.lr_multipliers = {1, 0.1, 0.01, 0.001};
    fresh.schedule.lr_boundary_rule = BoundaryRule::kTpu;
    fresh.optimization.optimizer.nesterov = true;
    fresh.optimization.optimizer.weight_decay = 1e-4;
    fresh.optimization.optimizer.decay_batch_norm = false;
    fresh.schedule.reference_steps = 112590;
    fresh.schedule.reference_images = 1281167;
    fresh.schedule.reference_batch = 1024;
  } else if (name == "flowers-finetune") {
    // The TPU ResNet-50 settings (presets, BN momentum, Nesterov, wd without BN) with a fine-tuning
    // rate and length; the classifier comes fresh for the 5 flower classes.
    fresh.model.name = "resnet50";
    fresh.model.bn_momentum = 0.9f;
    fresh.init = InitScheme::kTorchvision;
    fresh.pipeline.preset = pipeline::Preset::kResnetTrain;
    fresh.data.eval_preset = pipeline::Preset::kResnetEval;
    fresh.optimization.batch_size = 64;
    fresh.schedule.base_learning_rate = 0.01;
    fresh.schedule.lr_batch_denominator = 64;
    fresh.schedule.lr_schedule = LrSchedule::Kind::kCosine;
    fresh.schedule.lr_boundary_epochs = {};
    fresh.schedule.lr_multipliers = {1};
    fresh.optimization.optimizer.nesterov = true;
    fresh.optimization.optimizer.weight_decay = 1e-4;
    fresh.optimization.optimizer.decay_batch_norm = false;
    fresh.schedule.train_epochs = 15;
    fresh.transfer.init_exclude = {"fc"};
  } else if (name == "tpu-efficientnet-b0") {
    // tensorflow/tpu models/official/efficientnet main.py's defaults for efficientnet-b0.
    fresh.model.name = "efficientnet_b0";
    fresh.model.num_classes = 1001;
    fresh.model.bn_momentum = 0.99f;
    fresh.model.bn_epsilon = 1e-3f;
    fresh.init = InitScheme::kTorchvision;
    fresh.pipeline.preset = pipeline::Preset::kResnetTrain;
    fresh.data.eval_preset = pipeline::Preset::kResnetEval;
    fresh.optimization.batch_size = 2048;
    fresh.schedule.base_learning_rate = 0.016;
    fresh.schedule.lr_batch_denominator = 256;
    fresh.schedule.warmup_epochs = 5;
    fresh.schedule.lr_schedule = LrSchedule::Kind::kExponential;
    fresh.schedule.lr_boundary_epochs = {};
    fresh.schedule.lr_multipliers = {1};
    fresh.schedule.num_epochs_per_decay = 2.4;
    fresh.schedule.learning_rate_decay_factor = 0.97;
    fresh.optimization.optimizer.kind = OptimizerKind::kRmsprop;
    fresh.optimization.optimizer.rmsprop_decay = 0.9;
    fresh.optimization.optimizer.rmsprop_momentum = 0.9;
    fresh.optimization.optimizer.epsilon = 1e-3;
    fresh.optimization.optimizer.weight_decay = 1e-5;
    fresh.optimization.optimizer.decay_batch_norm = false;
    fresh.optimization.moving_average_decay = 0.9999;
    fresh.optimization.label_smoothing = 0.1;
    fresh.schedule.train_epochs = 350;
  } else if (name == "slim-vgg16" || name == "slim-vgg19") {
    // slim's train_image_classifier.py flag defaults; slim itself trains until stopped, so the
    // length is the VGG paper's 74 epochs.
    fresh.model.name = name == "slim-vgg16" ? "vgg16-imagenet" : "vgg19-imagenet";
    fresh.model.num_classes = 1001;
    fresh.init = InitScheme::kTorchvision;
    fresh.pipeline.preset = pipeline::Preset::kVggTrain;
    fresh.data.eval_preset = pipeline::Preset::kVggEval;
    fresh.optimization.batch_size = 32;
    fresh.schedule.base_learning_rate = 0.01;
    fresh.schedule.lr_batch_denominator = 32;
    fresh.schedule.lr_schedule = LrSchedule::Kind::kExponential;
    fresh.schedule.lr_boundary_epochs = {};
    fresh.schedule.lr_multipliers = {1};
    fresh.schedule.num_epochs_per_decay = 2.0;
    fresh.schedule.learning_rate_decay_factor = 0.94;
    fresh.optimization.optimizer.kind = OptimizerKind::kRmsprop;
    fresh.optimization.optimizer.weight_decay = 4e-5;
    fresh.schedule.train_epochs = 74;
  } else {
    std::string names;
    for (const auto& [n, d] : RecipeDescriptions()) names += (names.empty() ? "" : ", ") + n;
    return Status::InvalidArgument("unknown recipe '" + name + "' (known: " + names + ")");
  }
  *config = std::move(fresh);
  return Status::Ok();
}

Status SetHparam(TrainConfig* config, const std::string& key, const std::string& value) {
  if (key == "recipe") {
    // What a run's hparams.yaml records; the recipe itself is chosen with --recipe.
    if (value == config->recipe) return Status::Ok();
    return Status::InvalidArgument("hparam recipe: '" + value + "' differs from the run's recipe '" +
                                   config->recipe + "' (choose recipes with --recipe)");
  }
  for (const Field& f : Fields())
    if (key == f.key) return f.set(config, value);
  std::string keys;
  for (const Field& f : Fields()) keys += (keys.empty() ? "" : ", ") + std::string(f.key);
  return Status::InvalidArgument("unknown hparam '" + key + "' (known: " + keys + ")");
}

Status ApplyHparamsFile(const std::string& path, TrainConfig* config) {
  std::vector<std::pair<std::string, std::string>> entries;
  try {
    Flatten(YAML::LoadFile(path), "", &entries);
  } catch (const YAML::BadFile&) {
    return Status::NotFound("hparams file " + path + " cannot be opened");
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("hparams file " + path + ": " + e.what());
  }
  for (const auto& [k, v] : entries) {
    Status s = SetHparam(config, k, v);
    if (!s.ok()) return Status::InvalidArgument(path + ": " + s.message());
  }
  return Status::Ok();
}

std::vector<std::string> HparamKeys() {
  std::vector<std::string> keys;
  for (const Field& f : Fields()) keys.push_back(f.key);
  return keys;
}

std::string HparamsToYaml(const TrainConfig& config) {
  std::string out = "recipe: " + config.recipe + "\n";
  for (const Field& f : Fields()) out += std::string(f.key) + ": " + f.get(config) + "\n";
  return out;
}

}  // namespace sluice::train
