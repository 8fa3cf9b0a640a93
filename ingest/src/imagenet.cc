// sluice ingest imagenet: ILSVRC2012 train/validation archives -> build_imagenet_data.py's shards.
#include <algorithm>
#include <set>

#include "run_ingest.h"
#include "sluice/formats/example.h"
#include "sluice/formats/file_util.h"
#include "sluice/ingest/archive.h"
#include "sluice/ingest/bboxes.h"
#include "sluice/ingest/datasets.h"
#include "sluice/ingest/imagenet_meta.h"

namespace sluice::ingest {
namespace {

using nlohmann::json;

struct ImagenetTables {
  std::vector<std::string> synsets;            // label - 1 -> wnid
  std::map<std::string, std::string> text;     // wnid -> human text
  BoxTable boxes;                              // "n01440764_18.JPEG" -> boxes
};

// The 15 features of build_imagenet_data.py's _convert_to_example.
std::string ImagenetExample(PreparedImage&& img, const std::string& filename,
                            const std::string& synset, int64_t label, const ImagenetTables& t) {
  formats::Example ex;
  std::vector<float> xmin, ymin, xmax, ymax;
  if (auto it = t.boxes.find(filename); it != t.boxes.end()) {
    for (const BoundingBox& b : it->second) {
      xmin.push_back(b.xmin);
      ymin.push_back(b.ymin);
      xmax.push_back(b.xmax);
      ymax.push_back(b.ymax);
    }
  }
  auto text = t.text.find(synset);
  ex.SetInt64("image/height", img.height)
      .SetInt64("image/width", img.width)
      .SetBytes("image/colorspace", "RGB")
      .SetInt64("image/channels", 3)
      .SetInt64("image/class/label", label)
      .SetBytes("image/class/synset", synset)
      .SetBytes("image/class/text", text == t.text.end() ? "" : text->second)
      .SetInt64List("image/object/bbox/label", std::vector<int64_t>(xmin.size(), label))
      .SetFloatList("image/object/bbox/xmin", std::move(xmin))
      .SetFloatList("image/object/bbox/ymin", std::move(ymin))
      .SetFloatList("image/object/bbox/xmax", std::move(xmax))
      .SetFloatList("image/object/bbox/ymax", std::move(ymax))
      .SetBytes("image/format", "JPEG")
      .SetBytes("image/filename", filename);
  SetEncodedImage(&ex, std::move(img.bytes));
  return ex.Serialize();
}

struct Split {
  std::unique_ptr<InputSource> source;
  std::vector<Member> members;
  std::vector<std::string> synset_of;  // per member ("" = not an image, ignored)
};

// Train: the synset is the nested tar's name (n01440764.tar) or the member's directory (extracted
// train/<wnid>/x.JPEG).
Status ListTrain(const std::string& path, Split* split, uint64_t* ignored) {
  SourceOptions so;
  so.expand_nested_tars = true;
  SLUICE_ASSIGN_OR_RETURN(split->source, InputSource::Open(path, so));
  SLUICE_RETURN_IF_ERROR(split->source->List(&split->members));
  *ignored += split->source->unsafe_members();
  for (const Member& m : split->members) {
    std::string wnid;
    if (!m.container.empty()) {
      wnid = Basename(m.container);
      wnid = wnid.substr(0, wnid.size() - 4);  // strip ".tar"
    } else {
      size_t slash = m.path.rfind('/');
      std::string dir = slash == std::string::npos ? "" : m.path.substr(0, slash);
      wnid = Basename(dir);
    }
    if (!HasImageExtension(m.path)) {
      ++*ignored;
      wnid.clear();
    } else if (!IsWnid(wnid)) {
      return Status::InvalidArgument(m.Display(path) + ": cannot tell its synset ('" + wnid +
                                     "' is not a wnid like n01440764)");
    }
    split->synset_of.push_back(wnid);
  }
  return Status::Ok();
}

}  // namespace

Result<IngestSummary> IngestImagenet(const ImagenetOptions& opt) {
  if (opt.train_archive.empty() && opt.val_archive.empty()) {
    return Status::InvalidArgument("give --train-archive and/or --val-archive");
  }
  if (!opt.val_archive.empty() && opt.val_labels.empty()) {
    return Status::InvalidArgument("--val-archive needs --val-labels (the 50,000-line synset file)");
  }
  uint64_t ignored = 0;
  ImagenetTables tables;
  Split train, val;
  std::vector<std::string> val_wnids;

  if (!opt.train_archive.empty()) SLUICE_RETURN_IF_ERROR(ListTrain(opt.train_archive, &train, &ignored));

  // Labels: 1 + index in the sorted synset list (0 is background, as in the reference).
  if (!opt.synsets.empty()) {
    SLUICE_ASSIGN_OR_RETURN(std::string text, formats::ReadFile(opt.synsets));
    SLUICE_ASSIGN_OR_RETURN(tables.synsets, ParseSynsetList(text, opt.synsets));
    std::sort(tables.synsets.begin(), tables.synsets.end());
  } else if (!train.members.empty()) {
    std::set<std::string> seen(train.synset_of.begin(), train.synset_of.end());
    seen.erase("");
    tables.synsets.assign(seen.begin(), seen.end());
  }
  if (!opt.val_archive.empty()) {
    SLUICE_ASSIGN_OR_RETURN(val.source, InputSource::Open(opt.val_archive));
    SLUICE_RETURN_IF_ERROR(val.source->List(&val.members));
    ignored += val.source->unsafe_members();
    SLUICE_ASSIGN_OR_RETURN(std::string text, formats::ReadFile(opt.val_labels));
    std::set<std::string> known(tables.synsets.begin(), tables.synsets.end());
    SLUICE_ASSIGN_OR_RETURN(
        val_wnids, ParseValidationLabels(text, opt.val_labels, 0, known.empty() ? nullptr : &known));
    if (tables.synsets.empty()) {
      std::set<std::string> seen(val_wnids.begin(), val_wnids.end());
      tables.synsets.assign(seen.begin(), seen.end());
    }
    size_t images = 0;
    for (const Member& m : val.members) {
      if (!HasImageExtension(m.path)) {
        ++ignored;
        val.synset_of.emplace_back();
        continue;
      }
      ++images;
      auto index = ValidationIndexFromName(Basename(m.path));
      if (!index.ok()) return index.status().WithPrefix(m.Display(opt.val_archive));
      if (static_cast<size_t>(*index) > val_wnids.size()) {
        return Status::InvalidArgument(m.Display(opt.val_archive) + " is image " +
                                       std::to_string(*index) + " but " + opt.val_labels +
                                       " has only " + std::to_string(val_wnids.size()) + " lines");
      }
      val.synset_of.push_back(val_wnids[*index - 1]);
    }
    if (images != val_wnids.size()) {
      return Status::InvalidArgument(opt.val_labels + " has " + std::to_string(val_wnids.size()) +
                                     " lines but " + opt.val_archive + " holds " +
                                     std::to_string(images) + " images");
    }
  }
  if (!opt.metadata.empty()) {
    SLUICE_ASSIGN_OR_RETURN(std::string text, formats::ReadFile(opt.metadata));
    SLUICE_ASSIGN_OR_RETURN(tables.text, ParseMetadata(text, opt.metadata));
  }
  if (!opt.bboxes.empty()) {
    SLUICE_ASSIGN_OR_RETURN(tables.boxes, ReadBoundingBoxes(opt.bboxes));
  }

  std::map<std::string, int64_t> label_of;
  for (size_t i = 0; i < tables.synsets.size(); ++i) label_of[tables.synsets[i]] = 1 + static_cast<int64_t>(i);

  std::vector<SplitSpec> specs;
  json inputs = json::array();
  auto add_split = [&](Split& s, const std::string& name, const std::string& path, int shards) -> Status {
    SplitSpec spec;
    spec.name = name;
    spec.source = s.source.get();
    spec.members = &s.members;
    spec.num_shards = shards;
    spec.file_pattern = name + "-%05d-of-%05d";
    std::vector<size_t> order;
    for (size_t i = 0; i < s.members.size(); ++i) {
      if (!s.synset_of[i].empty()) order.push_back(i);
    }
    // Canonical order: by display path (container then member), independent of archive order.
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const Member &x = s.members[a], &y = s.members[b];
      return std::tie(x.container, x.path) < std::tie(y.container, y.path);
    });
    for (size_t i : order) {
      auto it = label_of.find(s.synset_of[i]);
      if (it == label_of.end()) {
        return Status::InvalidArgument(s.members[i].Display(path) + ": synset " + s.synset_of[i] +
                                       " is not in the synset list" +
                                       (opt.synsets.empty() ? "" : " " + opt.synsets));
      }
      spec.samples.push_back({i, it->second, 0});
    }
    const PrepOptions prep = opt.common.prep;
    spec.build = [&s, &tables, prep](const Sample& sample, std::string&& bytes) -> Result<BuiltRecord> {
      SLUICE_ASSIGN_OR_RETURN(PreparedImage img, PrepareImage(std::move(bytes), prep));
      const Member& m = s.members[sample.member];
      const bool reencoded = img.reencoded;
      return BuiltRecord{ImagenetExample(std::move(img), Basename(m.path), s.synset_of[sample.member],
                                         sample.label, tables),
                         reencoded};
    };
    inputs.push_back(InputJson(path));
    specs.push_back(std::move(spec));
    return Status::Ok();
  };
  if (train.source) SLUICE_RETURN_IF_ERROR(add_split(train, "train", opt.train_archive, opt.train_shards));
  if (val.source) SLUICE_RETURN_IF_ERROR(add_split(val, "validation", opt.val_archive, opt.val_shards));
  for (const std::string& p : {opt.val_labels, opt.metadata, opt.bboxes, opt.synsets}) {
    if (!p.empty()) inputs.push_back(InputJson(p));
  }
  json options = {{"seed", opt.common.seed},
                  {"train_shards", opt.train_shards},
                  {"val_shards", opt.val_shards},
                  {"reencode_quality", opt.common.prep.reencode_quality},
                  {"max_pixels", opt.common.prep.max_pixels},
                  {"verify_decode", opt.common.prep.verify_decode},
                  {"synsets", tables.synsets.size()},
                  {"metadata", !opt.metadata.empty()},
                  {"bboxes", tables.boxes.size()}};
  SLUICE_ASSIGN_OR_RETURN(IngestSummary summary,
                          RunIngest("imagenet", inputs, options, specs, opt.common));
  summary.ignored_members = ignored;
  return summary;
}

}  // namespace sluice::ingest
