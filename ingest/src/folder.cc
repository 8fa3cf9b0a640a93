// sluice ingest folder / flowers: any <class>/<image> tree, in a directory or an archive.
#include <algorithm>
#include <filesystem>
#include <numeric>
#include <set>

#include "run_ingest.h"
#include "sluice/formats/example.h"
#include "sluice/formats/file_util.h"
#include "sluice/ingest/archive.h"
#include "sluice/ingest/datasets.h"

namespace sluice::ingest {
namespace {

using nlohmann::json;

// The class of an image is its parent directory's name; images without a parent directory (and files
// that are not images, such as flower_photos/LICENSE.txt) are ignored.
std::string ClassOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  return Basename(path.substr(0, slash));
}

// Same seeded generator as the shard plan (shard_writer.cc), for the split assignment.
std::vector<size_t> SeededPermutation(size_t n, uint64_t seed) {
  auto plan = PlanShards(n, 1, seed);
  return plan[0];
}

}  // namespace

Result<IngestSummary> IngestFolder(const FolderOptions& opt) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<InputSource> source, InputSource::Open(opt.root));
  std::vector<Member> members;
  SLUICE_RETURN_IF_ERROR(source->List(&members));
  uint64_t ignored = source->unsafe_members();

  std::vector<size_t> images;
  std::set<std::string> class_set;
  for (size_t i = 0; i < members.size(); ++i) {
    const std::string cls = ClassOf(members[i].path);
    if (cls.empty() || !HasImageExtension(members[i].path)) {
      ++ignored;
      continue;
    }
    images.push_back(i);
    class_set.insert(cls);
  }
  if (images.empty()) return Status::InvalidArgument(opt.root + ": no <class>/<image> files found");
  const std::vector<std::string> classes(class_set.begin(), class_set.end());
  std::map<std::string, int64_t> label_of;
  for (size_t i = 0; i < classes.size(); ++i) label_of[classes[i]] = static_cast<int64_t>(i);
  std::sort(images.begin(), images.end(),
            [&](size_t a, size_t b) { return members[a].path < members[b].path; });

  // Split: a seeded permutation of the sorted images, cut by count (slim's --validation) or ratios.
  const size_t n = images.size();
  std::vector<std::pair<std::string, std::vector<size_t>>> parts;
  std::vector<size_t> perm = SeededPermutation(n, opt.common.seed ^ 0x5eed5711ull);
  if (opt.validation_count >= 0) {
    if (static_cast<size_t>(opt.validation_count) >= n) {
      return Status::InvalidArgument("--validation " + std::to_string(opt.validation_count) +
                                     " leaves no training images: " + opt.root + " has " +
                                     std::to_string(n) + " (use a smaller count or --split)");
    }
    parts.push_back({"validation", {perm.begin(), perm.begin() + opt.validation_count}});
    parts.push_back({"train", {perm.begin() + opt.validation_count, perm.end()}});
  } else {
    static const char* kNames[] = {"train", "validation", "test"};
    if (opt.split_ratios.empty() || opt.split_ratios.size() > 3) {
      return Status::InvalidArgument("--split takes 1 to 3 ratios (train,validation,test)");
    }
    double total = std::accumulate(opt.split_ratios.begin(), opt.split_ratios.end(), 0.0);
    if (total <= 0) return Status::InvalidArgument("--split ratios must sum to more than 0");
    size_t begin = 0;
    double cumulative = 0;
    for (size_t k = 0; k < opt.split_ratios.size(); ++k) {
      if (opt.split_ratios[k] < 0) return Status::InvalidArgument("--split ratios must be >= 0");
      cumulative += opt.split_ratios[k];
      size_t end = k + 1 == opt.split_ratios.size()
                       ? n
                       : static_cast<size_t>(std::llround(cumulative / total * n));
      parts.push_back({kNames[k], {perm.begin() + begin, perm.begin() + end}});
      begin = end;
    }
  }

  const bool flowers = opt.naming == FolderNaming::kFlowers;
  const PrepOptions prep = opt.common.prep;
  std::vector<SplitSpec> specs;
  for (auto& [name, positions] : parts) {
    if (positions.empty()) continue;
    std::sort(positions.begin(), positions.end());  // canonical order within the split
    SplitSpec spec;
    spec.name = name;
    spec.source = source.get();
    spec.members = &members;
    spec.num_shards = opt.shards_per_split;
    spec.file_pattern = flowers ? "flowers_" + name + "_%05d-of-%05d.tfrecord" : name + "-%05d-of-%05d";
    for (size_t p : positions) {
      const size_t m = images[p];
      spec.samples.push_back({m, label_of[ClassOf(members[m].path)], 0});
    }
    spec.build = [&members, &classes, prep, flowers](const Sample& s,
                                                     std::string&& bytes) -> Result<BuiltRecord> {
      SLUICE_ASSIGN_OR_RETURN(PreparedImage img, PrepareImage(std::move(bytes), prep));
      formats::Example ex;
      if (flowers) {
        // slim's dataset_utils.image_to_tfexample, with download_and_convert_flowers.py's b'jpg'.
        ex.SetBytes("image/format", "jpg")
            .SetInt64("image/class/label", s.label)
            .SetInt64("image/height", img.height)
            .SetInt64("image/width", img.width);
      } else {
        ex.SetBytes("image/format", "JPEG")
            .SetBytes("image/colorspace", "RGB")
            .SetInt64("image/channels", 3)
            .SetInt64("image/class/label", s.label)
            .SetBytes("image/class/text", classes[s.label])
            .SetInt64("image/height", img.height)
            .SetInt64("image/width", img.width)
            .SetBytes("image/filename", Basename(members[s.member].path));
      }
      SetEncodedImage(&ex, std::move(img.bytes));
      return BuiltRecord{ex.Serialize(), img.reencoded};
    };
    specs.push_back(std::move(spec));
  }

  // labels.txt ("0:daisy"), as slim's dataset_utils.write_label_file.
  SLUICE_RETURN_IF_ERROR(formats::CreateDirectories(opt.common.out_dir));
  std::string labels;
  for (size_t i = 0; i < classes.size(); ++i) labels += std::to_string(i) + ":" + classes[i] + "\n";
  SLUICE_RETURN_IF_ERROR(formats::WriteFileAtomically(
      (std::filesystem::path(opt.common.out_dir) / "labels.txt").string(), labels));

  json ratios = opt.split_ratios;
  json options = {{"seed", opt.common.seed},
                  {"naming", flowers ? "flowers" : "folder"},
                  {"validation", opt.validation_count},
                  {"split", ratios},
                  {"shards", opt.shards_per_split},
                  {"classes", classes},
                  {"reencode_quality", prep.reencode_quality},
                  {"max_pixels", prep.max_pixels},
                  {"verify_decode", prep.verify_decode}};
  SLUICE_ASSIGN_OR_RETURN(
      IngestSummary summary,
      RunIngest(flowers ? "flowers" : "folder", json::array({InputJson(opt.root)}), options, specs,
                opt.common));
  summary.ignored_members = ignored;
  return summary;
}

}  // namespace sluice::ingest
