// mimic_aoti: run a mimic-edge AOTInductor package (.pt2, from `mimic-edge export --format pt2`)
// with libtorch's C++ loader, torch::inductor::AOTIModelPackageLoader. No Python.
//
//   mimic_aoti MODEL.pt2 INPUT_DIR [--bench N]
//
// Reads INPUT_DIR/{text,audio,vision}.npy (float32, (batch, seq_len, dim); see
// ../common/mimic_io.hpp) and prints one line of scores per sample. With --bench N it also
// times N batch-1 runs on the first sample and prints the latency to stderr.
//
// The package's metadata (written by the export) carries the feature dims, the compiled batch
// and sequence ranges and the torch version: inputs are checked against them before the
// compiled code sees them, and a package compiled with another torch release is refused.
// The JSON sidecar's other checks (CPU instruction set, GPU architecture) are the Python
// loader's (mimic_edge.runtime); build and run this program on the kind of machine the
// package was exported on.
#include <ATen/ATen.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <vector>

#include "mimic_io.hpp"

namespace {

constexpr int kWarmup = 20;  // untimed runs before --bench timing
const std::string kPrefix = "mimic_edge.";  // the export's metadata keys

using Metadata = std::unordered_map<std::string, std::string>;

int64_t meta_int(const Metadata& meta, const std::string& key) {
  const auto it = meta.find(kPrefix + key);
  if (it == meta.end())
    throw std::runtime_error("package metadata has no '" + kPrefix + key +
                             "': not a mimic-edge package (mimic-edge export --format pt2 writes it)");
  return std::stoll(it->second);
}

std::string release(const std::string& version) { return version.substr(0, version.find('+')); }

void check_range(const std::string& what, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi)
    throw std::runtime_error(what + " " + std::to_string(value) + " is outside the supported range [" +
                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

// Checks the inputs against the package: feature dims, batch range, each modality's sequence range.
void check_inputs(const Metadata& meta, const std::array<mimic::Array, 3>& inputs) {
  check_range("batch size", inputs[0].shape[0], meta_int(meta, "batch_min"), meta_int(meta, "batch_max"));
  for (size_t m = 0; m < 3; ++m) {
    const std::string name = mimic::kModalities[m];
    mimic::check_dim(m, inputs[m], meta_int(meta, name + "_dim"));
    check_range(name + ": seq_len", inputs[m].shape[1], meta_int(meta, name + "_seq_min"),
                meta_int(meta, name + "_seq_max"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool bench = argc == 5 && std::string(argv[3]) == "--bench";
  if (argc != 3 && !bench) {
    std::fprintf(stderr, "usage: %s MODEL.pt2 INPUT_DIR [--bench N]\n", argv[0]);
    return 2;
  }
  try {
    const std::array<mimic::Array, 3> inputs = mimic::read_inputs(argv[2]);

    const Metadata meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(argv[1], "model");
    const auto built_with = meta.find(kPrefix + "torch_version");
    if (built_with == meta.end())
      throw std::runtime_error("not a mimic-edge package: its metadata has no torch version");
    if (release(built_with->second) != TORCH_VERSION)
      throw std::runtime_error(std::string(argv[1]) + " was compiled with torch " + built_with->second +
                               ", this program runs libtorch " + TORCH_VERSION +
                               ": a package runs only on the torch release it was compiled with");
    const auto device_key = meta.find("AOTI_DEVICE_KEY");
    const bool cuda = device_key != meta.end() && device_key->second == "cuda";
    if (cuda && !at::hasCUDA())
      throw std::runtime_error(std::string(argv[1]) + " is a CUDA package, and this machine has no CUDA GPU");
    check_inputs(meta, inputs);

    torch::inductor::AOTIModelPackageLoader loader(argv[1]);
    // Runs the first `batch` samples: with C order they are the first elements of each array.
    auto run = [&](int64_t batch) {
      std::vector<at::Tensor> tensors;
      for (const mimic::Array& a : inputs) {
        at::Tensor t = at::from_blob(const_cast<float*>(a.data.data()), {batch, a.shape[1], a.shape[2]}, at::kFloat);
        tensors.push_back(cuda ? t.to(at::kCUDA) : t);
      }
      return loader.run(tensors)[0];  // (batch, out)
    };

    const at::Tensor scores = run(inputs[0].shape[0]).to(at::kCPU).contiguous();
    mimic::print_scores(scores.data_ptr<float>(), scores.size(0), scores.size(1));

    if (bench) {
      const int iters = std::atoi(argv[4]);
      if (iters < 1) throw std::runtime_error("--bench: expected a positive number of runs");
      for (int i = 0; i < kWarmup; ++i) run(1).to(at::kCPU);
      std::vector<double> ms;
      for (int i = 0; i < iters; ++i) {
        const auto start = std::chrono::steady_clock::now();
        run(1).to(at::kCPU);  // on CUDA the copy back waits for the GPU
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      }
      mimic::print_latency(ms, "batch-1 latency (AOTInductor C++)");
    }
  } catch (const c10::Error& e) {  // libtorch's: the message without its C++ backtrace
    std::fprintf(stderr, "mimic_aoti: error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mimic_aoti: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
