// Inputs and outputs shared by the C++ examples (ONNX Runtime and TensorRT).
//
// Inputs: a folder with text.npy, audio.npy, vision.npy — numpy's .npy format, float32
// little-endian ('<f4'), C order, shape (batch, seq_len, dim). Write them from Python with
// mimic_edge.runtime.write_inputs(folder, {"text": ..., "audio": ..., "vision": ...}).
// Output: one line per sample on stdout, the model's scores separated by spaces ("%.9g",
// enough digits to round-trip a float32).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mimic {

inline const std::array<const char*, 3> kModalities = {"text", "audio", "vision"};

struct Array {
  std::vector<int64_t> shape;  // (batch, seq_len, dim) for model inputs
  std::vector<float> data;     // C order
};

// Reads a float32 C-order .npy file (format versions 1, 2 and 3).
inline Array read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open: expected a .npy file");
  char magic[8];
  if (!f.read(magic, 8) || std::string(magic, 6) != "\x93NUMPY")
    throw std::runtime_error(path + ": expected a .npy file, found another format");
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {0, 0, 0, 0};
  const int len_size = magic[6] == 1 ? 2 : 4;  // version 1: uint16, versions 2 and 3: uint32
  if (!f.read(reinterpret_cast<char*>(len_bytes), len_size))
    throw std::runtime_error(path + ": truncated .npy header");
  for (int i = len_size - 1; i >= 0; --i) header_len = header_len * 256 + len_bytes[i];
  std::string header(header_len, '\0');
  if (!f.read(&header[0], header_len)) throw std::runtime_error(path + ": truncated .npy header");

  // The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 50, 300), }
  auto value_of = [&](const std::string& key) {
    const auto at = header.find("'" + key + "':");
    if (at == std::string::npos) throw std::runtime_error(path + ": .npy header has no '" + key + "'");
    const std::string rest = header.substr(at + key.size() + 3);
    return rest.substr(rest.find_first_not_of(' '));
  };
  const std::string descr = value_of("descr");
  if (descr.rfind("'<f4'", 0) != 0)
    throw std::runtime_error(path + ": expected dtype float32 ('<f4'), found " + descr.substr(0, descr.find(',')));
  if (value_of("fortran_order").rfind("False", 0) != 0)
    throw std::runtime_error(path + ": expected C order, found Fortran order");

  Array a;
  const std::string shape = value_of("shape");
  const std::string dims = shape.substr(shape.find('(') + 1, shape.find(')') - shape.find('(') - 1);
  size_t count = 1;
  for (size_t pos = 0; pos < dims.size();) {
    const size_t comma = std::min(dims.find(',', pos), dims.size());
    const std::string item = dims.substr(pos, comma - pos);
    if (item.find_first_not_of(' ') != std::string::npos) {
      a.shape.push_back(std::stoll(item));
      count *= static_cast<size_t>(a.shape.back());
    }
    pos = comma + 1;
  }
  a.data.resize(count);
  if (!f.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(count * sizeof(float))))
    throw std::runtime_error(path + ": truncated data: expected " + std::to_string(count) + " float32 values");
  return a;
}

// Reads folder/{text,audio,vision}.npy and checks what holds for any model: rank 3, one batch
// size, at least one sample and one step, finite values. Feature dims are checked against the
// model by the caller.
inline std::array<Array, 3> read_inputs(const std::string& folder) {
  std::array<Array, 3> inputs;
  for (size_t m = 0; m < 3; ++m) {
    const std::string path = folder + "/" + kModalities[m] + ".npy";
    Array& a = inputs[m];
    a = read_npy(path);
    if (a.shape.size() != 3)
      throw std::runtime_error(path + ": expected rank 3 (batch, seq_len, dim), found rank " + std::to_string(a.shape.size()));
    if (a.shape[0] < 1 || a.shape[1] < 1)
      throw std::runtime_error(path + ": expected at least one sample and one step, found an empty array");
    if (a.shape[0] != inputs[0].shape[0])
      throw std::runtime_error(path + ": batch sizes differ: expected " + std::to_string(inputs[0].shape[0]) +
                               ", found " + std::to_string(a.shape[0]));
    if (!std::all_of(a.data.begin(), a.data.end(), [](float v) { return std::isfinite(v); }))
      throw std::runtime_error(path + ": found NaN or Inf values: expected finite features");
  }
  return inputs;
}

inline void check_dim(size_t modality, const Array& a, int64_t model_dim) {
  if (a.shape[2] != model_dim)
    throw std::runtime_error(std::string(kModalities[modality]) + ": expected feature dim " + std::to_string(model_dim) +
                             ", found " + std::to_string(a.shape[2]));
}

inline void print_scores(const float* scores, int64_t batch, int64_t out) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < out; ++j) std::printf("%.9g%c", scores[b * out + j], j + 1 < out ? ' ' : '\n');
}

// Median and 99th percentile of the given times in milliseconds, printed to stderr.
inline void print_latency(std::vector<double> ms, const char* what) {
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) { return ms[static_cast<size_t>(q * static_cast<double>(ms.size() - 1))]; };
  std::fprintf(stderr, "%s: p50 %.3f ms, p99 %.3f ms over %zu runs\n", what, at(0.5), at(0.99), ms.size());
}

}  // namespace mimic
