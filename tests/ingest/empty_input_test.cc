// An input that yields no images is an error naming it, for every front-end, like a truncated
// archive: never a successful run that writes "0 images" and a manifest of empty splits.
#include <gtest/gtest.h>

#include "ingest_test_util.h"
#include "sluice/ingest/datasets.h"

namespace sluice::ingest {
namespace {

using namespace testing_util;

class EmptyInputTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir("empty_input"); }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Tar(const std::string& name,
                  const std::vector<std::pair<std::string, std::string>>& members,
                  bool gzip = false) {
    const std::string path = (dir_ / name).string();
    WriteTar(path, members, gzip);
    return path;
  }
  // A front-end's options writing to out().
  template <typename T>
  T Options() {
    T opt;
    opt.common.out_dir = out();
    opt.common.threads = 1;
    return opt;
  }
  std::string out() const { return (dir_ / "out").string(); }
  // The run failed with `code`, its message names every one of `parts`, and it left no manifest
  // (nor a run description) claiming an output.
  void ExpectFailed(const Result<IngestSummary>& r, StatusCode code,
                    std::initializer_list<std::string_view> parts) {
    ExpectError(r, code, parts);
    EXPECT_FALSE(fs::exists(fs::path(out()) / "manifest.json"));
    EXPECT_FALSE(fs::exists(fs::path(out()) / ".sluice" / "run.json"));
  }

  fs::path dir_;
};

TEST_F(EmptyInputTest, ImagenetTrainTarOfOnlyADirectoryIsAnErrorNamingIt) {
  auto opt = Options<ImagenetOptions>();
  opt.train_archive = Tar("train.tar", {{"train/", ""}});
  ExpectFailed(IngestImagenet(opt), StatusCode::kInvalidArgument,
               {opt.train_archive, "holds no images", "train"});
}

TEST_F(EmptyInputTest, ImagenetTrainTarOfOnlyNonImagesIsAnErrorNamingIt) {
  // A per-synset tar holding a text file, and a stray file beside it: both ignored, nothing left.
  const std::string inner = Tar("n01440764.tar", {{"n01440764_1.txt", "not an image"}});
  auto opt = Options<ImagenetOptions>();
  opt.train_archive =
      Tar("train.tar", {{"n01440764.tar", *formats::ReadFile(inner)}, {"README", "hello"}});
  ExpectFailed(IngestImagenet(opt), StatusCode::kInvalidArgument,
               {opt.train_archive, "holds no images"});
}

TEST_F(EmptyInputTest, ImagenetValidationTarWithoutImagesIsAnErrorNamingIt) {
  auto opt = Options<ImagenetOptions>();
  opt.val_archive = Tar("val.tar", {{"val/", ""}, {"val/LICENSE", "text"}});
  opt.val_labels = (dir_ / "labels.txt").string();
  ASSERT_TRUE(formats::WriteFileAtomically(opt.val_labels, "n01440764\n").ok());
  ExpectFailed(IngestImagenet(opt), StatusCode::kInvalidArgument, {opt.val_archive, "0 images"});
}

TEST_F(EmptyInputTest, FlowersArchiveWithOnlyTheLicenseIsAnErrorNamingIt) {
  auto opt = Options<FolderOptions>();
  opt.naming = FolderNaming::kFlowers;
  opt.root = Tar("flower_photos.tgz",
                 {{"flower_photos/", ""},
                  {"flower_photos/daisy/", ""},
                  {"flower_photos/LICENSE.txt", "CC-BY"}},
                 /*gzip=*/true);
  ExpectFailed(IngestFolder(opt), StatusCode::kInvalidArgument,
               {opt.root, "no <class>/<image> files"});
}

TEST_F(EmptyInputTest, FolderTreeWithoutImagesIsAnErrorNamingIt) {
  const fs::path root = dir_ / "tree";
  fs::create_directories(root / "cats");
  ASSERT_TRUE(formats::WriteFileAtomically((root / "cats" / "notes.txt").string(), "x").ok());
  auto opt = Options<FolderOptions>();
  opt.root = root.string();
  opt.split_ratios = {0.8, 0.2};
  ExpectFailed(IngestFolder(opt), StatusCode::kInvalidArgument,
               {opt.root, "no <class>/<image> files"});
}

TEST_F(EmptyInputTest, Cifar10ArchiveWithoutBatchesIsAnErrorNamingIt) {
  auto opt = Options<CifarOptions>();
  opt.archive = Tar("cifar-10-binary.tar.gz",
                    {{"cifar-10-batches-bin/", ""}, {"cifar-10-batches-bin/readme.html", "<p>"}},
                    /*gzip=*/true);
  ExpectFailed(IngestCifar10(opt), StatusCode::kInvalidArgument,
               {opt.archive, "no CIFAR-10 batches"});
}

TEST_F(EmptyInputTest, Cifar10EmptyBatchIsDataLossNamingIt) {
  auto opt = Options<CifarOptions>();
  opt.archive =
      Tar("cifar.tar", {{"cifar-10-batches-bin/batches.meta.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"},
                        {"cifar-10-batches-bin/data_batch_1.bin", ""}});
  ExpectFailed(IngestCifar10(opt), StatusCode::kDataLoss,
               {opt.archive, "data_batch_1.bin", "empty"});
}

}  // namespace
}  // namespace sluice::ingest
