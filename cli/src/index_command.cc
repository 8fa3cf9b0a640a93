// sluice index FILE... [--out DIR]: DALI tfrecord2idx-compatible index files.
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "sluice/cli/cli.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/index.h"

namespace sluice::cli {
namespace {

struct IndexFlags {
  std::vector<std::string> files;
  std::string out_dir;
  std::string compression = "auto";
};

int RunIndex(const IndexFlags& flags) {
  int exit_code = kExitOk;
  if (!flags.out_dir.empty()) {
    Status s = formats::CreateDirectories(flags.out_dir);
    if (!s.ok()) {
      PrintError(s);
      return kExitFailure;
    }
  }
  uint64_t records = 0;
  for (const std::string& file : flags.files) {
    formats::RecordReaderOptions opt;
    // The flag is checked against these names: resolving cannot fail.
    formats::ResolveCompression(flags.compression, file, &opt.compression);
    auto entries = formats::BuildIndex(file, opt);
    if (!entries.ok()) {
      PrintError(entries.status());
      exit_code = kExitFailure;
      continue;
    }
    std::string idx = flags.out_dir.empty()
                          ? file + ".idx"
                          : (std::filesystem::path(flags.out_dir) /
                             (std::filesystem::path(file).filename().string() + ".idx"))
                                .string();
    Status s = formats::WriteIndexFile(idx, *entries);
    if (!s.ok()) {
      PrintError(s);
      exit_code = kExitFailure;
      continue;
    }
    records += entries->size();
    std::printf("%s\t%zu records\n", idx.c_str(), entries->size());
  }
  std::fprintf(stderr, "sluice index: %zu files, %llu records%s\n", flags.files.size(),
               static_cast<unsigned long long>(records),
               exit_code == kExitOk ? "" : " (with errors)");
  return exit_code;
}

}  // namespace

Command AddIndexCommand(CLI::App& root) {
  auto flags = std::make_shared<IndexFlags>();
  CLI::App* app = root.add_subcommand(
      "index", "Write FILE.idx (DALI tfrecord2idx format: '<offset> <size>' per record) for each file");
  app->add_option("files", flags->files, "TFRecord files")->required();
  app->add_option("--out", flags->out_dir, "Write the .idx files into DIR instead of beside each file");
  AddCompressionFlag(app, &flags->compression);
  return {app, [flags] { return RunIndex(*flags); }};
}

}  // namespace sluice::cli
