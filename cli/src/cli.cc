#include "sluice/cli/cli.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "command.h"

namespace sluice::cli {

void AddCompressionFlag(CLI::App* app, std::string* value) {
  app->add_option("--compression", *value,
                  "Whole-file compression of the TFRecords: auto (by extension: .gz gzip, .zz zlib), "
                  "none, gzip or zlib")
      ->check(CLI::IsMember({"auto", "none", "gzip", "zlib"}))
      ->default_val("auto");
}

bool ParseByteSize(const std::string& text, uint64_t* bytes) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || v < 0) return false;
  std::string unit(end);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.ends_with("i")) unit.pop_back();
  double mult = 1;
  if (unit == "k" || unit == "K") {
    mult = 1024.0;
  } else if (unit == "m" || unit == "M") {
    mult = 1024.0 * 1024;
  } else if (unit == "g" || unit == "G") {
    mult = 1024.0 * 1024 * 1024;
  } else if (unit == "t" || unit == "T") {
    mult = 1024.0 * 1024 * 1024 * 1024;
  } else if (!unit.empty()) {
    return false;
  }
  *bytes = static_cast<uint64_t>(v * mult);
  return true;
}

void PrintError(const Status& status) { PrintError(status.message()); }
void PrintError(const std::string& message) { std::fprintf(stderr, "sluice: %s\n", message.c_str()); }

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

int RunCli(int argc, char** argv) {
  CLI::App app{
      "sluice: convert datasets to TFRecord shards, feed and profile input pipelines, train CNNs.\n"};
  app.name("sluice");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sluice ") + SLUICE_VERSION);
  app.footer(
      "Run 'sluice <command> --help' for a command's flags.\n\n"
      "EXIT STATUS: 0 success; 1 the run failed (fatal error, problems found, or more bad samples\n"
      "than --max-bad allows); 2 usage error.");

  std::vector<Command> commands;
  commands.push_back(AddInspectCommand(app));
  commands.push_back(AddVerifyCommand(app));
  commands.push_back(AddIndexCommand(app));
  commands.push_back(AddSampleDataCommand(app));
  commands.push_back(AddIngestCommand(app));
  commands.push_back(AddPipelineCommand(app));
  commands.push_back(AddTrainCommand(app));
  commands.push_back(AddEvalCommand(app));
  commands.push_back(AddLotteryCommand(app));
  commands.push_back(AddResultsCommand(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  } catch (const CLI::CallForVersion& e) {
    app.exit(e);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  for (const Command& c : commands) {
    if (c.app->parsed()) return c.run();
  }
  return kExitUsage;
}

}  // namespace sluice::cli
