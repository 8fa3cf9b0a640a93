// sluice ingest imagenet|flowers|cifar10|folder|merge-manifests.
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "command.h"
#include "sluice/cli/cli.h"
#include "sluice/ingest/datasets.h"
#include "sluice/ingest/manifest.h"

namespace sluice::cli {
namespace {

using ingest::CommonOptions;

struct CommonFlags {
  CommonOptions options;
  std::string memory_budget = "1G";
  int task_index = -1;
  int num_tasks = -1;
};

void AddCommonFlags(CLI::App* app, CommonFlags* f) {
  app->add_option("--out", f->options.out_dir, "Output directory for shards and manifest.json")->required();
  app->add_option("--threads", f->options.threads, "Worker threads (default: all cores)");
  app->add_option("--seed", f->options.seed, "Shuffle seed (output is identical for equal seeds)")
      ->default_val(0);
  app->add_option("--num-tasks", f->num_tasks,
                  "Scale-out: this run is one of N tasks, each writing a disjoint set of shards "
                  "(default: SLURM_ARRAY_TASK_COUNT, else 1)");
  app->add_option("--task-index", f->task_index,
                  "Scale-out: which task, 0-based (default: JOB_COMPLETION_INDEX or "
                  "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN)");
  app->add_flag("--resume", f->options.resume,
                "Keep shards an earlier run completed (verified by checksum), redo the rest");
  app->add_option("--max-bad", f->options.max_bad,
                  "Skip up to N undecodable images (listed in rejects.jsonl); more fails the run")
      ->default_val(100);
  app->add_flag("--write-index", f->options.write_index, "Write a DALI .idx beside each shard");
  app->add_option("--memory-budget", f->memory_budget,
                  "Bytes of images buffered per pass over a compressed archive (e.g. 512M, 2G)")
      ->default_val("1G");
  app->add_option("--max-pixels", f->options.prep.max_pixels,
                  "Refuse images whose header claims more pixels (checked before decoding)")
      ->default_val(f->options.prep.max_pixels);
  app->add_flag("--verify-decode", f->options.prep.verify_decode,
                "Fully decode every JPEG as the reference converter does (slower; default checks "
                "headers and the end-of-image marker)");
}

// Resolves scale-out defaults from the environment; returns false (with a message) on a usage error.
bool Finalize(CommonFlags* f) {
  if (!ParseByteSize(f->memory_budget, &f->options.memory_budget)) {
    PrintError("--memory-budget: not a size: " + f->memory_budget);
    return false;
  }
  auto env = [](const char* name) -> std::optional<int> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::atoi(v);
  };
  if (f->task_index < 0) {
    if (auto k8s = env("JOB_COMPLETION_INDEX")) {
      f->task_index = *k8s;
    } else if (auto slurm = env("SLURM_ARRAY_TASK_ID")) {
      f->task_index = *slurm - env("SLURM_ARRAY_TASK_MIN").value_or(0);
    }
  }
  if (f->num_tasks < 0) f->num_tasks = env("SLURM_ARRAY_TASK_COUNT").value_or(f->task_index >= 0 ? -1 : 1);
  if (f->num_tasks < 0) {
    PrintError("a task index was given (or found in the environment) but not --num-tasks");
    return false;
  }
  if (f->task_index < 0) f->task_index = 0;
  if (f->task_index >= f->num_tasks) {
    PrintError("--task-index " + std::to_string(f->task_index) + " is not below --num-tasks " +
               std::to_string(f->num_tasks));
    return false;
  }
  f->options.num_tasks = f->num_tasks;
  f->options.task_index = f->task_index;
  return true;
}

int Report(const Result<ingest::IngestSummary>& r, const std::string& what) {
  if (!r.ok()) {
    PrintError(r.status().WithPrefix("ingest " + what));
    return kExitFailure;
  }
  std::fprintf(stderr, "sluice ingest %s: %s\n", what.c_str(), r->SummaryLine().c_str());
  return kExitOk;
}

struct ImagenetFlags {
  CommonFlags common;
  ingest::ImagenetOptions options;
};
struct FolderFlags {
  CommonFlags common;
  ingest::FolderOptions options;
  std::string split;
  int64_t validation = -1;
};
struct CifarFlags {
  CommonFlags common;
  ingest::CifarOptions options;
  std::string encode = "png";
};

bool ParseRatios(const std::string& text, std::vector<double>* out) {
  out->clear();
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    double v = std::strtod(part.c_str(), &end);
    if (part.empty() || *end != '\0') return false;
    out->push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return !out->empty() && out->size() <= 3;
}

}  // namespace

Command AddIngestCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand(
      "ingest", "Convert datasets (archives or folders) into TFRecord shards of tf.Examples");
  app->require_subcommand(1);
  app->footer(
      "Archives are streamed, never extracted. Output: shards written atomically, DIR/manifest.json "
      "(last), DIR/rejects.jsonl. Same inputs and --seed give byte-identical shards for any "
      "--threads.");

  auto im = std::make_shared<ImagenetFlags>();
  CLI::App* imagenet = app->add_subcommand(
      "imagenet", "ILSVRC2012 train/validation tars -> build_imagenet_data.py-compatible shards");
  imagenet->add_option("--train-archive", im->options.train_archive,
                       "ILSVRC2012_img_train.tar (a tar of per-synset tars) or train/<wnid>/ dir");
  imagenet->add_option("--val-archive", im->options.val_archive,
                       "ILSVRC2012_img_val.tar or a flat validation/ dir");
  imagenet->add_option("--val-labels", im->options.val_labels,
                       "imagenet_2012_validation_synset_labels.txt (line i: synset of val image i)");
  imagenet->add_option("--metadata", im->options.metadata, "imagenet_metadata.txt (wnid<TAB>text)");
  imagenet->add_option("--bboxes", im->options.bboxes,
                       "ILSVRC2012_bbox_train_v2.tar.gz or bounding_boxes.csv");
  imagenet->add_option("--synsets", im->options.synsets,
                       "Synset list defining labels 1..N (default: the sorted train synsets)");
  imagenet->add_option("--train-shards", im->options.train_shards, "Train shards, train-%05d-of-N")
      ->default_val(1024);
  imagenet->add_option("--val-shards", im->options.val_shards, "Validation shards")->default_val(128);
  AddCommonFlags(imagenet, &im->common);

  auto fl = std::make_shared<FolderFlags>();
  CLI::App* flowers = app->add_subcommand(
      "flowers", "flower_photos.tgz (or any <class>/<image> tree) -> slim-style flowers shards");
  flowers->add_option("--archive", fl->options.root, "flower_photos.tgz or the extracted folder")
      ->required();
  flowers->add_option("--validation", fl->validation,
                      "Images held out for validation, like slim (default 350 unless --split)");
  flowers->add_option("--split", fl->split, "Ratios train,validation[,test], e.g. 0.8,0.1,0.1");
  flowers->add_option("--shards", fl->options.shards_per_split, "Shards per split")->default_val(5);
  AddCommonFlags(flowers, &fl->common);

  auto fo = std::make_shared<FolderFlags>();
  CLI::App* folder = app->add_subcommand(
      "folder", "Any <class>/<image> tree (directory or archive), ImageFolder-style");
  folder->add_option("--root", fo->options.root, "Directory or archive")->required();
  folder->add_option("--split", fo->split, "Ratios train[,validation[,test]]")->default_val("1");
  folder->add_option("--shards", fo->options.shards_per_split, "Shards per split")->default_val(8);
  AddCommonFlags(folder, &fo->common);

  auto cf = std::make_shared<CifarFlags>();
  CLI::App* cifar = app->add_subcommand(
      "cifar10", "cifar-10-binary.tar.gz (or cifar-10-python.tar.gz, or a folder) -> shards");
  cifar->add_option("--archive", cf->options.archive, "The archive or extracted folder")->required();
  cifar->add_option("--encode", cf->encode, "png (as TFDS) or raw (32x32x3 HWC bytes)")
      ->check(CLI::IsMember({"png", "raw"}))
      ->default_val("png");
  cifar->add_option("--train-shards", cf->options.train_shards, "Train shards")->default_val(10);
  cifar->add_option("--test-shards", cf->options.test_shards, "Test shards")->default_val(2);
  AddCommonFlags(cifar, &cf->common);

  auto merge_dir = std::make_shared<std::string>();
  CLI::App* merge = app->add_subcommand(
      "merge-manifests", "After all --num-tasks tasks finished: check every shard, write manifest.json");
  merge->add_option("dir", *merge_dir, "The --out directory the tasks shared")->required();

  return {app, [=]() -> int {
            if (imagenet->parsed()) {
              if (!Finalize(&im->common)) return kExitUsage;
              im->options.common = im->common.options;
              return Report(ingest::IngestImagenet(im->options), "imagenet");
            }
            if (flowers->parsed() || folder->parsed()) {
              const bool is_flowers = flowers->parsed();
              FolderFlags& f = is_flowers ? *fl : *fo;
              if (!Finalize(&f.common)) return kExitUsage;
              f.options.common = f.common.options;
              f.options.naming = is_flowers ? ingest::FolderNaming::kFlowers : ingest::FolderNaming::kFolder;
              if (!f.split.empty()) {
                if (!ParseRatios(f.split, &f.options.split_ratios)) {
                  PrintError("--split: expected 1 to 3 comma-separated ratios, got '" + f.split + "'");
                  return kExitUsage;
                }
                f.options.validation_count = -1;
                if (is_flowers && f.validation >= 0) {
                  PrintError("--validation and --split are exclusive");
                  return kExitUsage;
                }
              } else {
                f.options.validation_count = f.validation >= 0 ? f.validation : (is_flowers ? 350 : -1);
              }
              return Report(ingest::IngestFolder(f.options), is_flowers ? "flowers" : "folder");
            }
            if (cifar->parsed()) {
              if (!Finalize(&cf->common)) return kExitUsage;
              cf->options.common = cf->common.options;
              cf->options.encode_png = cf->encode == "png";
              return Report(ingest::IngestCifar10(cf->options), "cifar10");
            }
            auto m = ingest::WriteManifest(*merge_dir);
            if (!m.ok()) {
              PrintError(m.status().WithPrefix("merge-manifests"));
              return kExitFailure;
            }
            std::fprintf(stderr, "sluice ingest merge-manifests: %llu shards, %llu records, %llu bytes, %llu rejected\n",
                         static_cast<unsigned long long>(m->shards),
                         static_cast<unsigned long long>(m->records),
                         static_cast<unsigned long long>(m->bytes),
                         static_cast<unsigned long long>(m->rejects));
            return kExitOk;
          }};
}

}  // namespace sluice::cli
