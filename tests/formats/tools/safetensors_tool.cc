// Test tool for safetensors_interop.py.
//
//   safetensors_tool write OUT   writes a file with known tensors of many dtypes and known metadata
//   safetensors_tool dump IN     prints the file as JSON on stdout:
//                                {"metadata": {...}, "tensors": {name: {dtype, shape, values}}}
//                                (values flattened row-major, widened to double or int64; F8 and
//                                U64 as raw unsigned integers)
// Exit status 0 on success, 1 on an error (printed on stderr), 2 on a usage error.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sluice/formats/safetensors.h"

namespace sf = sluice::formats;

namespace {

template <typename T>
sluice::Status Add(sf::SafetensorsWriter& w, const std::string& name, std::vector<int64_t> shape,
                   const std::vector<T>& values) {
  return w.Add(name, std::move(shape), std::span<const T>(values));
}

sluice::Status AddBits(sf::SafetensorsWriter& w, const std::string& name,
                       sf::SafetensorsDtype dtype, std::vector<int64_t> shape,
                       const std::vector<uint16_t>& bits) {
  return w.Add(name, dtype, std::move(shape),
               std::string_view(reinterpret_cast<const char*>(bits.data()), bits.size() * 2));
}

// The values safetensors_interop.py expects; keep the two in step.
sluice::Status Write(const std::string& path) {
  sf::SafetensorsWriter w;
  std::vector<float> conv(8);
  for (int i = 0; i < 8; ++i) conv[i] = 0.5f * static_cast<float>(i) - 1.0f;
  SLUICE_RETURN_IF_ERROR(Add<float>(w, "conv1.weight", {2, 1, 2, 2}, conv));
  SLUICE_RETURN_IF_ERROR(Add<double>(w, "bn1.running_var", {3}, {1e-5, 1.0, 123456.789}));
  SLUICE_RETURN_IF_ERROR(Add<int64_t>(w, "global_step", {}, {71108}));
  SLUICE_RETURN_IF_ERROR(Add<int32_t>(w, "labels", {2, 2}, {-1, 0, 1, 2147483647}));
  SLUICE_RETURN_IF_ERROR(Add<int16_t>(w, "i16", {2}, {-32768, 32767}));
  SLUICE_RETURN_IF_ERROR(Add<int8_t>(w, "i8", {2}, {-128, 127}));
  SLUICE_RETURN_IF_ERROR(Add<uint8_t>(w, "pixels", {3}, {0, 128, 255}));
  const bool mask[] = {true, false, false, true};
  SLUICE_RETURN_IF_ERROR(w.Add("mask", {4}, std::span<const bool>(mask)));
  // 1.0, -5.0, 65504 (max half), 2^-24 (smallest subnormal)
  SLUICE_RETURN_IF_ERROR(
      AddBits(w, "half", sf::SafetensorsDtype::kF16, {4}, {0x3c00, 0xc500, 0x7bff, 0x0001}));
  // 1.0, -5.0, 3.140625
  SLUICE_RETURN_IF_ERROR(
      AddBits(w, "bf16", sf::SafetensorsDtype::kBF16, {3}, {0x3f80, 0xc0a0, 0x4049}));
  SLUICE_RETURN_IF_ERROR(Add<float>(w, "empty", {0, 3}, {}));
  w.SetMetadata("format", "pt");
  w.SetMetadata("step", "71108");
  w.SetMetadata("note", "r\xc3\xa9sum\xc3\xa9 \"quoted\"");
  return w.WriteFile(path);
}

sluice::Status Dump(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(sf::SafetensorsFile file, sf::SafetensorsFile::Open(path));
  nlohmann::ordered_json out;
  out["metadata"] = nlohmann::json::object();
  for (const auto& [k, v] : file.metadata()) out["metadata"][k] = v;
  out["tensors"] = nlohmann::json::object();
  for (const std::string& name : file.names()) {
    SLUICE_ASSIGN_OR_RETURN(sf::SafetensorsTensor t, file.Find(name));
    nlohmann::ordered_json j;
    j["dtype"] = sf::SafetensorsDtypeName(t.dtype);
    j["shape"] = t.shape;
    switch (t.dtype) {
      case sf::SafetensorsDtype::kF64:
      case sf::SafetensorsDtype::kF32:
      case sf::SafetensorsDtype::kF16:
      case sf::SafetensorsDtype::kBF16: {
        SLUICE_ASSIGN_OR_RETURN(std::vector<double> v, file.Doubles(name));
        j["values"] = v;
        break;
      }
      case sf::SafetensorsDtype::kU64: {
        std::vector<uint64_t> v(t.data.size() / 8);
        std::memcpy(v.data(), t.data.data(), t.data.size());
        j["values"] = v;
        break;
      }
      case sf::SafetensorsDtype::kF8E5M2:
      case sf::SafetensorsDtype::kF8E4M3:
        j["values"] = std::vector<uint8_t>(t.data.begin(), t.data.end());
        break;
      default: {
        SLUICE_ASSIGN_OR_RETURN(std::vector<int64_t> v, file.Int64s(name));
        j["values"] = v;
      }
    }
    out["tensors"][name] = std::move(j);
  }
  std::cout << out.dump(1) << "\n";
  return sluice::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "write") != 0 && std::strcmp(argv[1], "dump") != 0)) {
    std::fprintf(stderr, "usage: safetensors_tool write OUT | dump IN\n");
    return 2;
  }
  sluice::Status s = std::strcmp(argv[1], "write") == 0 ? Write(argv[2]) : Dump(argv[2]);
  if (!s.ok()) {
    std::fprintf(stderr, "safetensors_tool: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
