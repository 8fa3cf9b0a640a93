// sluice verify FILE... [--decode]: check every CRC, parse every Example, optionally decode every
// image. Prints per-file counts on stdout and every problem (file, offset, reason) on stderr; exit 1 if
// anything is wrong.
#include <chrono>
#include <cstdio>

#include "command.h"
#include "sluice/cli/cli.h"
#include "sluice/formats/example.h"
#include "sluice/formats/image.h"
#include "sluice/formats/record_reader.h"

namespace sluice::cli {
namespace {

struct VerifyFlags {
  std::vector<std::string> files;
  bool decode = false;
  bool strict_decode = false;
  std::vector<std::string> image_keys = {"image/encoded", "image"};
  std::string compression = "auto";
  int64_t max_pixels = formats::kDefaultMaxPixels;
};

struct FileReport {
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t decoded = 0;
  uint64_t problems = 0;
  // Records read whole whose Example or image is bad. A framing error (CRC, truncation) is a problem
  // too but no record was read for it, so `records - bad_records` is the count of good records.
  uint64_t bad_records = 0;
};

// Decodes the record's image (the first of flags.image_keys present). Raw pixel records
// (image/format "RAW", as CIFAR shards may hold) are checked for size instead.
Status CheckImage(const formats::Example& ex, const VerifyFlags& flags) {
  for (const std::string& key : flags.image_keys) {
    if (!ex.Has(key)) continue;
    SLUICE_ASSIGN_OR_RETURN(std::string_view bytes, ex.GetBytes(key));
    auto format = ex.GetBytes("image/format");
    if (format.ok() && *format == "RAW") {
      auto h = ex.GetInt64("image/height"), w = ex.GetInt64("image/width");
      auto c = ex.GetInt64("image/channels");
      if (!h.ok() || !w.ok() || !c.ok()) {
        return Status::InvalidArgument("RAW image without image/height, image/width, image/channels");
      }
      if (static_cast<int64_t>(bytes.size()) != *h * *w * *c) {
        return Status::DataLoss("RAW image of " + std::to_string(bytes.size()) + " bytes, expected " +
                                std::to_string(*h * *w * *c));
      }
      return Status::Ok();
    }
    formats::DecodeOptions opt;
    opt.strict = flags.strict_decode;
    opt.max_pixels = flags.max_pixels;
    auto image = formats::DecodeImage(bytes, opt);
    if (!image.ok()) return image.status().WithPrefix("feature '" + key + "'");
    auto h = ex.GetInt64("image/height"), w = ex.GetInt64("image/width");
    if (h.ok() && w.ok() && (*h != image->height || *w != image->width)) {
      return Status::DataLoss("image is " + std::to_string(image->width) + "x" +
                              std::to_string(image->height) + " but image/width x image/height say " +
                              std::to_string(*w) + "x" + std::to_string(*h));
    }
    return Status::Ok();
  }
  std::string keys;
  for (const auto& k : flags.image_keys) keys += (keys.empty() ? "" : ", ") + k;
  return Status::NotFound("no image feature (looked for " + keys + ")");
}

FileReport VerifyFile(const std::string& file, const VerifyFlags& flags) {
  FileReport report;
  auto problem = [&](uint64_t offset, const std::string& reason) {
    ++report.problems;
    std::fprintf(stderr, "%s: offset %llu: %s\n", file.c_str(), static_cast<unsigned long long>(offset),
                 reason.c_str());
  };
  formats::RecordReaderOptions opt;
  // The flag is checked against these names: resolving cannot fail.
  formats::ResolveCompression(flags.compression, file, &opt.compression);
  auto reader = formats::RecordReader::Open(file, opt);
  if (!reader.ok()) {
    ++report.problems;
    PrintError(reader.status());
    return report;
  }
  std::string_view record;
  uint64_t offset = 0;
  for (;;) {
    Status s = (*reader)->ReadRecord(&record, &offset);
    if (s.IsEndOfData()) break;
    if (!s.ok()) {  // framing is lost: nothing after this point can be trusted
      problem((*reader)->offset(), s.message());
      break;
    }
    ++report.records;
    report.bytes += record.size();
    auto ex = formats::Example::Parse(record);
    if (!ex.ok()) {
      ++report.bad_records;
      problem(offset, "record " + std::to_string(report.records - 1) + ": " + ex.status().message());
      continue;
    }
    if (flags.decode) {
      Status d = CheckImage(*ex, flags);
      if (d.ok()) {
        ++report.decoded;
      } else {
        ++report.bad_records;
        problem(offset, "record " + std::to_string(report.records - 1) + ": " + d.message());
      }
    }
  }
  return report;
}

int RunVerify(const VerifyFlags& flags) {
  auto start = std::chrono::steady_clock::now();
  FileReport total;
  for (const std::string& file : flags.files) {
    FileReport r = VerifyFile(file, flags);
    std::printf("%s\t%llu records\t%llu good\t%llu problems%s\n", file.c_str(),
                static_cast<unsigned long long>(r.records),
                static_cast<unsigned long long>(r.records - r.bad_records),
                static_cast<unsigned long long>(r.problems),
                flags.decode ? ("\t" + std::to_string(r.decoded) + " images decoded").c_str() : "");
    total.records += r.records;
    total.bytes += r.bytes;
    total.decoded += r.decoded;
    total.problems += r.problems;
  }
  std::fflush(stdout);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "sluice verify: %zu files, %llu records, %s, %llu problems, %.2f s\n",
               flags.files.size(), static_cast<unsigned long long>(total.records),
               HumanBytes(static_cast<double>(total.bytes)).c_str(),
               static_cast<unsigned long long>(total.problems), secs);
  return total.problems == 0 ? kExitOk : kExitFailure;
}

}  // namespace

Command AddVerifyCommand(CLI::App& root) {
  auto flags = std::make_shared<VerifyFlags>();
  CLI::App* app = root.add_subcommand(
      "verify", "Check every record's CRCs and Example; with --decode also decode every image");
  app->add_option("files", flags->files, "TFRecord files")->required();
  app->add_flag("--decode", flags->decode,
                "Decode every image (JPEG/PNG; RAW size-checked) and compare with image/height, "
                "image/width when present");
  app->add_flag("--strict-decode", flags->strict_decode,
                "Treat libjpeg warnings about corrupt data as errors (TensorFlow tolerates them)");
  app->add_option("--image-key", flags->image_keys,
                  "Feature(s) holding the encoded image, first present wins")
      ->default_str("image/encoded image");
  app->add_option("--max-pixels", flags->max_pixels,
                  "Refuse images whose header claims more pixels than this, before decoding");
  AddCompressionFlag(app, &flags->compression);
  return {app, [flags] { return RunVerify(*flags); }};
}

}  // namespace sluice::cli
