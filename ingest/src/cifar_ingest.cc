// sluice ingest cifar10: CIFAR-10 binary (or python pickle) batches -> PNG or raw-byte Examples.
#include <algorithm>

#include "run_ingest.h"
#include "sluice/formats/example.h"
#include "sluice/formats/image.h"
#include "sluice/ingest/archive.h"
#include "sluice/ingest/cifar.h"
#include "sluice/ingest/datasets.h"

namespace sluice::ingest {
namespace {

using nlohmann::json;

// The decoded records as a random-access source: each record is a "member" named
// "<batch file>#<index>", so rejects and messages point at the record.
class RecordSource : public InputSource {
 public:
  explicit RecordSource(std::string path) : InputSource(std::move(path)) {}
  void Add(const std::string& file, size_t index, std::string bytes) {
    Member m;
    m.path = file + "#" + std::to_string(index);
    m.size = bytes.size();
    m.ordinal = members_.size();
    members_.push_back(std::move(m));
    data_.push_back(std::move(bytes));
  }
  Status List(std::vector<Member>* members) override {
    *members = members_;
    return Status::Ok();
  }
  bool random_access() const override { return true; }
  Result<std::string> Read(const Member& m) const override { return data_[m.ordinal]; }
  Status Stream(const std::vector<bool>&, const std::function<Status(size_t, std::string&&)>&) override {
    return Status::Unsupported("records are read at random");
  }
  uint64_t input_bytes() const override { return bytes_; }
  void set_input_bytes(uint64_t b) { bytes_ = b; }

 private:
  std::vector<Member> members_;
  std::vector<std::string> data_;
  uint64_t bytes_ = 0;
};

bool IsTrainBatch(const std::string& base) { return base.starts_with("data_batch_"); }
bool IsTestBatch(const std::string& base) { return base.starts_with("test_batch"); }

}  // namespace

Result<IngestSummary> IngestCifar10(const CifarOptions& opt) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<InputSource> source, InputSource::Open(opt.archive));
  std::vector<Member> members;
  SLUICE_RETURN_IF_ERROR(source->List(&members));

  // Batches and the class-name file, binary (*.bin, batches.meta.txt) or python (no extension,
  // batches.meta).
  std::vector<bool> wanted(members.size(), false);
  for (const Member& m : members) {
    const std::string base = Basename(m.path);
    wanted[m.ordinal] = IsTrainBatch(base) || IsTestBatch(base) || base == "batches.meta.txt" ||
                        base == "batches.meta";
  }
  std::map<std::string, std::string> files;  // member path -> bytes
  if (source->random_access()) {
    for (const Member& m : members) {
      if (!wanted[m.ordinal]) continue;
      SLUICE_ASSIGN_OR_RETURN(files[m.path], source->Read(m));
    }
  } else {
    SLUICE_RETURN_IF_ERROR(source->Stream(wanted, [&](size_t ordinal, std::string&& bytes) {
      files[members[ordinal].path] = std::move(bytes);
      return Status::Ok();
    }));
  }

  std::vector<std::string> class_names;
  auto train = std::make_unique<RecordSource>(opt.archive);
  auto test = std::make_unique<RecordSource>(opt.archive);
  size_t batches = 0;
  for (const auto& [path, bytes] : files) {  // std::map: sorted, so data_batch_1..5 in order
    const std::string base = Basename(path);
    const std::string where = opt.archive + ":" + path;
    if (base == "batches.meta.txt") {
      SLUICE_ASSIGN_OR_RETURN(class_names, ParseCifarMeta(bytes, where));
      continue;
    }
    if (base == "batches.meta") {
      SLUICE_ASSIGN_OR_RETURN(class_names, ParseCifarPythonMeta(bytes, where));
      continue;
    }
    std::vector<CifarRecord> records;
    if (base.ends_with(".bin")) {
      SLUICE_ASSIGN_OR_RETURN(records, ParseCifarBinary(bytes, where));
    } else {
      SLUICE_ASSIGN_OR_RETURN(CifarPythonBatch batch, ParseCifarPythonBatch(bytes, where));
      records = std::move(batch.records);
    }
    ++batches;
    RecordSource* dst = IsTrainBatch(base) ? train.get() : test.get();
    for (size_t i = 0; i < records.size(); ++i) {
      std::string rec(kCifarRecordBytes, '\0');
      rec[0] = static_cast<char>(records[i].label);
      auto hwc = CifarToHwc(records[i]);
      std::copy(hwc.begin(), hwc.end(), rec.begin() + 1);
      dst->Add(path, i, std::move(rec));
    }
  }
  if (batches == 0) {
    return Status::InvalidArgument(opt.archive + ": no CIFAR-10 batches (data_batch_N[.bin], test_batch[.bin])");
  }
  if (class_names.empty()) {
    return Status::InvalidArgument(opt.archive + ": no batches.meta.txt / batches.meta with the class names");
  }

  std::vector<std::vector<Member>> member_lists(2);
  std::vector<SplitSpec> specs;
  const bool png = opt.encode_png;
  for (int k = 0; k < 2; ++k) {
    RecordSource* src = k == 0 ? train.get() : test.get();
    SLUICE_RETURN_IF_ERROR(src->List(&member_lists[k]));
    if (member_lists[k].empty()) continue;
    SplitSpec spec;
    spec.name = k == 0 ? "train" : "test";
    spec.source = src;
    spec.members = &member_lists[k];
    spec.num_shards = k == 0 ? opt.train_shards : opt.test_shards;
    spec.file_pattern = spec.name + "-%05d-of-%05d";
    for (const Member& m : member_lists[k]) {
      std::string bytes = *src->Read(m);
      spec.samples.push_back({m.ordinal, static_cast<uint8_t>(bytes[0]), 0});
    }
    spec.build = [&class_names, png](const Sample& s, std::string&& rec) -> Result<BuiltRecord> {
      std::string pixels = rec.substr(1);  // (32, 32, 3) RGB
      std::string encoded;
      if (png) {
        formats::Image img;
        img.width = kCifarWidth;
        img.height = kCifarHeight;
        img.channels = kCifarChannels;
        img.pixels.assign(pixels.begin(), pixels.end());
        SLUICE_ASSIGN_OR_RETURN(encoded, formats::EncodePng(img));
      } else {
        encoded = std::move(pixels);
      }
      formats::Example ex;
      ex.SetBytes("image/encoded", encoded)
          .SetBytes("image/format", png ? "PNG" : "RAW")
          .SetInt64("image/class/label", s.label)
          .SetBytes("image/class/text", class_names[s.label])
          .SetInt64("image/height", kCifarHeight)
          .SetInt64("image/width", kCifarWidth)
          .SetInt64("image/channels", kCifarChannels);
      return BuiltRecord{ex.Serialize(), false};
    };
    specs.push_back(std::move(spec));
  }
  json options = {{"seed", opt.common.seed},
                  {"encode", png ? "png" : "raw"},
                  {"train_shards", opt.train_shards},
                  {"test_shards", opt.test_shards}};
  SLUICE_ASSIGN_OR_RETURN(IngestSummary summary,
                          RunIngest("cifar10", json::array({InputJson(opt.archive)}), options,
                                    specs, opt.common));
  return summary;
}

}  // namespace sluice::ingest
