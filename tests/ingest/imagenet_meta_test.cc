#include "sluice/ingest/imagenet_meta.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "sluice/formats/file_util.h"

namespace sluice::ingest {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kLabelsDir = fs::path(SLUICE_FIXTURES_DIR) / "tfds" / "labels";

// Expects a DataLoss whose message contains every one of `parts`.
template <typename T>
void ExpectDataLoss(const Result<T>& r, std::initializer_list<std::string_view> parts) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  for (std::string_view part : parts) {
    EXPECT_THAT(r.status().message(), HasSubstr(std::string(part)));
  }
}

// ---- Synset list
// -----------------------------------------------------------------------------------

TEST(SynsetListTest, ParsesLinesInFileOrder) {
  auto r = ParseSynsetList("n01440764\nn01443537\r\n  n01484850  \n", "s.txt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, (std::vector<std::string>{"n01440764", "n01443537", "n01484850"}));
}

TEST(SynsetListTest, TrailingBlankLinesAndNoFinalNewlineAreFine) {
  EXPECT_EQ(ParseSynsetList("n01440764\n\n\n", "s.txt")->size(), 1u);
  EXPECT_EQ(ParseSynsetList("n01440764\nn01443537", "s.txt")->size(), 2u);
}

TEST(SynsetListTest, MalformedWnidNamesFileAndLine) {
  ExpectDataLoss(ParseSynsetList("n01440764\nn0144376\n", "s.txt"), {"s.txt:2:", "n0144376"});
  ExpectDataLoss(ParseSynsetList("n01440764\nx01443537\n", "s.txt"), {"s.txt:2:"});
  ExpectDataLoss(ParseSynsetList("n0144076a\n", "s.txt"), {"s.txt:1:"});
  ExpectDataLoss(ParseSynsetList("n01440764 tench\n", "s.txt"), {"s.txt:1:"});
}

TEST(SynsetListTest, BlankLineInsideIsDataLoss) {
  ExpectDataLoss(ParseSynsetList("n01440764\n\nn01443537\n", "s.txt"), {"s.txt:2:", "blank"});
}

TEST(SynsetListTest, DuplicateIsDataLoss) {
  ExpectDataLoss(ParseSynsetList("n01440764\nn01443537\nn01440764\n", "s.txt"),
                 {"s.txt:3:", "duplicate", "n01440764"});
}

TEST(SynsetListTest, EmptyIsDataLoss) {
  ExpectDataLoss(ParseSynsetList("", "s.txt"), {"s.txt", "empty"});
  ExpectDataLoss(ParseSynsetList("\n \n", "s.txt"), {"s.txt", "empty"});
}

TEST(SynsetListTest, IsWnid) {
  EXPECT_TRUE(IsWnid("n01440764"));
  EXPECT_FALSE(IsWnid("n0144076"));
  EXPECT_FALSE(IsWnid("n014407640"));
  EXPECT_FALSE(IsWnid("N01440764"));
  EXPECT_FALSE(IsWnid(""));
}

// ---- Metadata
// ----------------------------------------------------------------------------------------

TEST(MetadataTest, ParsesTabSeparatedLines) {
  auto r = ParseMetadata(
      "n00004475\torganism, being\n\nn01440764\ttench, Tinca tinca\r\nn02119477\tred fox, Vulpes "
      "fulva",
      "meta.txt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(r->at("n00004475"), "organism, being");
  EXPECT_EQ(r->at("n01440764"), "tench, Tinca tinca");
  EXPECT_EQ(r->at("n02119477"), "red fox, Vulpes fulva");
}

TEST(MetadataTest, ErrorsNameFileAndLine) {
  ExpectDataLoss(ParseMetadata("n01440764\ttench\nn01443537 goldfish\n", "m.txt"),
                 {"m.txt:2:", "no tab"});
  ExpectDataLoss(ParseMetadata("n0144076\ttench\n", "m.txt"), {"m.txt:1:", "malformed"});
  ExpectDataLoss(ParseMetadata("n01440764\t  \n", "m.txt"), {"m.txt:1:", "empty text"});
  ExpectDataLoss(ParseMetadata("n01440764\ta\tb\n", "m.txt"), {"m.txt:1:", "more than one tab"});
  ExpectDataLoss(ParseMetadata("n01440764\ta\nn01440764\tb\n", "m.txt"), {"m.txt:2:", "duplicate"});
  ExpectDataLoss(ParseMetadata("\n\n", "m.txt"), {"m.txt", "empty"});
}

// ---- Validation labels
// -------------------------------------------------------------------------------

class ValidationLabelsTest : public ::testing::Test {
 protected:
  const std::set<std::string> known_ = {"n01440764", "n01443537"};
};

TEST_F(ValidationLabelsTest, ParsesLinesInOrder) {
  auto r = ParseValidationLabels("n01443537\nn01440764\nn01443537\n", "v.txt", 3, &known_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, (std::vector<std::string>{"n01443537", "n01440764", "n01443537"}));
}

TEST_F(ValidationLabelsTest, ZeroExpectedCountAndNullSynsetsSkipChecks) {
  auto r = ParseValidationLabels("n01443537\nn09999999\n", "v.txt", 0, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 2u);
}

TEST_F(ValidationLabelsTest, WrongCountGivesBothNumbers) {
  ExpectDataLoss(ParseValidationLabels("n01443537\nn01440764\n", "v.txt", 3, &known_),
                 {"v.txt", "2", "3"});
  ExpectDataLoss(ParseValidationLabels("n01443537\nn01440764\n\n", "v.txt", 1, &known_),
                 {"v.txt", "has 2 labels, expected 1"});
}

TEST_F(ValidationLabelsTest, MalformedLineGivesLineNumber) {
  ExpectDataLoss(ParseValidationLabels("n01443537\nfoo\nn01440764\n", "v.txt", 3, &known_),
                 {"v.txt:2:", "malformed", "foo"});
  ExpectDataLoss(ParseValidationLabels("n01443537\n\nn01440764\n", "v.txt", 3, &known_),
                 {"v.txt:2:", "blank"});
}

TEST_F(ValidationLabelsTest, UnknownSynsetGivesLineAndWnid) {
  ExpectDataLoss(ParseValidationLabels("n01443537\nn01440764\nn02119477\n", "v.txt", 3, &known_),
                 {"v.txt:3:", "unknown synset n02119477"});
}

TEST_F(ValidationLabelsTest, EmptyIsDataLoss) {
  ExpectDataLoss(ParseValidationLabels("", "v.txt", 0, &known_), {"v.txt", "empty"});
  ExpectDataLoss(ParseValidationLabels("", "v.txt", 50000, &known_),
                 {"has 0 labels, expected 50000"});
}

// ---- Validation image names
// -------------------------------------------------------------------------

TEST(ValidationIndexTest, EightDigitNamesOfTheRealArchive) {
  EXPECT_EQ(*ValidationIndexFromName("ILSVRC2012_val_00000001.JPEG"), 1);
  EXPECT_EQ(*ValidationIndexFromName("ILSVRC2012_val_00050000.JPEG"), 50000);
  EXPECT_EQ(*ValidationIndexFromName("val/ILSVRC2012_val_00012345.JPEG"), 12345);
}

TEST(ValidationIndexTest, SevenDigitNamesOfTheTfdsFixture) {
  EXPECT_EQ(*ValidationIndexFromName("ILSVRC2012_val_0000007.JPEG"), 7);
  EXPECT_EQ(*ValidationIndexFromName("/ILSVRC2012_val_0000010.JPEG"), 10);
  EXPECT_EQ(*ValidationIndexFromName("ILSVRC2012_val_0000010.jpeg"), 10);
}

TEST(ValidationIndexTest, OtherNamesAreInvalidArgument) {
  for (std::string_view bad :
       {"", "ILSVRC2012_val_00000001", "ILSVRC2012_val_00000001.png", "ILSVRC2012_val_000001.JPEG",
        "ILSVRC2012_val_000000001.JPEG", "ILSVRC2012_val_0000000a.JPEG",
        "ILSVRC2012_val_00000000.JPEG", "ILSVRC2012_test_00000001.JPEG", "n01440764_18.JPEG",
        "ILSVRC2012_val_00000001.JPEG.bak"}) {
    auto r = ValidationIndexFromName(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("validation image name")) << bad;
  }
}

// The member names of the TFDS validation fixture tar (listed with `tar tvf`: 7-digit
// indices 1..10, in shuffled order) all map to their index.
TEST(ValidationIndexTest, FixtureTarNames) {
  for (int i = 1; i <= 10; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "ILSVRC2012_val_%07d.JPEG", i);
    auto r = ValidationIndexFromName(name);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, i);
  }
}

// ---- The real label files of the TFDS fixtures
// -----------------------------------------------------

class ImagenetFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kLabelsDir)) GTEST_SKIP() << "no fixtures at " << kLabelsDir;
  }
  static std::string Read(const char* file) {
    auto r = formats::ReadFile((kLabelsDir / file).string());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::string();
  }
};

TEST_F(ImagenetFixtureTest, SynsetListHas1000SortedSynsets) {
  auto r = ParseSynsetList(Read("imagenet2012_labels.txt"), "imagenet2012_labels.txt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1000u);
  EXPECT_EQ(r->front(), "n01440764");
  EXPECT_EQ((*r)[1], "n01443537");
  EXPECT_EQ(r->back(), "n15075141");
  EXPECT_EQ((*r)[998], "n13133613");
  EXPECT_TRUE(std::is_sorted(r->begin(), r->end()));
}

TEST_F(ImagenetFixtureTest, ValidationLabelsHave50000KnownSynsets) {
  auto synsets = ParseSynsetList(Read("imagenet2012_labels.txt"), "imagenet2012_labels.txt");
  ASSERT_TRUE(synsets.ok()) << synsets.status().ToString();
  std::set<std::string> known(synsets->begin(), synsets->end());
  std::string text = Read("imagenet2012_validation_labels.txt");
  auto r = ParseValidationLabels(text, "imagenet2012_validation_labels.txt", 50000, &known);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 50000u);
  EXPECT_EQ((*r)[0], "n01751748");  // ILSVRC2012_val_00000001.JPEG
  EXPECT_EQ((*r)[1], "n09193705");
  EXPECT_EQ((*r)[2], "n02105855");
  EXPECT_EQ((*r)[49998], "n10148035");
  EXPECT_EQ((*r)[49999], "n02437616");  // ILSVRC2012_val_00050000.JPEG

  // Every validation image's synset is one of the 1000 and each class has 50 images.
  std::map<std::string, int> per_class;
  for (const std::string& wnid : *r) ++per_class[wnid];
  EXPECT_EQ(per_class.size(), 1000u);
  for (const auto& [wnid, n] : per_class) EXPECT_EQ(n, 50) << wnid;
}

TEST_F(ImagenetFixtureTest, ValidationLabelsTruncatedOrAlteredAreDataLoss) {
  auto synsets = ParseSynsetList(Read("imagenet2012_labels.txt"), "imagenet2012_labels.txt");
  ASSERT_TRUE(synsets.ok());
  std::set<std::string> known(synsets->begin(), synsets->end());
  std::string text = Read("imagenet2012_validation_labels.txt");

  std::string truncated = text.substr(0, text.size() - 10 * 10);  // Drop the last 10 lines.
  ExpectDataLoss(ParseValidationLabels(truncated, "val.txt", 50000, &known),
                 {"val.txt", "has 49990 labels, expected 50000"});

  std::string altered = text;
  altered.replace(10 * 7, 9, "n00000001");  // Line 8.
  ExpectDataLoss(ParseValidationLabels(altered, "val.txt", 50000, &known),
                 {"val.txt:8:", "unknown synset n00000001"});

  // The synset list passed where the validation labels belong.
  ExpectDataLoss(
      ParseValidationLabels(Read("imagenet2012_labels.txt"), "labels.txt", 50000, &known),
      {"labels.txt", "has 1000 labels, expected 50000"});
}

}  // namespace
}  // namespace sluice::ingest
