// Ingest of the TFDS test archives in ../shared/fixtures/tfds: every record is checked against what
// the input archives hold, read independently with libarchive.
#include <gtest/gtest.h>

#include <set>

#include "ingest_test_util.h"
#include "sluice/formats/image.h"
#include "sluice/ingest/datasets.h"

namespace sluice::ingest {
namespace {

using namespace testing_util;

const std::string kTfds = std::string(SLUICE_FIXTURES_DIR) + "/tfds/";

class FixtureIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTfds)) GTEST_SKIP() << "no fixtures at " << kTfds;
    dir_ = TempDir("fixture_ingest");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  CommonOptions Common(const std::string& sub) {
    CommonOptions c;
    c.out_dir = (dir_ / sub).string();
    c.threads = 2;
    return c;
  }
  fs::path dir_;
};

TEST_F(FixtureIngestTest, ImagenetTrainTarOfTarsRecordsMatchTheArchive) {
  const std::string train = kTfds + "imagenet2012/ILSVRC2012_img_train.tar";
  // Reference view of the input: outer tar -> inner tars -> JPEG bytes.
  std::map<std::string, std::pair<std::string, std::string>> expected;  // file -> (wnid, bytes)
  std::set<std::string> wnids;
  for (const auto& [inner_name, inner_bytes] : ReadTar(train, false)) {
    std::string wnid = inner_name.substr(0, inner_name.size() - 4);
    wnids.insert(wnid);
    for (const auto& [name, bytes] : ReadTar(inner_bytes, true)) expected[name] = {wnid, bytes};
  }
  ASSERT_EQ(wnids.size(), 10u);
  ASSERT_EQ(expected.size(), 100u);
  const std::vector<std::string> sorted(wnids.begin(), wnids.end());

  ImagenetOptions opt;
  opt.common = Common("imagenet");
  opt.train_archive = train;
  opt.train_shards = 3;
  auto summary = IngestImagenet(opt);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->splits["train"].images, 100u);
  EXPECT_TRUE(summary->manifest_written);

  size_t files = 0;
  auto examples = ReadShards(opt.common.out_dir, "train-", &files);
  EXPECT_EQ(files, 3u);
  ASSERT_EQ(examples.size(), 100u);
  std::set<std::string> seen;
  for (const auto& ex : examples) {
    EXPECT_EQ(ex.size(), 15u);  // build_imagenet_data.py's features
    std::string filename(*ex.GetBytes("image/filename"));
    ASSERT_TRUE(expected.count(filename)) << filename;
    const auto& [wnid, bytes] = expected[filename];
    seen.insert(filename);
    EXPECT_EQ(*ex.GetBytes("image/class/synset"), wnid);
    const int64_t label = 1 + (std::find(sorted.begin(), sorted.end(), wnid) - sorted.begin());
    EXPECT_EQ(*ex.GetInt64("image/class/label"), label) << filename;
    EXPECT_EQ(*ex.GetBytes("image/encoded"), bytes) << "pass-through bytes differ: " << filename;
    auto info = formats::ProbeImage(bytes);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(*ex.GetInt64("image/height"), info->height);
    EXPECT_EQ(*ex.GetInt64("image/width"), info->width);
    EXPECT_EQ(*ex.GetBytes("image/format"), "JPEG");
    EXPECT_EQ(*ex.GetBytes("image/colorspace"), "RGB");
    EXPECT_EQ(*ex.GetInt64("image/channels"), 3);
    EXPECT_TRUE(ex.GetFloatList("image/object/bbox/xmin")->empty());
  }
  EXPECT_EQ(seen.size(), 100u);  // each image exactly once
  EXPECT_TRUE(fs::exists(fs::path(opt.common.out_dir) / "manifest.json"));
}

TEST_F(FixtureIngestTest, OldTrainTarPngNamedJpegIsReencodedByContent) {
  ImagenetOptions opt;
  opt.common = Common("old");
  opt.train_archive = kTfds + "imagenet2012/old/ILSVRC2012_img_train.tar";
  opt.train_shards = 2;
  auto summary = IngestImagenet(opt);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->splits["train"].reencoded, 1u);
  bool found = false;
  for (const auto& ex : ReadShards(opt.common.out_dir, "train-")) {
    auto bytes = *ex.GetBytes("image/encoded");
    auto info = formats::ProbeImage(bytes);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->format, formats::ImageFormat::kJpeg);  // no PNG reaches a shard
    if (*ex.GetBytes("image/filename") == "n01440764_1.JPEG") {
      found = true;
      EXPECT_EQ(info->color_space, formats::ColorSpace::kYCbCr);
      EXPECT_EQ(*ex.GetInt64("image/width"), info->width);
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(FixtureIngestTest, ValidationTarInShuffledOrderGetsLabelsByIndex) {
  const std::string val = kTfds + "imagenet2012/ILSVRC2012_img_val.tar";
  auto members = ReadTar(val, false);
  ASSERT_EQ(members.size(), 10u);
  // A label file with exactly one line per fixture image (the real file's first lines).
  auto all = formats::ReadFile(kTfds + "labels/imagenet2012_validation_labels.txt");
  ASSERT_TRUE(all.ok());
  std::vector<std::string> lines;
  size_t pos = 0;
  while (lines.size() < 10) {
    size_t nl = all->find('\n', pos);
    lines.push_back(all->substr(pos, nl - pos));
    pos = nl + 1;
  }
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  const std::string labels = (dir_ / "val_labels.txt").string();
  ASSERT_TRUE(formats::WriteFileAtomically(labels, text).ok());

  ImagenetOptions opt;
  opt.common = Common("val");
  opt.val_archive = val;
  opt.val_labels = labels;
  opt.synsets = kTfds + "labels/imagenet2012_labels.txt";  // the real 1000 synsets
  opt.val_shards = 2;
  auto summary = IngestImagenet(opt);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  auto synsets = *formats::ReadFile(opt.synsets);
  auto examples = ReadShards(opt.common.out_dir, "validation-");
  ASSERT_EQ(examples.size(), 10u);
  for (const auto& ex : examples) {
    std::string name(*ex.GetBytes("image/filename"));
    int index = std::stoi(name.substr(name.find_last_of('_') + 1));
    const std::string& wnid = lines[index - 1];
    EXPECT_EQ(*ex.GetBytes("image/class/synset"), wnid) << name;
    // label = 1 + line of the wnid in the sorted 1000-synset file.
    int64_t line = 0;
    for (size_t p = 0; p < synsets.find(wnid); ++p) line += synsets[p] == '\n';
    EXPECT_EQ(*ex.GetInt64("image/class/label"), line + 1) << name;
    EXPECT_EQ(*ex.GetBytes("image/encoded"), members[name]);
  }
}

TEST_F(FixtureIngestTest, FlowersTgzIgnoresStrayFileAndLabelsSortedClasses) {
  FolderOptions opt;
  opt.common = Common("flowers");
  opt.root = kTfds + "tf_flowers/flower_photos.tgz";
  opt.naming = FolderNaming::kFlowers;
  opt.validation_count = 1;
  opt.shards_per_split = 1;
  auto summary = IngestFolder(opt);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->ignored_members, 1u);  // flower_photos/dummy.txt
  EXPECT_EQ(*formats::ReadFile(opt.common.out_dir + "/labels.txt"),
            "0:daisy\n1:dandelion\n2:roses\n3:sunflowers\n4:tulips\n");
  auto train = ReadShards(opt.common.out_dir, "flowers_train_");
  auto val = ReadShards(opt.common.out_dir, "flowers_validation_");
  EXPECT_EQ(train.size(), 4u);
  EXPECT_EQ(val.size(), 1u);
  EXPECT_TRUE(fs::exists(fs::path(opt.common.out_dir) / "flowers_train_00000-of-00001.tfrecord"));
  auto members = ReadTar(opt.root, false);
  std::set<int64_t> labels;
  for (const auto& ex : train) {
    EXPECT_EQ(ex.size(), 5u);  // slim's image_to_tfexample
    EXPECT_EQ(*ex.GetBytes("image/format"), "jpg");
    labels.insert(*ex.GetInt64("image/class/label"));
    bool matched = false;  // bytes are one of the archive's images, untouched
    for (const auto& [name, bytes] : members) matched |= bytes == *ex.GetBytes("image/encoded");
    EXPECT_TRUE(matched);
  }
  labels.insert(*val[0].GetInt64("image/class/label"));
  EXPECT_EQ(labels, (std::set<int64_t>{0, 1, 2, 3, 4}));
}

TEST_F(FixtureIngestTest, Cifar10BinaryRecordsKeepLabelsAndPixels) {
  const std::string dir = kTfds + "cifar10/cifar-10-batches-bin";
  std::multiset<std::pair<int64_t, std::string>> expected;  // (label, HWC pixels) of train records
  for (int b = 1; b <= 5; ++b) {
    auto bytes = *formats::ReadFile(dir + "/data_batch_" + std::to_string(b) + ".bin");
    ASSERT_EQ(bytes.size() % 3073, 0u);
    for (size_t r = 0; r < bytes.size() / 3073; ++r) {
      const char* rec = bytes.data() + r * 3073;
      std::string hwc(3072, '\0');
      for (int c = 0; c < 3; ++c) {
        for (int i = 0; i < 1024; ++i) hwc[i * 3 + c] = rec[1 + c * 1024 + i];
      }
      expected.insert({static_cast<uint8_t>(rec[0]), hwc});
    }
  }
  for (bool png : {true, false}) {
    CifarOptions opt;
    opt.common = Common(png ? "cifar_png" : "cifar_raw");
    opt.archive = dir;
    opt.encode_png = png;
    opt.train_shards = 3;
    opt.test_shards = 1;
    auto summary = IngestCifar10(opt);
    ASSERT_TRUE(summary.ok()) << summary.status().ToString();
    auto train = ReadShards(opt.common.out_dir, "train-");
    ASSERT_EQ(train.size(), expected.size());
    std::multiset<std::pair<int64_t, std::string>> got;
    for (const auto& ex : train) {
      std::string pixels(*ex.GetBytes("image/encoded"));
      EXPECT_EQ(*ex.GetBytes("image/format"), png ? "PNG" : "RAW");
      if (png) {
        formats::DecodeOptions d;
        d.force_rgb = true;
        auto img = formats::DecodeImage(pixels, d);
        ASSERT_TRUE(img.ok());
        pixels.assign(img->pixels.begin(), img->pixels.end());
      }
      const int64_t label = *ex.GetInt64("image/class/label");
      got.insert({label, pixels});
      EXPECT_EQ(*ex.GetInt64("image/height"), 32);
      static const char* kNames[] = {"airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck"};
      EXPECT_EQ(*ex.GetBytes("image/class/text"), kNames[label]);
    }
    EXPECT_EQ(got, expected) << (png ? "png" : "raw");
    EXPECT_EQ(ReadShards(opt.common.out_dir, "test-").size(), 2u);
  }
}

}  // namespace
}  // namespace sluice::ingest
