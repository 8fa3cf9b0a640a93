// sluice pipeline bench: runs the input pipeline alone over shards, with an optional simulated
// training step, and reports throughput and the stall profile.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "sluice/cli/cli.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/sha256.h"
#include "sluice/pipeline/clock.h"
#include "sluice/pipeline/pipeline.h"

namespace sluice::cli {
namespace {

struct BenchFlags {
  std::vector<std::string> data;
  std::string preset = "resnet-train";
  int batch = 256;
  int threads = 0;
  int64_t steps = 0;
  int epochs = 0;
  uint64_t seed = 0;
  double consumer_ms = 0;
  bool basic = false;
  bool sloppy = false;
  bool digest = false;
  std::string json;
  std::string trace;
  std::string layout = "nhwc";
  std::string dtype = "float32";
  int prefetch = 2;
  int cycle_length = 4;
  int shuffle_buffer = 256;
  bool no_shuffle = false;
  bool global_shuffle = false;
  int num_workers = 1;
  int worker_index = 0;
  std::string on_corrupt = "fail";
  int64_t max_bad = 100;
  bool quiet = false;
};

using pipeline::Now;

std::string BatchDigest(const pipeline::Batch& b) {
  formats::Sha256 h;
  if (b.output == pipeline::OutputType::kFloat32) {
    h.Update({reinterpret_cast<const char*>(b.f32.data()), b.f32.size() * sizeof(float)});
  } else {
    h.Update({reinterpret_cast<const char*>(b.u8.data()), b.u8.size()});
  }
  h.Update({reinterpret_cast<const char*>(b.labels.data()), b.labels.size() * sizeof(int64_t)});
  return h.HexDigest();
}

int RunBench(const BenchFlags& f) {
  pipeline::PipelineConfig c;
  c.source.files = f.data;
  auto preset = pipeline::ParsePreset(f.preset);
  if (!preset.ok()) {
    PrintError(preset.status());
    return kExitUsage;
  }
  c.preset = *preset;
  c.batch_size = f.batch;
  c.threads = f.threads;
  c.source.seed = f.seed;
  c.epochs = f.steps > 0 && f.epochs == 0 ? 0 : (f.epochs > 0 ? f.epochs : 1);
  c.layout = f.layout == "nchw" ? pipeline::Layout::kNchw : pipeline::Layout::kNhwc;
  c.output = f.dtype == "uint8" ? pipeline::OutputType::kUint8 : pipeline::OutputType::kFloat32;
  c.prefetch = f.prefetch;
  c.source.cycle_length = f.cycle_length;
  c.source.shuffle_buffer = f.shuffle_buffer;
  if (f.no_shuffle) c.source.shuffle = false;
  c.source.global_shuffle = f.global_shuffle;
  c.source.num_workers = f.num_workers;
  c.source.worker_index = f.worker_index;
  c.sloppy = f.sloppy;
  c.basic = f.basic;
  c.source.on_corrupt =
      f.on_corrupt == "skip-shard" ? pipeline::OnCorrupt::kSkipShard : pipeline::OnCorrupt::kFail;
  c.max_bad_images = f.max_bad;
  c.trace = !f.trace.empty();

  auto created = pipeline::Pipeline::Create(c);
  if (!created.ok()) {
    PrintError(created.status());
    return kExitFailure;
  }
  pipeline::Pipeline& p = **created;
  std::fprintf(stderr, "sluice pipeline bench: %s, batch %d, %d threads%s%s, %s\n",
               f.preset.c_str(), f.batch, p.Stats().threads,
               f.basic ? ", basic (1 thread, no prefetch, full decode)" : "",
               f.sloppy ? ", sloppy (batches in completion order: not deterministic)" : "",
               f.steps > 0 ? (std::to_string(f.steps) + " steps").c_str()
                           : (std::to_string(c.epochs) + " epoch(s)").c_str());
  pipeline::Batch batch;
  formats::Sha256 run_digest;
  const double start = Now();
  double last_report = start;
  int64_t steps = 0;
  Status status;
  for (;;) {
    if (f.steps > 0 && steps >= f.steps) break;
    status = p.Next(&batch);
    if (!status.ok()) break;
    ++steps;
    if (f.digest) {
      const std::string d = BatchDigest(batch);
      std::printf("batch %lld epoch %u size %d sha256 %s\n", static_cast<long long>(batch.index),
                  batch.epoch, batch.size, d.c_str());
      run_digest.Update(d);
    }
    if (f.consumer_ms > 0) {
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(f.consumer_ms));
    }
    const double now = Now();
    if (!f.quiet && now - last_report > 5.0) {
      const auto s = p.Stats();
      std::fprintf(stderr, "  %lld batches, %.1f images/s, input wait %.1f%%\n",
                   static_cast<long long>(steps), s.images_per_s,
                   100.0 * s.consumer.input_wait_fraction);
      last_report = now;
    }
  }
  p.Stop();
  if (!status.ok() && status.code() != StatusCode::kEndOfData) {
    PrintError(status);
    const auto s = p.Stats();
    std::fprintf(stderr, "%s", pipeline::FormatStatsTable(s).c_str());
    return kExitFailure;
  }
  const pipeline::PipelineStats s = p.Stats();
  std::fprintf(stderr, "%s", pipeline::FormatStatsTable(s).c_str());
  if (f.digest) std::printf("run sha256 %s\n", run_digest.HexDigest().c_str());
  std::printf("%s: %llu images in %.2f s = %.1f images/s; input wait %.1f%% (%s)\n",
              f.preset.c_str(), static_cast<unsigned long long>(s.consumer.images), s.wall_s,
              s.images_per_s, 100.0 * s.consumer.input_wait_fraction,
              std::string(pipeline::InputBoundName(
                              pipeline::ClassifyInputWait(s.consumer.input_wait_fraction)))
                  .c_str());
  if (!f.json.empty()) {
    Status w = formats::WriteFileAtomically(f.json, pipeline::StatsToJson(s));
    if (!w.ok()) {
      PrintError(w);
      return kExitFailure;
    }
  }
  if (!f.trace.empty()) {
    Status w = p.WriteChromeTrace(f.trace);
    if (!w.ok()) {
      PrintError(w);
      return kExitFailure;
    }
  }
  return kExitOk;
}

}  // namespace

Command AddPipelineCommand(CLI::App& root) {
  CLI::App* group = root.add_subcommand("pipeline", "Run and profile the input pipeline");
  group->require_subcommand(1);
  auto f = std::make_shared<BenchFlags>();
  CLI::App* app = group->add_subcommand(
      "bench",
      "Read, decode, augment and batch shards as training would, and report images/s, the "
      "per-stage profile and the input-wait verdict");
  app->add_option("--data", f->data, "Shard files or globs, e.g. 'DIR/train-*'")->required();
  app->add_option("--preset", f->preset,
                  "resnet-train|resnet-eval|vgg-train|vgg-eval|cifar-train|cifar-eval")
      ->capture_default_str();
  app->add_option("--batch", f->batch, "Images per batch")->capture_default_str();
  app->add_option("--threads", f->threads, "Worker threads (0 = all cores)")->capture_default_str();
  app->add_option("--steps", f->steps, "Stop after N batches (repeats epochs as needed)");
  app->add_option("--epochs", f->epochs, "Passes over the data (default 1)");
  app->add_option("--seed", f->seed, "Seed of the shuffle and the augmentation")
      ->capture_default_str();
  app->add_option("--consumer-ms", f->consumer_ms,
                  "Simulate a training step of X ms per batch (time between Next() calls)");
  app->add_flag("--basic", f->basic,
                "Naive configuration: 1 thread, no prefetch, full-image decode");
  app->add_flag("--sloppy", f->sloppy,
                "Batch samples in completion order (faster under skew; batches not deterministic)");
  app->add_flag("--digest", f->digest,
                "Print a SHA-256 of every batch's bytes (determinism checks)");
  app->add_option("--json", f->json, "Write every figure of the profile as JSON to FILE");
  app->add_option("--trace", f->trace, "Write a Chrome trace-event JSON (Perfetto) to FILE");
  app->add_option("--layout", f->layout, "nhwc|nchw")
      ->check(CLI::IsMember({"nhwc", "nchw"}))
      ->capture_default_str();
  app->add_option("--dtype", f->dtype, "float32 (normalized) or uint8 (before normalization)")
      ->check(CLI::IsMember({"float32", "uint8"}))
      ->capture_default_str();
  app->add_option("--prefetch", f->prefetch, "Finished batches kept ready")->capture_default_str();
  app->add_option("--cycle-length", f->cycle_length, "Shards read in an interleave")
      ->capture_default_str();
  app->add_option("--shuffle-buffer", f->shuffle_buffer, "Records in the shuffle buffer")
      ->capture_default_str();
  app->add_flag("--no-shuffle", f->no_shuffle, "Plan order = sorted files, records in file order");
  app->add_flag("--global-shuffle", f->global_shuffle,
                "One uniform permutation of all records per epoch (random access via .idx or a "
                "header scan)");
  app->add_option("--num-workers", f->num_workers, "Data-parallel ranks sharing the epoch")
      ->capture_default_str();
  app->add_option("--worker-index", f->worker_index, "This rank")->capture_default_str();
  app->add_option("--on-corrupt", f->on_corrupt,
                  "A corrupt record: fail, or skip-shard (drop the rest of that shard)")
      ->check(CLI::IsMember({"fail", "skip-shard"}))
      ->capture_default_str();
  app->add_option("--max-bad", f->max_bad, "Undecodable images skipped before failing")
      ->capture_default_str();
  app->add_flag("--quiet", f->quiet, "No progress lines");
  return {app, [f] { return RunBench(*f); }};
}

}  // namespace sluice::cli
