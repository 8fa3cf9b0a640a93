// sluice inspect FILE... [--limit N] [--json]: one line per record, then a summary.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <string>

#include "command.h"
#include "sluice/cli/cli.h"
#include "sluice/formats/example.h"
#include "sluice/formats/record_reader.h"
#include "sluice/formats/sha256.h"

namespace sluice::cli {
namespace {

using formats::Example;
using formats::Feature;
using formats::FeatureKind;

constexpr size_t kMaxTextBytes = 64;

bool IsShortPrintable(std::string_view s) {
  if (s.size() > kMaxTextBytes) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string FormatFloat(float f) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(f));
  return buf;
}

// Human form: key=kind[n]{v1,v2,...}; bytes as "text" or <N bytes sha256=...>.
std::string HumanFeature(const std::string& key, const Feature& f) {
  std::string out = key + "=" + std::string(formats::FeatureKindName(f.kind)) + "[" +
                    std::to_string(f.size()) + "]{";
  for (size_t i = 0; i < f.size(); ++i) {
    if (i) out += ",";
    switch (f.kind) {
      case FeatureKind::kBytes:
        out += IsShortPrintable(f.bytes[i]) ? Quote(f.bytes[i])
                                            : "<" + std::to_string(f.bytes[i].size()) +
                                                  " bytes sha256=" +
                                                  formats::Sha256Hex(f.bytes[i]) + ">";
        break;
      case FeatureKind::kFloat: out += FormatFloat(f.floats[i]); break;
      case FeatureKind::kInt64: out += std::to_string(f.int64s[i]); break;
      case FeatureKind::kNone: break;
    }
  }
  return out + "}";
}

nlohmann::json JsonFeature(const Feature& f) {
  nlohmann::json values = nlohmann::json::array();
  for (size_t i = 0; i < f.size(); ++i) {
    switch (f.kind) {
      case FeatureKind::kBytes:
        if (IsShortPrintable(f.bytes[i])) {
          values.push_back({{"text", f.bytes[i]}});
        } else {
          values.push_back(
              {{"length", f.bytes[i].size()}, {"sha256", formats::Sha256Hex(f.bytes[i])}});
        }
        break;
      case FeatureKind::kFloat: values.push_back(f.floats[i]); break;
      case FeatureKind::kInt64: values.push_back(f.int64s[i]); break;
      case FeatureKind::kNone: break;
    }
  }
  return {{"kind", formats::FeatureKindName(f.kind)}, {"values", std::move(values)}};
}

struct InspectFlags {
  std::vector<std::string> files;
  int64_t limit = -1;
  bool json = false;
  std::string compression = "auto";
};

int RunInspect(const InspectFlags& flags) {
  int exit_code = kExitOk;
  uint64_t total_records = 0;
  std::map<std::string, std::map<std::string, uint64_t>> key_kinds;  // key -> kind -> count
  for (const std::string& file : flags.files) {
    formats::RecordReaderOptions opt;
    // The flag is checked against these names: resolving cannot fail.
    formats::ResolveCompression(flags.compression, file, &opt.compression);
    auto reader = formats::RecordReader::Open(file, opt);
    if (!reader.ok()) {
      PrintError(reader.status());
      exit_code = kExitFailure;
      continue;
    }
    std::string_view record;
    uint64_t offset = 0;
    for (int64_t index = 0; flags.limit < 0 || index < flags.limit; ++index) {
      Status s = (*reader)->ReadRecord(&record, &offset);
      if (s.IsEndOfData()) break;
      if (!s.ok()) {
        PrintError(s);
        exit_code = kExitFailure;
        break;
      }
      ++total_records;
      auto ex = Example::Parse(record);
      if (flags.json) {
        nlohmann::json line = {{"file", file}, {"index", index}, {"offset", offset},
                               {"size", record.size()}};
        if (ex.ok()) {
          nlohmann::json features = nlohmann::json::object();
          for (const auto& [key, f] : ex->features()) features[key] = JsonFeature(f);
          line["features"] = std::move(features);
        } else {
          line["error"] = ex.status().message();
        }
        std::printf("%s\n", line.dump().c_str());
      } else {
        std::string line = file + " #" + std::to_string(index) + " @" + std::to_string(offset);
        if (ex.ok()) {
          for (const auto& [key, f] : ex->features()) line += " " + HumanFeature(key, f);
        } else {
          line += " <not a tf.Example: " + std::to_string(record.size()) +
                  " bytes sha256=" + formats::Sha256Hex(record) + ">";
        }
        std::printf("%s\n", line.c_str());
      }
      if (ex.ok()) {
        for (const auto& [key, f] : ex->features()) {
          ++key_kinds[key][std::string(formats::FeatureKindName(f.kind))];
        }
      }
    }
  }
  if (!flags.json) {
    std::printf("-- %llu records in %zu files; feature keys:", static_cast<unsigned long long>(total_records),
                flags.files.size());
    for (const auto& [key, kinds] : key_kinds) {
      for (const auto& [kind, n] : kinds) {
        std::printf(" %s(%s)x%llu", key.c_str(), kind.c_str(), static_cast<unsigned long long>(n));
      }
    }
    std::printf("\n");
  }
  std::fflush(stdout);
  return exit_code;
}

}  // namespace

Command AddInspectCommand(CLI::App& root) {
  auto flags = std::make_shared<InspectFlags>();
  CLI::App* app = root.add_subcommand(
      "inspect", "Print every record of TFRecord files: file, index, byte offset and each feature");
  app->add_option("files", flags->files, "TFRecord files")->required();
  app->add_option("--limit", flags->limit, "Print at most N records per file (default: all)");
  app->add_flag("--json", flags->json,
                "One JSON object per record (JSON Lines); bytes as {text} when short and printable, "
                "else {length, sha256}");
  AddCompressionFlag(app, &flags->compression);
  return {app, [flags] { return RunInspect(*flags); }};
}

}  // namespace sluice::cli
