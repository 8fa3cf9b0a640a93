// Test tool for events_interop.py.
//
//   events_tool write DIR   writes an events file with known scalars into DIR; prints its path
//   events_tool dump FILE   prints the file as JSON on stdout:
//                           {"file_version": ..., "scalars": [{wall_time, step, tag, value}]}
//                           (every scalar ReadScalars finds, in file order)
// Exit status 0 on success, 1 on an error (printed on stderr), 2 on a usage error.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "sluice/formats/events.h"
#include "sluice/formats/record_reader.h"

namespace sf = sluice::formats;

namespace {

// The values events_interop.py expects; keep the two in step.
sluice::Status Write(const std::string& dir) {
  sf::EventWriterOptions options;
  options.start_time = 1700000000.5;
  options.hostname = "interop";
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<sf::EventWriter> w,
                          sf::EventWriter::Create(dir, options));
  SLUICE_RETURN_IF_ERROR(w->WriteScalar(0, "loss", 2.5, 1700000001.0));
  SLUICE_RETURN_IF_ERROR(w->WriteScalar(1, "loss", 1.25, 1700000002.0));
  SLUICE_RETURN_IF_ERROR(w->WriteScalar(1, "accuracy", 0.5, 1700000002.0));
  SLUICE_RETURN_IF_ERROR(w->Flush());
  SLUICE_RETURN_IF_ERROR(w->WriteScalar(1000000, "lr", 0.1, 1700000003.25));
  SLUICE_RETURN_IF_ERROR(w->WriteScalar(2, "r\xc3\xa9sum\xc3\xa9/x", -3.0, 1700000004.0));
  SLUICE_RETURN_IF_ERROR(w->Close());
  std::cout << w->path() << "\n";
  return sluice::Status::Ok();
}

sluice::Status Dump(const std::string& path) {
  nlohmann::ordered_json out;
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<sf::RecordReader> reader, sf::RecordReader::Open(path));
  std::string_view first;
  SLUICE_RETURN_IF_ERROR(reader->ReadRecord(&first));
  SLUICE_ASSIGN_OR_RETURN(sf::DecodedEvent version, sf::ParseEvent(first));
  out["file_version"] = version.file_version.value_or("");
  SLUICE_ASSIGN_OR_RETURN(std::vector<sf::ScalarEvent> scalars, sf::ReadScalars(path));
  out["scalars"] = nlohmann::json::array();
  for (const sf::ScalarEvent& s : scalars) {
    out["scalars"].push_back(
        {{"wall_time", s.wall_time}, {"step", s.step}, {"tag", s.tag}, {"value", s.value}});
  }
  std::cout << out.dump(1) << "\n";
  return sluice::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "write") != 0 && std::strcmp(argv[1], "dump") != 0)) {
    std::fprintf(stderr, "usage: events_tool write DIR | dump FILE\n");
    return 2;
  }
  sluice::Status s = std::strcmp(argv[1], "write") == 0 ? Write(argv[2]) : Dump(argv[2]);
  if (!s.ok()) {
    std::fprintf(stderr, "events_tool: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
