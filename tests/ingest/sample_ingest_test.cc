// Ingest of `sluice sample-data` output: counts, labels, boxes, metadata text, the re-encoded PNG and
// CMYK images and the untouched grayscale one; and extracted directories giving the same shards as
// the archives.
#include <gtest/gtest.h>

#include <set>

#include "ingest_test_util.h"
#include "sluice/formats/image.h"
#include "sluice/ingest/bboxes.h"
#include "sluice/ingest/datasets.h"
#include "sluice/ingest/sample_data.h"

namespace sluice::ingest {
namespace {

using namespace testing_util;

class SampleIngestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("sluice_sample_ingest_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    SampleDataOptions opt;
    opt.imagenet_train_images = 60;
    opt.classes = 6;
    opt.flowers_per_class = 4;
    opt.cifar_per_batch = 10;
    opt.cifar_test = 10;
    opt.width = 96;
    opt.height = 72;
    auto s = WriteSampleData((*dir_ / "sample").string(), opt);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    summary_ = new SampleDataSummary(*s);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete summary_;
  }
  static fs::path* dir_;
  static SampleDataSummary* summary_;
};
fs::path* SampleIngestTest::dir_ = nullptr;
SampleDataSummary* SampleIngestTest::summary_ = nullptr;

TEST_F(SampleIngestTest, ImagenetRecordsCarryLabelsBoxesTextAndFixedImages) {
  const SampleDataSummary& s = *summary_;
  ImagenetOptions opt;
  opt.train_archive = s.imagenet_train_tar;
  opt.val_archive = s.imagenet_val_tar;
  opt.val_labels = s.imagenet_val_labels;
  opt.metadata = s.imagenet_metadata;
  opt.bboxes = s.imagenet_bbox_tar;
  opt.train_shards = 4;
  opt.val_shards = 2;
  opt.common.out_dir = (*dir_ / "imagenet").string();
  auto r = IngestImagenet(opt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->splits["train"].images, static_cast<uint64_t>(s.imagenet_train_images));
  EXPECT_EQ(r->splits["validation"].images, static_cast<uint64_t>(s.imagenet_val_images));
  EXPECT_EQ(r->splits["train"].reencoded, 2u);  // the PNG named .JPEG and the CMYK JPEG

  auto boxes = ReadBoundingBoxes(s.imagenet_bbox_tar);  // the independent path: parse the XMLs
  ASSERT_TRUE(boxes.ok()) << boxes.status().ToString();
  auto metadata = *formats::ReadFile(s.imagenet_metadata);
  size_t with_boxes = 0;
  bool png = false, cmyk = false, gray = false;
  for (const auto& ex : ReadShards(opt.common.out_dir, "train-")) {
    const std::string file(*ex.GetBytes("image/filename"));
    const std::string wnid(*ex.GetBytes("image/class/synset"));
    const int64_t label = *ex.GetInt64("image/class/label");
    ASSERT_GE(label, 1);
    EXPECT_EQ(s.synsets[label - 1], wnid);
    EXPECT_TRUE(file.starts_with(wnid + "_")) << file;
    const std::string text(*ex.GetBytes("image/class/text"));
    EXPECT_NE(metadata.find(wnid + "\t" + text + "\n"), std::string::npos) << wnid << " " << text;
    auto xmin = *ex.GetFloatList("image/object/bbox/xmin");
    auto blabel = *ex.GetInt64List("image/object/bbox/label");
    auto it = boxes->find(file);
    if (it == boxes->end()) {
      EXPECT_TRUE(xmin.empty()) << file;
    } else {
      ++with_boxes;
      ASSERT_EQ(xmin.size(), it->second.size()) << file;
      auto ymax = *ex.GetFloatList("image/object/bbox/ymax");
      for (size_t i = 0; i < xmin.size(); ++i) {
        EXPECT_EQ(xmin[i], it->second[i].xmin);
        EXPECT_EQ(ymax[i], it->second[i].ymax);
        EXPECT_EQ(blabel[i], label);
      }
    }
    auto info = formats::ProbeImage(*ex.GetBytes("image/encoded"));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->format, formats::ImageFormat::kJpeg) << file;
    EXPECT_FALSE(info->IsCmyk()) << file;
    if (file == s.png_member) png = true;
    if (file == s.cmyk_member) {
      cmyk = true;
      EXPECT_EQ(info->components, 3);
    }
    if (file == s.grayscale_member) {  // passes through untouched, as in the reference
      gray = true;
      EXPECT_EQ(info->components, 1);
      EXPECT_EQ(*ex.GetInt64("image/channels"), 3);
    }
  }
  EXPECT_TRUE(png && cmyk && gray);
  EXPECT_GT(with_boxes, 0u);
  EXPECT_EQ(with_boxes, boxes->size());
}

TEST_F(SampleIngestTest, ExtractedDirectoriesGiveTheSameShardsAsTheArchives) {
  const SampleDataSummary& s = *summary_;
  // Extract the way users do today: outer tar, then each per-synset tar into train/<wnid>/.
  const fs::path train_dir = *dir_ / "extracted" / "train";
  for (const auto& [inner, bytes] : ReadTar(s.imagenet_train_tar, false)) {
    const fs::path d = train_dir / inner.substr(0, inner.size() - 4);
    fs::create_directories(d);
    for (const auto& [name, data] : ReadTar(bytes, true)) {
      ASSERT_TRUE(formats::WriteFileAtomically((d / name).string(), data).ok());
    }
  }
  const fs::path val_dir = *dir_ / "extracted" / "validation";
  fs::create_directories(val_dir);
  for (const auto& [name, data] : ReadTar(s.imagenet_val_tar, false)) {
    ASSERT_TRUE(formats::WriteFileAtomically((val_dir / name).string(), data).ok());
  }
  auto run = [&](const std::string& train, const std::string& val, const std::string& out) {
    ImagenetOptions opt;
    opt.train_archive = train;
    opt.val_archive = val;
    opt.val_labels = s.imagenet_val_labels;
    opt.train_shards = 3;
    opt.val_shards = 2;
    opt.common.out_dir = (*dir_ / out).string();
    auto r = IngestImagenet(opt);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return ShardBytes(opt.common.out_dir);
  };
  auto from_archives = run(s.imagenet_train_tar, s.imagenet_val_tar, "from_archives");
  auto from_dirs = run(train_dir.string(), val_dir.string(), "from_dirs");
  from_archives.erase(".sluice");
  from_dirs.erase(".sluice");
  EXPECT_EQ(from_dirs, from_archives);
  EXPECT_EQ(from_dirs.size(), 5u);
}

TEST_F(SampleIngestTest, FlowersRatioSplitAndCifarRawAreComplete) {
  const SampleDataSummary& s = *summary_;
  FolderOptions f;
  f.root = s.flowers_tgz;
  f.naming = FolderNaming::kFlowers;
  f.split_ratios = {0.6, 0.2, 0.2};
  f.common.out_dir = (*dir_ / "flowers").string();
  auto r = IngestFolder(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const uint64_t total = r->splits["train"].images + r->splits["validation"].images + r->splits["test"].images;
  EXPECT_EQ(total, static_cast<uint64_t>(s.flowers_images));
  EXPECT_EQ(r->splits["test"].images, 4u);  // 20 * 0.2
  EXPECT_TRUE(fs::exists(fs::path(f.common.out_dir) / "flowers_test_00004-of-00005.tfrecord"));

  CifarOptions c;
  c.archive = s.cifar10_tgz;
  c.encode_png = false;
  c.common.out_dir = (*dir_ / "cifar").string();
  auto rc = IngestCifar10(c);
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  EXPECT_EQ(rc->splits["train"].images, static_cast<uint64_t>(s.cifar10_train_records));
  EXPECT_EQ(rc->splits["test"].images, static_cast<uint64_t>(s.cifar10_test_records));
  for (const auto& ex : ReadShards(c.common.out_dir, "test-")) {
    EXPECT_EQ(ex.GetBytes("image/encoded")->size(), 3072u);
  }
}

}  // namespace
}  // namespace sluice::ingest
