// Behaviour every ingest command shares, on small archives built here: determinism across thread
// counts, scale-out union equality, resume after an interruption, atomic output, and each bad input.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "ingest_test_util.h"
#include "sluice/formats/image.h"
#include "sluice/formats/manifest.h"
#include "sluice/formats/record_format.h"
#include "sluice/formats/sha256.h"
#include "sluice/ingest/archive.h"
#include "sluice/ingest/datasets.h"
#include "sluice/ingest/manifest.h"
#include "sluice/ingest/shard_writer.h"

namespace sluice::ingest {
namespace {

using namespace testing_util;

std::string Jpeg(int seed, int w = 24, int h = 16) {
  formats::Image img;
  img.width = w;
  img.height = h;
  img.channels = 3;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  std::mt19937 rng(seed);
  for (auto& p : img.pixels) p = static_cast<uint8_t>(rng());
  return *formats::EncodeJpeg(img, 90);
}

class IngestBehaviourTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir("ingest_behaviour"); }
  void TearDown() override { fs::remove_all(dir_); }

  // A train tar of `classes` per-synset tars with `per_class` JPEGs each; `extra` members are added
  // to the first inner tar.
  std::string TrainTar(int classes, int per_class,
                       std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> outer;
    for (int c = 0; c < classes; ++c) {
      char wnid[16];
      std::snprintf(wnid, sizeof(wnid), "n%08d", 1000 + c * 7);
      std::vector<std::pair<std::string, std::string>> inner;
      for (int i = 0; i < per_class; ++i) {
        inner.push_back({std::string(wnid) + "_" + std::to_string(i) + ".JPEG", Jpeg(c * 1000 + i)});
      }
      if (c == 0) inner.insert(inner.end(), extra.begin(), extra.end());
      const std::string inner_path = (dir_ / (std::string(wnid) + ".tar")).string();
      WriteTar(inner_path, inner);
      outer.push_back({std::string(wnid) + ".tar", *formats::ReadFile(inner_path)});
      fs::remove(inner_path);
    }
    const std::string path = (dir_ / "train.tar").string();
    WriteTar(path, outer);
    return path;
  }

  ImagenetOptions Options(const std::string& train, const std::string& out, int shards = 4) {
    ImagenetOptions opt;
    opt.train_archive = train;
    opt.train_shards = shards;
    opt.common.out_dir = (dir_ / out).string();
    opt.common.seed = 7;
    opt.common.max_bad = 5;
    return opt;
  }

  fs::path dir_;
};

TEST_F(IngestBehaviourTest, OutputIsByteIdenticalForAnyThreadCount) {
  const std::string train = TrainTar(5, 12);
  std::map<std::string, std::string> reference;
  for (int threads : {1, 2, 4}) {
    auto opt = Options(train, "t" + std::to_string(threads), 7);
    opt.common.threads = threads;
    auto s = IngestImagenet(opt);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto bytes = ShardBytes(opt.common.out_dir);
    ASSERT_EQ(bytes.count("train-00006-of-00007"), 1u);
    if (reference.empty()) {
      reference = bytes;
    } else {
      EXPECT_EQ(bytes, reference) << threads << " threads";
    }
  }
  // Balanced: 60 images over 7 shards -> 8 or 9 each; and a different seed gives a different order.
  for (int i = 0; i < 7; ++i) {
    size_t n = ReadShards(dir_ / "t1", "train-0000" + std::to_string(i)).size();
    EXPECT_TRUE(n == 8 || n == 9) << n;
  }
  auto opt = Options(train, "seed8", 7);
  opt.common.seed = 8;
  ASSERT_TRUE(IngestImagenet(opt).ok());
  EXPECT_NE(ShardBytes(opt.common.out_dir)["train-00000-of-00007"], reference["train-00000-of-00007"]);
}

TEST_F(IngestBehaviourTest, ScaleOutTasksUnionEqualsOneProcess) {
  const std::string train = TrainTar(4, 10);
  auto whole = Options(train, "whole", 5);
  ASSERT_TRUE(IngestImagenet(whole).ok());
  auto parts = Options(train, "parts", 5);
  for (int t = 0; t < 3; ++t) {
    parts.common.num_tasks = 3;
    parts.common.task_index = t;
    auto s = IngestImagenet(parts);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_FALSE(s->manifest_written);
    if (t < 2) {
      EXPECT_FALSE(WriteManifest(parts.common.out_dir).ok());  // tasks still missing
    }
  }
  auto merged = WriteManifest(parts.common.out_dir);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->records, 40u);
  EXPECT_EQ(ShardBytes(parts.common.out_dir), ShardBytes(whole.common.out_dir));
  EXPECT_EQ(*formats::ReadFile(parts.common.out_dir + "/manifest.json"),
            *formats::ReadFile(whole.common.out_dir + "/manifest.json"));
}

// The manifest ingest writes is the one formats::Manifest reads, and what it says agrees with the
// shard files on disk: per-shard records, bytes, checksums and label histograms, and the totals.
TEST_F(IngestBehaviourTest, ManifestReadsBackWithTheCountsOfTheShards) {
  const std::string train = TrainTar(3, 5, {{"n00001000_bad.JPEG", "not an image"}});
  auto opt = Options(train, "manifest", 2);
  auto s = IngestImagenet(opt);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto m = formats::Manifest::Read(opt.common.out_dir);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->dataset, "imagenet");
  EXPECT_TRUE(m->tool.starts_with("sluice ")) << m->tool;
  EXPECT_NE(m->inputs_json.find("train.tar"), std::string::npos) << m->inputs_json;
  EXPECT_NE(m->options_json.find("\"train_shards\":2"), std::string::npos) << m->options_json;
  EXPECT_EQ(m->SplitNames(), std::vector<std::string>{"train"});
  const formats::ManifestSplit& split = m->splits.at("train");
  EXPECT_EQ(split.records, 15u);
  ASSERT_EQ(split.shards.size(), 2u);
  uint64_t records = 0, bytes = 0;
  std::map<int64_t, uint64_t> labels;
  for (const formats::ManifestShard& shard : split.shards) {
    const std::string data = *formats::ReadFile(fs::path(opt.common.out_dir) / shard.file);
    EXPECT_EQ(shard.records, ReadShards(opt.common.out_dir, shard.file).size()) << shard.file;
    EXPECT_EQ(shard.bytes, data.size()) << shard.file;
    EXPECT_EQ(shard.sha256, formats::Sha256Hex(data)) << shard.file;
    uint64_t in_histogram = 0;
    for (const auto& [label, n] : shard.labels) {
      labels[label] += n;
      in_histogram += n;
    }
    EXPECT_EQ(in_histogram, shard.records) << shard.file;
    records += shard.records;
    bytes += shard.bytes;
  }
  EXPECT_EQ(records, 15u);
  EXPECT_EQ(labels, (std::map<int64_t, uint64_t>{{1, 5}, {2, 5}, {3, 5}}));  // 1-based synsets
  EXPECT_EQ(m->NumClasses(), 4);                                             // + background
  EXPECT_EQ(m->totals, (formats::ManifestTotals{2, 15, bytes, 0, 1}));        // the bad JPEG
  EXPECT_EQ(*m->ShardPaths(opt.common.out_dir, "train"),
            (std::vector<std::string>{opt.common.out_dir + "/train-00000-of-00002",
                                      opt.common.out_dir + "/train-00001-of-00002"}));
  // Writing it back reproduces ingest's bytes: one layout, one writer.
  auto text = m->Serialize();
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, *formats::ReadFile(formats::Manifest::PathIn(opt.common.out_dir)));
}

TEST_F(IngestBehaviourTest, ResumeKeepsVerifiedShardsAndRedoesDamagedOnes) {
  const std::string train = TrainTar(3, 10);
  auto opt = Options(train, "resume", 3);
  ASSERT_TRUE(IngestImagenet(opt).ok());
  const auto good = ShardBytes(opt.common.out_dir);
  // Simulate an interruption: one shard missing, one corrupted, a stale .tmp, no manifest.
  const fs::path out = opt.common.out_dir;
  fs::remove(out / "train-00000-of-00003");
  {
    std::string b = *formats::ReadFile(out / "train-00001-of-00003");
    b[b.size() / 2] ^= 1;
    fs::remove(out / "train-00001-of-00003");
    ASSERT_TRUE(formats::WriteFileAtomically(out / "train-00001-of-00003", b).ok());
  }
  ASSERT_TRUE(formats::WriteFileAtomically(out / "train-00002-of-00003.tmp", "partial").ok());
  fs::remove(out / "manifest.json");
  opt.common.resume = true;
  auto s = IngestImagenet(opt);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->splits["train"].resumed, 1u);  // only the intact shard was kept
  fs::remove(out / "train-00002-of-00003.tmp");
  EXPECT_EQ(ShardBytes(out), good);
  EXPECT_TRUE(fs::exists(out / "manifest.json"));
}

TEST_F(IngestBehaviourTest, BadImagesAreSkippedAndListedUpToTheBudget) {
  std::string truncated = Jpeg(1, 64, 64);
  truncated.resize(truncated.size() / 2);
  std::string huge = Jpeg(2);
  huge[huge.find("\xff\xc0") + 5] = '\x7f';  // SOF0 height high byte: 32k+ rows claimed
  huge[huge.find("\xff\xc0") + 7] = '\x7f';  // and 32k+ columns
  const std::string train = TrainTar(2, 5,
                                     {{"n00001000_bad1.JPEG", truncated},
                                      {"n00001000_bad2.JPEG", ""},
                                      {"n00001000_bad3.JPEG", "this is not an image"},
                                      {"n00001000_bad4.JPEG", huge}});
  auto opt = Options(train, "bad", 2);
  opt.common.prep.max_pixels = 1 << 20;
  auto s = IngestImagenet(opt);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->splits["train"].images, 10u);
  EXPECT_EQ(s->splits["train"].rejected, 4u);
  std::string rejects = *formats::ReadFile(opt.common.out_dir + "/rejects.jsonl");
  for (const char* needle : {"n00001000_bad1.JPEG", "truncated", "n00001000_bad2.JPEG", "empty",
                             "n00001000_bad3.JPEG", "not a JPEG or PNG", "n00001000_bad4.JPEG",
                             "over the cap", "n00001000.tar/", "train.tar"}) {
    EXPECT_NE(rejects.find(needle), std::string::npos) << needle << "\n" << rejects;
  }
  // Over budget: the run fails, and no manifest claims completeness.
  opt.common.max_bad = 3;
  opt.common.out_dir = (dir_ / "bad_over").string();
  auto failed = IngestImagenet(opt);
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("--max-bad 3"), std::string::npos);
  EXPECT_FALSE(fs::exists(fs::path(opt.common.out_dir) / "manifest.json"));
  for (const auto& e : fs::directory_iterator(opt.common.out_dir)) {
    EXPECT_FALSE(e.path().string().ends_with(".tmp")) << e.path();
  }
}

TEST_F(IngestBehaviourTest, TruncatedOuterArchiveFailsNamingArchiveAndMember) {
  const std::string train = TrainTar(3, 6);
  std::string bytes = *formats::ReadFile(train);
  const std::string cut = (dir_ / "cut.tar").string();
  ASSERT_TRUE(formats::WriteFileAtomically(cut, bytes.substr(0, bytes.size() * 2 / 3)).ok());
  auto s = IngestImagenet(Options(cut, "cut"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("cut.tar"), std::string::npos) << s.status().message();
  EXPECT_TRUE(s.status().IsDataLoss()) << s.status().ToString();
  EXPECT_FALSE(fs::exists(dir_ / "cut" / "manifest.json"));
}

TEST_F(IngestBehaviourTest, CorruptInnerTarFailsNamingIt) {
  std::vector<std::pair<std::string, std::string>> outer = {
      {"n00000001.tar", std::string(1024, 'x')}};  // garbage where a tar header should be
  const std::string path = (dir_ / "inner.tar").string();
  WriteTar(path, outer);
  auto s = IngestImagenet(Options(path, "inner"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("n00000001.tar"), std::string::npos) << s.status().message();
}

TEST_F(IngestBehaviourTest, UnsafeMemberPathsAreIgnored) {
  EXPECT_TRUE(IsUnsafeMemberPath("/etc/passwd"));
  EXPECT_TRUE(IsUnsafeMemberPath("a/../../b.jpg"));
  EXPECT_TRUE(IsUnsafeMemberPath(".."));
  EXPECT_FALSE(IsUnsafeMemberPath("a/b..c/d.jpg"));
  const std::string tgz = (dir_ / "f.tgz").string();
  WriteTar(tgz,
           {{"root/cat/a.jpg", Jpeg(1)}, {"root/dog/b.jpg", Jpeg(2)}, {"../evil/c.jpg", Jpeg(3)},
            {"root/cat/../../../d.jpg", Jpeg(4)}, {"root/LICENSE.txt", "text"}},
           /*gzip=*/true);
  FolderOptions opt;
  opt.root = tgz;
  opt.common.out_dir = (dir_ / "unsafe").string();
  opt.shards_per_split = 1;
  auto s = IngestFolder(opt);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->splits["train"].images, 2u);
  EXPECT_EQ(s->ignored_members, 3u);  // two unsafe paths + LICENSE.txt
  EXPECT_FALSE(fs::exists(dir_ / "evil"));
}

TEST_F(IngestBehaviourTest, ValidationLabelErrors) {
  const std::string val = (dir_ / "val.tar").string();
  WriteTar(val, {{"ILSVRC2012_val_00000002.JPEG", Jpeg(2)}, {"ILSVRC2012_val_00000001.JPEG", Jpeg(1)}});
  auto run = [&](const std::string& labels, const std::string& synsets = "") {
    const std::string lf = (dir_ / "labels.txt").string();
    EXPECT_TRUE(formats::WriteFileAtomically(lf, labels).ok());
    ImagenetOptions opt;
    opt.val_archive = val;
    opt.val_labels = lf;
    opt.val_shards = 1;
    if (!synsets.empty()) {
      opt.synsets = (dir_ / "synsets.txt").string();
      EXPECT_TRUE(formats::WriteFileAtomically(opt.synsets, synsets).ok());
    }
    opt.common.out_dir = (dir_ / "valout").string();
    return IngestImagenet(opt);
  };
  auto ok = run("n00000002\nn00000001\n");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  auto ex = ReadShards(dir_ / "valout", "validation-");
  ASSERT_EQ(ex.size(), 2u);
  for (const auto& e : ex) {
    const bool first = *e.GetBytes("image/filename") == "ILSVRC2012_val_00000001.JPEG";
    EXPECT_EQ(*e.GetBytes("image/class/synset"), first ? "n00000002" : "n00000001");
  }
  auto wrong_count = run("n00000002\nn00000001\nn00000001\n");
  EXPECT_FALSE(wrong_count.ok());
  EXPECT_NE(wrong_count.status().message().find("3 lines"), std::string::npos)
      << wrong_count.status().message();
  auto unknown = run("n00000002\nn09999999\n", "n00000001\nn00000002\n");
  EXPECT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("n09999999"), std::string::npos);
}

TEST_F(IngestBehaviourTest, SynsetDirectoryNotInSynsetListFails) {
  const std::string train = TrainTar(2, 2);
  auto opt = Options(train, "syn");
  opt.synsets = (dir_ / "synsets.txt").string();
  ASSERT_TRUE(formats::WriteFileAtomically(opt.synsets, "n00001000\n").ok());  // lacks n00001007
  auto s = IngestImagenet(opt);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("n00001007"), std::string::npos) << s.status().message();
}

TEST_F(IngestBehaviourTest, CifarFileOfWrongSizeFails) {
  const fs::path d = dir_ / "cifar";
  fs::create_directories(d);
  ASSERT_TRUE(formats::WriteFileAtomically((d / "data_batch_1.bin").string(), std::string(3073 * 2 + 5, '\1')).ok());
  ASSERT_TRUE(formats::WriteFileAtomically((d / "batches.meta.txt").string(),
                                           "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n").ok());
  CifarOptions opt;
  opt.archive = d.string();
  opt.common.out_dir = (dir_ / "cifar_out").string();
  auto s = IngestCifar10(opt);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("data_batch_1.bin"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("6151"), std::string::npos) << s.status().message();
}

TEST_F(IngestBehaviourTest, CompressedArchivesStreamInBudgetedPasses) {
  std::vector<std::pair<std::string, std::string>> members;
  for (int i = 0; i < 40; ++i) {
    members.push_back({"d/c" + std::to_string(i % 4) + "/" + std::to_string(i) + ".jpg", Jpeg(i)});
  }
  const std::string tgz = (dir_ / "s.tgz").string();
  WriteTar(tgz, members, true);
  const std::string tar = (dir_ / "s.tar").string();
  WriteTar(tar, members, false);
  std::map<std::string, std::string> reference;
  for (const auto& [path, budget] : std::vector<std::pair<std::string, uint64_t>>{
           {tar, 1 << 30}, {tgz, 1 << 30}, {tgz, 1000}}) {  // 1000 B: one shard per pass
    FolderOptions opt;
    opt.root = path;
    opt.shards_per_split = 5;
    opt.common.memory_budget = budget;
    opt.common.out_dir = (dir_ / ("o" + std::to_string(budget) + fs::path(path).extension().string())).string();
    auto s = IngestFolder(opt);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto bytes = ShardBytes(opt.common.out_dir);
    if (reference.empty()) {
      reference = bytes;
    } else {
      EXPECT_EQ(bytes, reference) << path << " budget " << budget;
    }
  }
}

TEST(PlanShardsTest, PermutationIsCompleteBalancedAndSeeded) {
  auto plan = PlanShards(103, 10, 1);
  std::set<size_t> all;
  for (const auto& s : plan) {
    EXPECT_TRUE(s.size() == 10 || s.size() == 11);
    all.insert(s.begin(), s.end());
  }
  EXPECT_EQ(all.size(), 103u);
  EXPECT_EQ(PlanShards(103, 10, 1), plan);
  EXPECT_NE(PlanShards(103, 10, 2), plan);
  EXPECT_EQ(PlanShards(0, 3, 1).size(), 3u);
}

}  // namespace
}  // namespace sluice::ingest
