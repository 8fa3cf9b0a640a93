#include "run_ingest.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "run_info.h"
#include "sluice/formats/file_util.h"
#include "sluice/ingest/manifest.h"

namespace sluice::ingest {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void SetEncodedImage(formats::Example* example, std::string&& bytes) {
  formats::Feature encoded;
  encoded.kind = formats::FeatureKind::kBytes;
  encoded.bytes.push_back(std::move(bytes));
  example->SetFeature("image/encoded", std::move(encoded));
}

json InputJson(const std::string& path) {
  std::error_code ec;
  uint64_t bytes = 0;
  if (fs::is_directory(path, ec)) {
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_regular_file(ec)) bytes += it->file_size(ec);
    }
  } else {
    bytes = fs::file_size(path, ec);
  }
  return {{"path", path}, {"bytes", bytes}};
}

std::string IngestSummary::SummaryLine() const {
  std::string s;
  uint64_t reenc = 0, rej = 0, bytes = 0, resumed = 0;
  for (const auto& [name, sp] : splits) {
    s += (s.empty() ? "" : ", ") + name + " " + std::to_string(sp.images);
    reenc += sp.reencoded;
    rej += sp.rejected;
    bytes += sp.bytes;
    resumed += sp.resumed;
  }
  char tail[256];
  std::snprintf(tail, sizeof(tail),
                " images; %llu re-encoded, %llu skipped, %llu ignored; %.1f MB written from %.1f MB "
                "in %.2f s (%.0f MB/s)%s",
                static_cast<unsigned long long>(reenc), static_cast<unsigned long long>(rej),
                static_cast<unsigned long long>(ignored_members), bytes / 1e6, input_bytes / 1e6,
                seconds, seconds > 0 ? input_bytes / 1e6 / seconds : 0.0,
                resumed ? (", " + std::to_string(resumed) + " shards resumed").c_str() : "");
  return s + tail;
}

namespace {

// A split that would be written from no images (an archive holding only directories or non-image
// files) is an error naming its input, like a truncated archive: the run's summary would otherwise say
// "0 images" and exit 0, and the mistake would surface much later as an empty training set. Checked
// once here, before anything is written, for every front-end.
Status CheckEveryInputYieldsImages(const json& inputs, const std::vector<SplitSpec>& splits) {
  for (const SplitSpec& s : splits) {
    if (s.samples.empty()) {
      return Status::InvalidArgument(s.source->path() + ": holds no images (the " + s.name +
                                     " split would be empty)");
    }
  }
  if (splits.empty()) {  // the front-end dropped every split as empty
    std::string paths;
    for (const json& input : inputs) paths += (paths.empty() ? "" : ", ") + input.value("path", "");
    return Status::InvalidArgument(paths + ": holds no images");
  }
  return Status::Ok();
}

}  // namespace

Result<IngestSummary> RunIngest(const std::string& dataset, const json& inputs,
                                const json& options_json, std::vector<SplitSpec>& splits,
                                const CommonOptions& common) {
  auto start = std::chrono::steady_clock::now();
  SLUICE_RETURN_IF_ERROR(CheckEveryInputYieldsImages(inputs, splits));
  SLUICE_RETURN_IF_ERROR(formats::CreateDirectories(common.out_dir));
  SLUICE_RETURN_IF_ERROR(RemoveManifest(common.out_dir));
  RunInfo run;
  run.tool = "sluice " SLUICE_VERSION;
  run.dataset = dataset;
  run.inputs = inputs;
  run.options = options_json;
  for (const SplitSpec& s : splits) {
    std::vector<std::string>& files = run.splits[s.name];
    for (int i = 0; i < s.num_shards; ++i) files.push_back(ShardFileName(s.file_pattern, i, s.num_shards));
  }
  SLUICE_RETURN_IF_ERROR(run.Write(common.out_dir));

  WriterOptions w = common;
  w.options_fingerprint = json({{"tool", "sluice " SLUICE_VERSION}, {"dataset", dataset},
                                {"options", options_json}})
                              .dump();
  std::map<std::string, std::vector<ShardResult>> results;
  SLUICE_RETURN_IF_ERROR(WriteSplits(splits, w, &results));

  IngestSummary summary;
  for (const SplitSpec& s : splits) {
    SplitSummary& out = summary.splits[s.name];
    for (const ShardResult& r : results[s.name]) {
      out.images += r.records;
      ++out.shards;
      out.resumed += r.resumed ? 1 : 0;
      out.rejected += r.rejects.size();
      out.reencoded += r.reencoded;
      out.bytes += r.bytes;
      out.input_bytes += r.input_bytes;
      summary.input_bytes += r.input_bytes;
    }
  }
  if (common.num_tasks == 1) {
    SLUICE_RETURN_IF_ERROR(WriteManifest(common.out_dir).status());
    summary.manifest_written = true;
  } else {
    std::fprintf(stderr,
                 "ingest: task %d of %d done; when every task has finished run "
                 "'sluice ingest merge-manifests %s'\n",
                 common.task_index, common.num_tasks, common.out_dir.c_str());
  }
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace sluice::ingest
