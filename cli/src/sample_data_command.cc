// sluice sample-data OUT [--images N] [--size WxH] [--seed S] [--classes K] ...: writes real-format
// ImageNet, flowers and CIFAR-10 sample archives (sluice/ingest/sample_data.h) for the demo and
// tests.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "sluice/cli/cli.h"
#include "sluice/ingest/sample_data.h"

namespace sluice::cli {
namespace {

struct SampleDataFlags {
  std::string out_dir;
  ingest::SampleDataOptions options;
  std::string size;  // "WxH" or empty
  std::string datasets = "imagenet,flowers,cifar10";
};

// --size: "500x375" (or "500X375") -> width, height.
bool ParseWidthHeight(const std::string& text, int* width, int* height) {
  int w = 0, h = 0;
  char x = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &w, &x, &h, &extra) != 3 || (x != 'x' && x != 'X')) {
    return false;
  }
  *width = w;
  *height = h;
  return true;
}

int RunSampleData(SampleDataFlags flags) {
  ingest::SampleDataOptions& options = flags.options;
  if (!flags.size.empty() && !ParseWidthHeight(flags.size, &options.width, &options.height)) {
    PrintError("--size: expected WxH (like 500x375), got '" + flags.size + "'");
    return kExitUsage;
  }
  options.imagenet = options.flowers = options.cifar10 = false;
  size_t pos = 0;
  while (pos <= flags.datasets.size()) {
    const size_t comma = std::min(flags.datasets.find(',', pos), flags.datasets.size());
    const std::string name = flags.datasets.substr(pos, comma - pos);
    if (name == "imagenet") {
      options.imagenet = true;
    } else if (name == "flowers") {
      options.flowers = true;
    } else if (name == "cifar10") {
      options.cifar10 = true;
    } else {
      PrintError("--datasets: unknown dataset '" + name + "' (imagenet, flowers, cifar10)");
      return kExitUsage;
    }
    pos = comma + 1;
  }
  options.on_file = [](const std::string& path, int64_t images, uint64_t bytes) {
    if (images > 0) {
      std::fprintf(stderr, "sluice sample-data: wrote %s (%lld images, %s)\n", path.c_str(),
                   static_cast<long long>(images), HumanBytes(static_cast<double>(bytes)).c_str());
    } else {
      std::fprintf(stderr, "sluice sample-data: wrote %s (%s)\n", path.c_str(),
                   HumanBytes(static_cast<double>(bytes)).c_str());
    }
  };

  const auto start = std::chrono::steady_clock::now();
  auto summary = ingest::WriteSampleData(flags.out_dir, options);
  if (!summary.ok()) {
    PrintError(summary.status());
    return summary.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The paths on stdout (data), the summary on stderr.
  for (const std::string& file : summary->files) std::printf("%s\n", file.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "sluice sample-data: %zu files, %lld images, %s, %.2f s\n",
               summary->files.size(), static_cast<long long>(summary->images),
               HumanBytes(static_cast<double>(summary->bytes)).c_str(), secs);
  return kExitOk;
}

}  // namespace

Command AddSampleDataCommand(CLI::App& root) {
  auto flags = std::make_shared<SampleDataFlags>();
  CLI::App* app = root.add_subcommand(
      "sample-data",
      "Write synthetic sample inputs in the real archive formats: ImageNet (train tar of "
      "per-synset "
      "tars, shuffled validation tar, synset labels, bounding-box XML tar.gz, metadata), "
      "flower_photos.tgz and cifar-10-binary.tar.gz");
  app->footer(
      "Writes OUT/imagenet/{ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar,\n"
      "imagenet_2012_validation_synset_labels.txt, ILSVRC2012_bbox_train_v2.tar.gz,\n"
      "imagenet_metadata.txt}, OUT/flowers/flower_photos.tgz and "
      "OUT/cifar10/cifar-10-binary.tar.gz.\n"
      "Each class has its own shape, colour and texture on a cluttered background, so the data is\n"
      "learnable. The train tar contains one PNG named .JPEG, one CMYK JPEG and one grayscale "
      "JPEG,\n"
      "and the box file one swapped and one zero-width box, as the real ImageNet files do.\n"
      "The same flags always give byte-identical files, whatever --threads is. Files are written\n"
      "under NAME.tmp and renamed when complete. Paths written go to stdout, progress to stderr.");
  ingest::SampleDataOptions& o = flags->options;
  app->add_option("out", flags->out_dir, "Output directory (created if missing)")->required();
  app->add_option("--images", o.imagenet_train_images,
                  "ImageNet train images in total, spread evenly over the classes")
      ->capture_default_str();
  app->add_option("--val-images", o.imagenet_val_images,
                  "ImageNet validation images (default: --images / 4)");
  app->add_option("--classes", o.classes,
                  "ImageNet synsets (real wnids: Imagenette's ten, then ten Imagewoof breeds)")
      ->check(CLI::Range(1, ingest::kMaxSampleClasses))
      ->capture_default_str();
  app->add_option("--size", flags->size,
                  "Force every ImageNet and flowers image to WxH (default: ImageNet-like sizes, "
                  "mostly 500x375 or 500x333, some portrait)");
  app->add_option("--seed", o.seed, "Seed of every random choice")->capture_default_str();
  app->add_option("--bbox-percent", o.bbox_percent,
                  "Percentage of train images with a bounding-box XML")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app->add_option("--flowers-per-class", o.flowers_per_class,
                  "Images per flowers class (5 classes)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--cifar-per-batch", o.cifar_per_batch,
                  "CIFAR-10 records in each of data_batch_1..5.bin")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--cifar-test", o.cifar_test, "CIFAR-10 records in test_batch.bin")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--quality", o.jpeg_quality, "JPEG quality (4:2:0 chroma subsampling)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app->add_option("--datasets", flags->datasets,
                  "Comma-separated subset of imagenet,flowers,cifar10")
      ->capture_default_str();
  app->add_option("--threads", o.threads, "Rendering threads (0: all cores); output is identical")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return {app, [flags] { return RunSampleData(*flags); }};
}

}  // namespace sluice::cli
