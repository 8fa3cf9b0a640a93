// Internal to cli/: how a command plugs into the CLI11 app.
#ifndef SLUICE_CLI_SRC_COMMAND_H_
#define SLUICE_CLI_SRC_COMMAND_H_

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sluice/formats/record_format.h"
#include "sluice/formats/status.h"

namespace sluice::cli {

// A registered command: its CLI11 subcommand and the function run when it is chosen. The function
// returns the process exit status.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// Each command file defines one of these; they add a subcommand to `root` and bind flags to state
// they own (captured in `run`).
Command AddInspectCommand(CLI::App& root);
Command AddVerifyCommand(CLI::App& root);
Command AddIndexCommand(CLI::App& root);
Command AddSampleDataCommand(CLI::App& root);
Command AddIngestCommand(CLI::App& root);
Command AddPipelineCommand(CLI::App& root);
Command AddResultsCommand(CLI::App& root);
Command AddTrainCommand(CLI::App& root);
Command AddEvalCommand(CLI::App& root);
Command AddLotteryCommand(CLI::App& root);

// --compression auto|none|gzip|zlib, shared by every command that reads TFRecords.
void AddCompressionFlag(CLI::App* app, std::string* value);

// A byte count with an optional binary unit, as every size flag takes it (STYLE.md "CLI": sizes
// accept units): "1G", "512M", "64k", "1GiB", "2.5MB", plain bytes; k/M/G/T are powers of 1024
// with or without "i" and "B". false for anything else or a negative number.
bool ParseByteSize(const std::string& text, uint64_t* bytes);

// "sluice: <message>" on stderr.
void PrintError(const Status& status);
void PrintError(const std::string& message);
// "1.2 MB" style.
std::string HumanBytes(double bytes);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_SRC_COMMAND_H_
