// WriteSampleData: lays out each dataset from seeded generators (which class, size, id and oddity
// every image gets), renders and encodes images in parallel batches with TBB, and writes the
// archives in a fixed order with libarchive. This file is longer than most because it holds the
// layout of all three datasets; the image synthesis lives in synthetic_image.cc.
#include "sluice/ingest/sample_data.h"

#include <archive.h>
#include <archive_entry.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "sluice/formats/file_util.h"
#include "sluice/formats/image.h"
#include "synthetic_image.h"

namespace sluice::ingest {
namespace {

// Every archive header gets this mtime (2012-06-01 00:00:00 UTC, around the ILSVRC2012 release),
// owner and mode, so archives never depend on the clock or on who ran the command.
constexpr int64_t kMtime = 1338508800;
constexpr int kUid = 1000;
constexpr int kGid = 1000;
constexpr const char* kOwner = "sluice";

// Independent random streams (MixSeed's `stream`), one per use, so changing one dataset's size
// leaves the others' bytes unchanged.
enum Stream : uint64_t {
  kTrainLayout = 1,
  kTrainImage,
  kValLayout,
  kValImage,
  kFlowersLayout,
  kFlowersImage,
  kCifarLayout,
  kCifarImage,
};

struct Synset {
  const char* wnid;
  const char* text;  // as in imagenet_metadata.txt
};

// Real ILSVRC2012 synsets: Imagenette's ten, then ten dog breeds of Imagewoof.
constexpr Synset kSynsets[kMaxSampleClasses] = {
    {"n01440764", "tench, Tinca tinca"},
    {"n02102040", "English springer, English springer spaniel"},
    {"n02979186", "cassette player"},
    {"n03000684", "chain saw, chainsaw"},
    {"n03028079", "church, church building"},
    {"n03394916", "French horn, horn"},
    {"n03417042", "garbage truck, dustcart"},
    {"n03425413", "gas pump, gasoline pump, petrol pump, island dispenser"},
    {"n03445777", "golf ball"},
    {"n03888257", "parachute, chute"},
    {"n02086240", "Shih-Tzu"},
    {"n02087394", "Rhodesian ridgeback"},
    {"n02088364", "beagle"},
    {"n02089973", "English foxhound"},
    {"n02093754", "Border terrier"},
    {"n02096294", "Australian terrier"},
    {"n02099601", "golden retriever"},
    {"n02105641", "Old English sheepdog, bobtail"},
    {"n02111889", "Samoyed, Samoyede"},
    {"n02115641", "dingo, warrigal, warragal, Canis dingo"},
};

constexpr const char* kFlowerClasses[] = {"daisy", "dandelion", "roses", "sunflowers", "tulips"};
constexpr const char* kCifarClasses[] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                         "dog",      "frog",       "horse", "ship", "truck"};
constexpr int kCifarSide = 32;
constexpr int kCifarRecordBytes = 1 + 3 * kCifarSide * kCifarSide;

// ---- archives -----------------------------------------------------------------------------------

// A ustar archive (gzip-compressed or not) written with libarchive into a string or, through an
// AtomicFile, into a file that appears under its final name only once Close() succeeds. Not
// thread-safe.
class TarWriter {
 public:
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;
  ~TarWriter() {
    if (archive_ != nullptr) archive_write_free(archive_);  // before file_ abandons the .tmp
  }

  static Result<std::unique_ptr<TarWriter>> ToMemory(std::string* out, std::string name) {
    std::unique_ptr<TarWriter> w(new TarWriter(std::move(name)));
    w->memory_ = out;
    SLUICE_RETURN_IF_ERROR(w->Open(false));
    return w;
  }

  static Result<std::unique_ptr<TarWriter>> ToFile(const std::string& path, bool gzip) {
    std::unique_ptr<TarWriter> w(new TarWriter(path));
    SLUICE_ASSIGN_OR_RETURN(w->file_, formats::AtomicFile::Create(path));
    SLUICE_RETURN_IF_ERROR(w->Open(gzip));
    return w;
  }

  Status AddFile(const std::string& member, std::string_view data) {
    return AddEntry(member, AE_IFREG, 0644, data);
  }
  Status AddDirectory(const std::string& member) { return AddEntry(member, AE_IFDIR, 0755, {}); }

  // Writes the end-of-archive blocks (and the gzip trailer) and, for a file, publishes it.
  Status Close() {
    SLUICE_RETURN_IF_ERROR(Check(archive_write_close(archive_), "finishing"));
    archive_write_free(archive_);
    archive_ = nullptr;
    if (memory_ == nullptr) SLUICE_RETURN_IF_ERROR(file_.Commit());
    return Status::Ok();
  }

  uint64_t bytes() const { return memory_ ? memory_->size() : file_.bytes_written(); }

 private:
  explicit TarWriter(std::string name) : name_(std::move(name)) {}

  Status Open(bool gzip) {
    archive_ = archive_write_new();
    if (archive_ == nullptr) return Status::IoError(name_ + ": archive_write_new failed");
    SLUICE_RETURN_IF_ERROR(Check(archive_write_set_format_ustar(archive_), "setting ustar"));
    if (gzip) {
      SLUICE_RETURN_IF_ERROR(Check(archive_write_add_filter_gzip(archive_), "adding gzip"));
      // No mtime in the gzip header (libarchive stores the clock by default).
      SLUICE_RETURN_IF_ERROR(
          Check(archive_write_set_filter_option(archive_, "gzip", "timestamp", nullptr),
                "disabling the gzip timestamp"));
      // No zero padding after the gzip stream (the tar inside is still padded to whole records).
      SLUICE_RETURN_IF_ERROR(
          Check(archive_write_set_bytes_in_last_block(archive_, 1), "setting the last block size"));
    }
    return Check(archive_write_open(archive_, this, nullptr, &TarWriter::Write, nullptr),
                 "opening");
  }

  static la_ssize_t Write(struct archive*, void* client, const void* buffer, size_t length) {
    auto* self = static_cast<TarWriter*>(client);
    const std::string_view bytes(static_cast<const char*>(buffer), length);
    if (self->memory_ != nullptr) {
      self->memory_->append(bytes);
      return static_cast<la_ssize_t>(length);
    }
    self->sink_status_ = self->file_.Append(bytes);
    return self->sink_status_.ok() ? static_cast<la_ssize_t>(length) : -1;
  }

  Status AddEntry(const std::string& member, unsigned int type, int perm, std::string_view data) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, member.c_str());
    archive_entry_set_filetype(entry, type);
    archive_entry_set_perm(entry, perm);
    archive_entry_set_size(entry, static_cast<la_int64_t>(data.size()));
    archive_entry_set_mtime(entry, kMtime, 0);
    archive_entry_set_uid(entry, kUid);
    archive_entry_set_gid(entry, kGid);
    archive_entry_set_uname(entry, kOwner);
    archive_entry_set_gname(entry, kOwner);
    Status s = Check(archive_write_header(archive_, entry), "writing the header of " + member);
    archive_entry_free(entry);
    SLUICE_RETURN_IF_ERROR(s);
    if (!data.empty()) {
      const la_ssize_t n = archive_write_data(archive_, data.data(), data.size());
      if (n < 0 || static_cast<size_t>(n) != data.size()) {
        return Check(ARCHIVE_FATAL, "writing " + member);
      }
    }
    return Status::Ok();
  }

  Status Check(int rc, const std::string& what) {
    if (rc == ARCHIVE_OK) return Status::Ok();
    if (!sink_status_.ok()) return sink_status_.WithPrefix(name_ + ": " + what);
    const char* msg = archive_error_string(archive_);
    return Status::IoError(name_ + ": " + what + ": " + (msg ? msg : "libarchive error"));
  }

  std::string name_;
  std::string* memory_ = nullptr;
  formats::AtomicFile file_;
  Status sink_status_;
  struct archive* archive_ = nullptr;
};

// ---- parallel rendering
// ---------------------------------------------------------------------------

// Makes items 0..n-1 with `make(i)` (a Result) in parallel, a batch at a time, and hands them to
// `consume(i, value)` in index order on the calling thread. Output order, and so the bytes of every
// archive, does not depend on the thread count; memory holds at most one batch of encoded images.
// TBB propagates exceptions (only std::bad_alloc can arise here); they stop at this boundary.
template <typename T, typename Make, typename Consume>
Status GenerateOrdered(int64_t n, const Make& make, const Consume& consume) {
  const int64_t batch = std::max<int64_t>(32, 8 * tbb::this_task_arena::max_concurrency());
  std::vector<std::optional<Result<T>>> slots;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t count = std::min(batch, n - start);
    slots.clear();
    slots.resize(static_cast<size_t>(count));
    try {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, count),
                        [&](const tbb::blocked_range<int64_t>& r) {
                          for (int64_t i = r.begin(); i != r.end(); ++i)
                            slots[static_cast<size_t>(i)].emplace(make(start + i));
                        });
    } catch (const std::exception& e) {
      return Status::IoError(std::string("rendering sample images failed: ") + e.what());
    }
    for (int64_t i = 0; i < count; ++i) {
      Result<T>& r = *slots[static_cast<size_t>(i)];
      if (!r.ok()) return r.status();
      SLUICE_RETURN_IF_ERROR(consume(start + i, std::move(r).value()));
    }
  }
  return Status::Ok();
}

// ---- layout helpers
// -------------------------------------------------------------------------------

struct Size {
  int width;
  int height;
};

// ImageNet's typical shapes: mostly 500 on the long side at 4:3 (500x375) or 3:2 (500x333), some
// smaller, about a fifth portrait.
Size ImageNetLikeSize(const SampleDataOptions& options, SplitMix64& rng) {
  if (options.width > 0) return {options.width, options.height};
  const int long_side = rng.Uniform() < 0.6 ? 500 : static_cast<int>(rng.UniformInt(300, 500));
  const double u = rng.Uniform();
  const double aspect = u < 0.5   ? 4.0 / 3
                        : u < 0.7 ? 1.5
                        : u < 0.8 ? 1.0
                        : u < 0.9 ? 1.25
                                  : 16.0 / 9;
  const int short_side = std::max(200, static_cast<int>(long_side / aspect + 0.5));
  if (rng.Uniform() < 0.2) return {short_side, long_side};
  return {long_side, short_side};
}

// `count` distinct ids in [1, max(60000, 4 * count)], in draw order (so not sorted, like a tar's).
std::vector<int64_t> DistinctIds(int64_t count, SplitMix64& rng) {
  const int64_t hi = std::max<int64_t>(60000, 4 * count);
  std::set<int64_t> seen;
  std::vector<int64_t> ids;
  while (static_cast<int64_t>(ids.size()) < count) {
    const int64_t id = rng.UniformInt(1, hi);
    if (seen.insert(id).second) ids.push_back(id);
  }
  return ids;
}

enum class Variant { kRgbJpeg, kPng, kCmykJpeg, kGrayJpeg };

struct ImageJob {
  SyntheticImageSpec spec;
  Variant variant = Variant::kRgbJpeg;
};

struct Rendered {
  std::string bytes;
  std::vector<PixelBox> boxes;
};

Result<Rendered> RenderAndEncode(const ImageJob& job, int quality) {
  SyntheticImage img = RenderSyntheticImage(job.spec);
  Rendered out;
  out.boxes = std::move(img.boxes);
  Result<std::string> bytes = Status::Unsupported("unreachable");
  switch (job.variant) {
    case Variant::kRgbJpeg:
      bytes = formats::EncodeJpeg(img.image, quality);
      break;
    case Variant::kPng:
      bytes = formats::EncodePng(img.image);
      break;
    case Variant::kGrayJpeg:
      bytes = formats::EncodeJpeg(ToGray(img.image), quality);
      break;
    case Variant::kCmykJpeg: {
      formats::JpegEncodeOptions cmyk;
      cmyk.cmyk = true;
      bytes = formats::EncodeJpeg(ToAdobeCmyk(img.image), quality, cmyk);
      break;
    }
  }
  if (!bytes.ok()) return bytes.status().WithPrefix("encoding a sample image");
  out.bytes = std::move(bytes).value();
  return out;
}

// Records a published file in the summary and tells the caller.
void Published(const std::string& path, int64_t images, uint64_t bytes,
               const SampleDataOptions& options, SampleDataSummary* summary) {
  summary->files.push_back(path);
  summary->bytes += bytes;
  if (options.on_file) options.on_file(path, images, bytes);
}

Status WriteText(const std::string& path, const std::string& text, const SampleDataOptions& options,
                 SampleDataSummary* summary) {
  SLUICE_RETURN_IF_ERROR(formats::WriteFileAtomically(path, text));
  Published(path, 0, text.size(), options, summary);
  return Status::Ok();
}

// ---- ImageNet
// -------------------------------------------------------------------------------------

struct TrainImage {
  int cls = 0;       // index into the sorted synsets
  std::string name;  // "n01440764_1234.JPEG"
  ImageJob job;
  bool has_bbox = false;
};

// One PASCAL-VOC file as in ILSVRC2012_bbox_train_v2.tar.gz (tab-indented, one <object> per box).
std::string VocXml(const std::string& wnid, const std::string& stem, int width, int height,
                   int depth, const std::vector<PixelBox>& boxes) {
  std::string xml = "<annotation>\n\t<folder>" + wnid + "</folder>\n\t<filename>" + stem +
                    "</filename>\n\t<source>\n\t\t<database>ILSVRC_2012</database>\n\t</source>\n"
                    "\t<size>\n\t\t<width>" +
                    std::to_string(width) + "</width>\n\t\t<height>" + std::to_string(height) +
                    "</height>\n\t\t<depth>" + std::to_string(depth) +
                    "</depth>\n\t</size>\n\t<segmented>0</segmented>\n";
  for (const PixelBox& b : boxes) {
    xml += "\t<object>\n\t\t<name>" + wnid +
           "</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
           "\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>" +
           std::to_string(b.xmin) + "</xmin>\n\t\t\t<ymin>" + std::to_string(b.ymin) +
           "</ymin>\n\t\t\t<xmax>" + std::to_string(b.xmax) + "</xmax>\n\t\t\t<ymax>" +
           std::to_string(b.ymax) + "</ymax>\n\t\t</bndbox>\n\t</object>\n";
  }
  return xml + "</annotation>\n";
}

Status WriteImageNet(const std::string& dir, const SampleDataOptions& options,
                     SampleDataSummary* summary) {
  const int k = options.classes;
  std::vector<int> order(k);
  for (int i = 0; i < k; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [](int a, int b) { return std::string_view(kSynsets[a].wnid) < kSynsets[b].wnid; });
  for (int i : order) summary->synsets.push_back(kSynsets[i].wnid);
  // Class c (sorted position) is drawn with style order[c]: a synset looks the same whatever K is.
  auto style_of = [&](int cls) { return order[cls]; };

  // Train layout: per class (sorted), its ids, sizes, object counts and bbox presence.
  SplitMix64 layout(MixSeed(options.seed, kTrainLayout, 0));
  const int n = options.imagenet_train_images;
  std::vector<TrainImage> train;
  std::vector<int64_t> class_start(k + 1, 0);
  for (int c = 0; c < k; ++c) {
    const int count = n / k + (c < n % k ? 1 : 0);
    class_start[c + 1] = class_start[c] + count;
    for (int64_t id : DistinctIds(count, layout)) {
      TrainImage t;
      t.cls = c;
      t.name = summary->synsets[c] + "_" + std::to_string(id) + ".JPEG";
      const Size size = ImageNetLikeSize(options, layout);
      t.job.spec = {style_of(c), size.width, size.height, layout.Uniform() < 0.25 ? 2 : 1,
                    MixSeed(options.seed, kTrainImage, train.size())};
      t.has_bbox = layout.UniformInt(0, 99) < options.bbox_percent;
      train.push_back(std::move(t));
    }
  }
  // The oddities, in classes 0, 1 and 2 (mod K), on distinct images.
  std::set<size_t> taken;
  auto pick = [&](int s, Variant variant) -> std::string {
    const int c = s % k;
    const int64_t count = class_start[c + 1] - class_start[c];
    size_t i = static_cast<size_t>(class_start[c] + layout.UniformInt(0, count - 1));
    while (taken.count(i)) i = (i + 1) % train.size();
    taken.insert(i);
    train[i].job.variant = variant;
    return train[i].name;
  };
  summary->png_member = pick(0, Variant::kPng);
  summary->cmyk_member = pick(1, Variant::kCmykJpeg);
  summary->grayscale_member = pick(2, Variant::kGrayJpeg);
  // The malformed boxes: two different images that have a bbox file and one drawn object.
  std::vector<size_t> boxed;
  for (size_t i = 0; i < train.size(); ++i) {
    if (train[i].has_bbox && train[i].job.spec.objects == 1) boxed.push_back(i);
  }
  SeededShuffle(boxed, layout);
  const std::optional<size_t> swapped = boxed.size() >= 2 ? std::optional(boxed[0]) : std::nullopt;
  const std::optional<size_t> degenerate =
      boxed.size() >= 2 ? std::optional(boxed[1]) : std::nullopt;

  // Train tar: one in-memory ustar per synset, appended to the outer tar in sorted order.
  const std::string train_path = dir + "/ILSVRC2012_img_train.tar";
  SLUICE_ASSIGN_OR_RETURN(auto outer, TarWriter::ToFile(train_path, false));
  std::map<std::string, std::string> xmls;  // bbox member -> XML, sorted as the tar wants
  for (int c = 0; c < k; ++c) {
    const std::string& wnid = summary->synsets[c];
    std::string inner_bytes;
    SLUICE_ASSIGN_OR_RETURN(auto inner, TarWriter::ToMemory(&inner_bytes, wnid + ".tar"));
    const int64_t first = class_start[c];
    SLUICE_RETURN_IF_ERROR(GenerateOrdered<Rendered>(
        class_start[c + 1] - first,
        [&](int64_t i) { return RenderAndEncode(train[first + i].job, options.jpeg_quality); },
        [&](int64_t i, Rendered r) -> Status {
          const size_t idx = static_cast<size_t>(first + i);
          const TrainImage& t = train[idx];
          if (t.has_bbox) {
            std::vector<PixelBox> boxes = r.boxes;
            if (swapped == idx) std::swap(boxes[0].xmin, boxes[0].xmax);
            if (degenerate == idx) {
              const int x = t.job.spec.width / 3;
              boxes.push_back({x, t.job.spec.height / 4, x, t.job.spec.height / 2});
            }
            const std::string stem = t.name.substr(0, t.name.size() - 5);
            const std::string member = wnid + "/" + stem + ".xml";
            if (swapped == idx) summary->swapped_box_xml = member;
            if (degenerate == idx) summary->degenerate_box_xml = member;
            summary->bbox_objects += static_cast<int64_t>(boxes.size());
            xmls[member] = VocXml(wnid, stem, t.job.spec.width, t.job.spec.height,
                                  t.job.variant == Variant::kGrayJpeg ? 1 : 3, boxes);
          }
          return inner->AddFile(t.name, r.bytes);
        }));
    SLUICE_RETURN_IF_ERROR(inner->Close());
    SLUICE_RETURN_IF_ERROR(outer->AddFile(wnid + ".tar", inner_bytes));
  }
  SLUICE_RETURN_IF_ERROR(outer->Close());
  summary->imagenet_train_tar = train_path;
  summary->imagenet_train_images = n;
  Published(train_path, n, outer->bytes(), options, summary);

  // Bounding boxes.
  const std::string bbox_path = dir + "/ILSVRC2012_bbox_train_v2.tar.gz";
  SLUICE_ASSIGN_OR_RETURN(auto bbox, TarWriter::ToFile(bbox_path, true));
  std::string last_dir;
  for (const auto& [member, xml] : xmls) {
    const std::string member_dir = member.substr(0, member.find('/') + 1);
    if (member_dir != last_dir) SLUICE_RETURN_IF_ERROR(bbox->AddDirectory(member_dir));
    last_dir = member_dir;
    SLUICE_RETURN_IF_ERROR(bbox->AddFile(member, xml));
  }
  SLUICE_RETURN_IF_ERROR(bbox->Close());
  summary->imagenet_bbox_tar = bbox_path;
  summary->bbox_files = static_cast<int64_t>(xmls.size());
  Published(bbox_path, 0, bbox->bytes(), options, summary);

  // Validation: balanced classes in a seeded order; the tar lists the images in another seeded
  // order, as the real tar is not sorted by index.
  const int m = options.imagenet_val_images >= 0 ? options.imagenet_val_images : std::max(1, n / 4);
  SplitMix64 val_layout(MixSeed(options.seed, kValLayout, 0));
  std::vector<int> val_class(m);
  for (int i = 0; i < m; ++i) val_class[i] = i % k;
  SeededShuffle(val_class, val_layout);
  std::vector<ImageJob> val_jobs(m);
  for (int i = 0; i < m; ++i) {
    const Size size = ImageNetLikeSize(options, val_layout);
    val_jobs[i].spec = {style_of(val_class[i]), size.width, size.height, 1,
                        MixSeed(options.seed, kValImage, static_cast<uint64_t>(i))};
  }
  std::vector<int> member_order(m);
  for (int i = 0; i < m; ++i) member_order[i] = i;
  SeededShuffle(member_order, val_layout);

  const std::string val_path = dir + "/ILSVRC2012_img_val.tar";
  SLUICE_ASSIGN_OR_RETURN(auto val, TarWriter::ToFile(val_path, false));
  SLUICE_RETURN_IF_ERROR(GenerateOrdered<Rendered>(
      m,
      [&](int64_t j) { return RenderAndEncode(val_jobs[member_order[j]], options.jpeg_quality); },
      [&](int64_t j, Rendered r) -> Status {
        char name[64];
        std::snprintf(name, sizeof(name), "ILSVRC2012_val_%08d.JPEG", member_order[j] + 1);
        return val->AddFile(name, r.bytes);
      }));
  SLUICE_RETURN_IF_ERROR(val->Close());
  summary->imagenet_val_tar = val_path;
  summary->imagenet_val_images = m;
  Published(val_path, m, val->bytes(), options, summary);

  std::string labels;
  for (int i = 0; i < m; ++i) labels += summary->synsets[val_class[i]] + "\n";
  summary->imagenet_val_labels = dir + "/imagenet_2012_validation_synset_labels.txt";
  SLUICE_RETURN_IF_ERROR(WriteText(summary->imagenet_val_labels, labels, options, summary));

  std::string metadata;
  for (int i : order) metadata += std::string(kSynsets[i].wnid) + "\t" + kSynsets[i].text + "\n";
  summary->imagenet_metadata = dir + "/imagenet_metadata.txt";
  SLUICE_RETURN_IF_ERROR(WriteText(summary->imagenet_metadata, metadata, options, summary));

  summary->images += n + m;
  return Status::Ok();
}

// ---- flowers
// ----------------------------------------------------------------------------------------

Status WriteFlowers(const std::string& dir, const SampleDataOptions& options,
                    SampleDataSummary* summary) {
  SplitMix64 layout(MixSeed(options.seed, kFlowersLayout, 0));
  struct Flower {
    std::string member;
    ImageJob job;
  };
  std::vector<Flower> flowers;
  std::string license =
      "All images in this archive were generated by `sluice sample-data` (synthetic pictures, no\n"
      "photographers). They are dedicated to the public domain (CC0 1.0):\n"
      "https://creativecommons.org/publicdomain/zero/1.0/\n\n"
      "The real flower_photos.tgz lists the Flickr photographer of each image here; we list the\n"
      "generator.\n\n";
  for (int c = 0; c < 5; ++c) {
    std::set<std::string> names;  // sorted, so the tar lists each class in name order
    while (static_cast<int>(names.size()) < options.flowers_per_class) {
      char name[64];
      // Flickr-style names like the real archive's "100080576_f52e8ee070_n.jpg".
      std::snprintf(name, sizeof(name), "%lld_%010llx_n.jpg",
                    static_cast<long long>(layout.UniformInt(1000000, 9999999999LL)),
                    static_cast<unsigned long long>(layout.Next() & 0xffffffffffULL));
      names.insert(name);
    }
    for (const std::string& name : names) {
      Flower f;
      f.member = std::string("flower_photos/") + kFlowerClasses[c] + "/" + name;
      const Size size = ImageNetLikeSize(options, layout);
      f.job.spec = {10 + c, size.width, size.height, 1,
                    MixSeed(options.seed, kFlowersImage, flowers.size())};
      license += std::string(kFlowerClasses[c]) + "/" + name + " by sluice sample-data - CC0 1.0\n";
      flowers.push_back(std::move(f));
    }
  }

  const std::string path = dir + "/flower_photos.tgz";
  SLUICE_ASSIGN_OR_RETURN(auto tgz, TarWriter::ToFile(path, true));
  SLUICE_RETURN_IF_ERROR(tgz->AddDirectory("flower_photos/"));
  SLUICE_RETURN_IF_ERROR(tgz->AddFile("flower_photos/LICENSE.txt", license));
  std::string last_dir;
  SLUICE_RETURN_IF_ERROR(GenerateOrdered<Rendered>(
      static_cast<int64_t>(flowers.size()),
      [&](int64_t i) { return RenderAndEncode(flowers[i].job, options.jpeg_quality); },
      [&](int64_t i, Rendered r) -> Status {
        const std::string& member = flowers[i].member;
        const std::string member_dir = member.substr(0, member.rfind('/') + 1);
        if (member_dir != last_dir) SLUICE_RETURN_IF_ERROR(tgz->AddDirectory(member_dir));
        last_dir = member_dir;
        return tgz->AddFile(member, r.bytes);
      }));
  SLUICE_RETURN_IF_ERROR(tgz->Close());
  summary->flowers_tgz = path;
  summary->flowers_images = static_cast<int64_t>(flowers.size());
  summary->images += summary->flowers_images;
  Published(path, summary->flowers_images, tgz->bytes(), options, summary);
  return Status::Ok();
}

// ---- CIFAR-10
// -----------------------------------------------------------------------------------------

// One record of the binary layout: label byte, then the R, G and B planes (32x32, row-major).
std::string CifarRecord(int label, const formats::Image& rgb) {
  std::string rec(kCifarRecordBytes, '\0');
  rec[0] = static_cast<char>(label);
  const int plane = kCifarSide * kCifarSide;
  for (int i = 0; i < plane; ++i) {
    for (int ch = 0; ch < 3; ++ch)
      rec[1 + ch * plane + i] = static_cast<char>(rgb.pixels[i * 3 + ch]);
  }
  return rec;
}

Status WriteCifar10(const std::string& dir, const SampleDataOptions& options,
                    SampleDataSummary* summary) {
  const std::string path = dir + "/cifar-10-binary.tar.gz";
  SLUICE_ASSIGN_OR_RETURN(auto tgz, TarWriter::ToFile(path, true));
  SLUICE_RETURN_IF_ERROR(tgz->AddDirectory("cifar-10-batches-bin/"));
  std::string meta;
  for (const char* name : kCifarClasses) meta += std::string(name) + "\n";
  meta += "\n";  // the real file ends with an empty line
  SLUICE_RETURN_IF_ERROR(tgz->AddFile("cifar-10-batches-bin/batches.meta.txt", meta));

  SplitMix64 layout(MixSeed(options.seed, kCifarLayout, 0));
  uint64_t image_index = 0;
  for (int file = 0; file < 6; ++file) {
    const bool test = file == 5;
    const int count = test ? options.cifar_test : options.cifar_per_batch;
    std::vector<int> labels(count);  // balanced, in a seeded order like the real batches
    for (int i = 0; i < count; ++i) labels[i] = i % 10;
    SeededShuffle(labels, layout);
    const uint64_t first = image_index;
    std::string data;
    data.reserve(static_cast<size_t>(count) * kCifarRecordBytes);
    SLUICE_RETURN_IF_ERROR(GenerateOrdered<std::string>(
        count,
        [&](int64_t i) -> Result<std::string> {
          const SyntheticImage img =
              RenderSyntheticImage({labels[i], kCifarSide, kCifarSide, 1,
                                    MixSeed(options.seed, kCifarImage, first + i)});
          return CifarRecord(labels[i], img.image);
        },
        [&](int64_t, std::string rec) -> Status {
          data += rec;
          return Status::Ok();
        }));
    image_index += count;
    const std::string name =
        test ? "test_batch.bin" : "data_batch_" + std::to_string(file + 1) + ".bin";
    SLUICE_RETURN_IF_ERROR(tgz->AddFile("cifar-10-batches-bin/" + name, data));
    (test ? summary->cifar10_test_records : summary->cifar10_train_records) += count;
  }
  SLUICE_RETURN_IF_ERROR(tgz->AddFile(
      "cifar-10-batches-bin/readme.html",
      "<html><body><p>Synthetic CIFAR-10-format sample written by <code>sluice sample-data</code>. "
      "Records: 1 label byte, then 1024 red, 1024 green and 1024 blue bytes (32x32, row-major)."
      "</p></body></html>\n"));
  SLUICE_RETURN_IF_ERROR(tgz->Close());
  summary->cifar10_tgz = path;
  const int64_t records = summary->cifar10_train_records + summary->cifar10_test_records;
  summary->images += records;
  Published(path, records, tgz->bytes(), options, summary);
  return Status::Ok();
}

Status Validate(const SampleDataOptions& o) {
  auto bad = [](const std::string& what) {
    return Status::InvalidArgument("sample-data: " + what);
  };
  if (o.classes < 1 || o.classes > kMaxSampleClasses) {
    return bad("classes must be 1.." + std::to_string(kMaxSampleClasses) + ", got " +
               std::to_string(o.classes));
  }
  if (o.imagenet && (o.imagenet_train_images < 3 || o.imagenet_train_images < o.classes)) {
    return bad("ImageNet train images must be at least 3 and at least the number of classes (" +
               std::to_string(o.classes) + "), got " + std::to_string(o.imagenet_train_images));
  }
  if (o.imagenet_val_images < -1) return bad("validation images must be >= 0");
  if ((o.width == 0) != (o.height == 0) ||
      (o.width != 0 && (o.width < 8 || o.height < 8 || o.width > 10000 || o.height > 10000))) {
    return bad("size must be 8..10000 on each side, got " + std::to_string(o.width) + "x" +
               std::to_string(o.height));
  }
  if (o.bbox_percent < 0 || o.bbox_percent > 100) return bad("bbox percent must be 0..100");
  if (o.flowers_per_class < 1) return bad("flowers per class must be >= 1");
  if (o.cifar_per_batch < 1 || o.cifar_test < 1) return bad("CIFAR record counts must be >= 1");
  if (o.jpeg_quality < 1 || o.jpeg_quality > 100) return bad("JPEG quality must be 1..100");
  if (o.threads < 0) return bad("threads must be >= 0");
  return Status::Ok();
}

}  // namespace

Result<SampleDataSummary> WriteSampleData(const std::string& out_dir,
                                          const SampleDataOptions& options) {
  SLUICE_RETURN_IF_ERROR(Validate(options));
  // A private arena when the caller fixes the thread count; the output is the same either way.
  tbb::task_arena arena(options.threads > 0 ? options.threads : tbb::task_arena::automatic);
  return arena.execute([&]() -> Result<SampleDataSummary> {
    SampleDataSummary summary;
    if (options.imagenet) {
      const std::string dir = out_dir + "/imagenet";
      SLUICE_RETURN_IF_ERROR(formats::CreateDirectories(dir));
      SLUICE_RETURN_IF_ERROR(WriteImageNet(dir, options, &summary));
    }
    if (options.flowers) {
      const std::string dir = out_dir + "/flowers";
      SLUICE_RETURN_IF_ERROR(formats::CreateDirectories(dir));
      SLUICE_RETURN_IF_ERROR(WriteFlowers(dir, options, &summary));
    }
    if (options.cifar10) {
      const std::string dir = out_dir + "/cifar10";
      SLUICE_RETURN_IF_ERROR(formats::CreateDirectories(dir));
      SLUICE_RETURN_IF_ERROR(WriteCifar10(dir, options, &summary));
    }
    return summary;
  });
}

}  // namespace sluice::ingest
