#include "run_info.h"

#include <filesystem>

#include "sluice/formats/file_util.h"

namespace sluice::ingest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string RunInfoPath(const std::string& out_dir) {
  return (fs::path(out_dir) / ".sluice" / "run.json").string();
}

}  // namespace

Status RunInfo::Write(const std::string& out_dir) const {
  SLUICE_RETURN_IF_ERROR(formats::CreateDirectories((fs::path(out_dir) / ".sluice").string()));
  const json j = {{"tool", tool},
                  {"dataset", dataset},
                  {"inputs", inputs},
                  {"options", options},
                  {"splits", splits}};
  return formats::WriteFileAtomically(RunInfoPath(out_dir), j.dump(2) + "\n");
}

Result<RunInfo> RunInfo::Read(const std::string& out_dir) {
  const std::string path = RunInfoPath(out_dir);
  SLUICE_ASSIGN_OR_RETURN(std::string text, formats::ReadFile(path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("splits")) {
    return Status::DataLoss(path + ": not a sluice run description");
  }
  // A field of the wrong type makes nlohmann throw type_error; it ends here as DataLoss.
  try {
    RunInfo run;
    run.tool = j.value("tool", "");
    run.dataset = j.value("dataset", "");
    run.inputs = j.value("inputs", json());
    run.options = j.value("options", json());
    run.splits = j.at("splits").get<std::map<std::string, std::vector<std::string>>>();
    return run;
  } catch (const json::exception& e) {
    return Status::DataLoss(path + ": not a sluice run description (" + e.what() + ")");
  }
}

}  // namespace sluice::ingest
