// Test tool for example_interop.py: writes tf.Examples described in JSON to a TFRecord file with our
// Example encoder and RecordWriter, so an independent implementation can read them back.
//   example_tool write SPEC.json OUT [none|gzip|zlib]
// SPEC is a JSON array of objects {key: {"kind": "bytes"|"float"|"int64"|"none", "values": [...]}};
// bytes values are hex strings.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

#include "sluice/formats/example.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/record_writer.h"

using namespace sluice::formats;

static std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

int main(int argc, char** argv) {
  if (argc < 4 || std::string(argv[1]) != "write") {
    std::fprintf(stderr, "usage: example_tool write SPEC.json OUT [none|gzip|zlib]\n");
    return 2;
  }
  auto spec_text = ReadFile(argv[2]);
  if (!spec_text.ok()) {
    std::fprintf(stderr, "%s\n", spec_text.status().ToString().c_str());
    return 1;
  }
  RecordWriterOptions opt;
  if (argc > 4 && !ParseCompression(argv[4], &opt.compression)) return 2;
  auto writer = RecordWriter::Create(argv[3], opt);
  if (!writer.ok()) return 1;
  for (const auto& item : nlohmann::json::parse(*spec_text)) {
    Example ex;
    for (const auto& [key, f] : item.items()) {
      const std::string kind = f.at("kind");
      if (kind == "bytes") {
        std::vector<std::string> v;
        for (const auto& h : f.at("values")) v.push_back(FromHex(h));
        ex.SetBytesList(key, v);
      } else if (kind == "float") {
        ex.SetFloatList(key, f.at("values").get<std::vector<float>>());
      } else if (kind == "int64") {
        ex.SetInt64List(key, f.at("values").get<std::vector<int64_t>>());
      } else {
        ex.SetFeature(key, Feature{});
      }
    }
    if (!(*writer)->Write(ex.Serialize()).ok()) return 1;
  }
  auto s = (*writer)->Close();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
