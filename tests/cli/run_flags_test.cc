// The run flags of `sluice train` / `sluice lottery` against the hparam table: every flag names a
// key the table has, so the two cannot drift apart, and a flag sets exactly what its key does.
#include "run_flags.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "sluice/train/recipe.h"

namespace sluice::cli {
namespace {

TEST(RunFlagsTest, EveryFlagNamesAnHparamKeyOnce) {
  const std::vector<std::string> keys = train::HparamKeys();
  std::set<std::string> names;
  for (const auto* table : {&RunFlagTable(), &TrainFlagTable()}) {
    std::set<std::string> used;
    for (const RunFlag& flag : *table) {
      EXPECT_NE(std::find(keys.begin(), keys.end(), flag.key), keys.end())
          << flag.name << " sets '" << flag.key << "', which is not in the hparam table";
      EXPECT_TRUE(names.insert(flag.name).second) << flag.name << " defined twice";
      EXPECT_TRUE(used.insert(flag.key).second) << flag.key << " set by two flags of a table";
    }
  }
}

TEST(RunFlagsTest, AFlagSetsWhatItsKeyDoesAndWinsOverSet) {
  CLI::App app;
  RunFlags flags;
  AddRunFlags(&app, &flags, "steps");
  std::vector<std::string> args = {"--data-dir", "d",  "--batch", "48",         "--learning-rate",
                                   "0.3",        "--set", "batch_size=7", "--optimizer", "adam"};
  std::reverse(args.begin(), args.end());
  app.parse(args);
  train::TrainConfig by_flags, by_keys;
  ASSERT_TRUE(ApplyRunFlags(flags, &by_flags).ok());
  ASSERT_TRUE(train::ApplyRecipe("tf-cifar-resnet", &by_keys).ok());
  ASSERT_TRUE(train::SetHparam(&by_keys, "batch_size", "48").ok());
  ASSERT_TRUE(train::SetHparam(&by_keys, "base_learning_rate", "0.3").ok());
  ASSERT_TRUE(train::SetHparam(&by_keys, "optimizer", "adam").ok());
  EXPECT_EQ(train::HparamsToYaml(by_flags), train::HparamsToYaml(by_keys));
  EXPECT_EQ(by_flags.optimization.batch_size, 48);
}

TEST(RunFlagsTest, ABadValueNamesTheFlag) {
  CLI::App app;
  RunFlags flags;
  AddRunFlags(&app, &flags, "steps");
  std::vector<std::string> args = {"--batch", "many", "--data-dir", "d"};
  std::reverse(args.begin(), args.end());
  app.parse(args);
  train::TrainConfig c;
  const Status s = ApplyRunFlags(flags, &c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--batch"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace sluice::cli
