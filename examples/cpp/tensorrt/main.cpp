// mimic_trt: run a mimic-edge TensorRT engine with TensorRT's C++ runtime (10.x and 11.x).
//
//   mimic_trt MODEL.engine INPUT_DIR [--bench N]
//
// Same inputs and output as mimic_ort: INPUT_DIR/{text,audio,vision}.npy (float32,
// (batch, seq_len, dim); see ../common/mimic_io.hpp), one line of scores per sample on stdout.
// Steps: deserialize the engine, set each input's shape (checked against the optimization
// profile), bind device buffers by tensor name, enqueueV3 on a stream, copy the scores back.
//
// The engine must come from the TensorRT version and GPU it runs on: `mimic-edge export
// --engine` records both in MODEL.engine.json, which the Python runtime checks before loading;
// here TensorRT's own check at deserialization applies.
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "mimic_io.hpp"

namespace {

constexpr int kWarmup = 20;  // untimed runs before --bench timing
constexpr const char* kOutput = "score";

class Logger : public nvinfer1::ILogger {
  void log(Severity severity, const char* message) noexcept override {
    if (severity <= Severity::kWARNING) std::fprintf(stderr, "TensorRT: %s\n", message);
  }
};

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

// A device buffer freed with its owner.
struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) { check_cuda(cudaMalloc(&ptr, bytes), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

std::string dims_str(const nvinfer1::Dims& d) {
  std::string s = "(";
  for (int i = 0; i < d.nbDims; ++i) s += std::to_string(d.d[i]) + (i + 1 < d.nbDims ? ", " : ")");
  return s;
}

// Checks a modality's input against the engine: float32, feature dim, and the profile's
// batch and sequence ranges (setInputShape would refuse the shape with a less clear message).
void check_input(const nvinfer1::ICudaEngine& engine, size_t m, const mimic::Array& a) {
  const char* name = mimic::kModalities[m];
  if (engine.getTensorIOMode(name) != nvinfer1::TensorIOMode::kINPUT ||
      engine.getTensorDataType(name) != nvinfer1::DataType::kFLOAT)
    throw std::runtime_error(std::string("engine has no float32 input '") + name + "': not a mimic-edge engine");
  mimic::check_dim(m, a, engine.getTensorShape(name).d[2]);
  const auto lo = engine.getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMIN);
  const auto hi = engine.getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMAX);
  for (int axis = 0; axis < 2; ++axis)
    if (a.shape[axis] < lo.d[axis] || a.shape[axis] > hi.d[axis])
      throw std::runtime_error(std::string(name) + ": shape (" + std::to_string(a.shape[0]) + ", " +
                               std::to_string(a.shape[1]) + ", " + std::to_string(a.shape[2]) +
                               ") is outside the engine's profile: min " + dims_str(lo) + ", max " + dims_str(hi));
}

}  // namespace

int main(int argc, char** argv) {
  const bool bench = argc == 5 && std::string(argv[3]) == "--bench";
  if (argc != 3 && !bench) {
    std::fprintf(stderr, "usage: %s MODEL.engine INPUT_DIR [--bench N]\n", argv[0]);
    return 2;
  }
  try {
    const std::array<mimic::Array, 3> inputs = mimic::read_inputs(argv[2]);

    std::ifstream file(argv[1], std::ios::binary);
    if (!file) throw std::runtime_error(std::string(argv[1]) + ": cannot open: expected a TensorRT engine");
    const std::vector<char> blob((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    Logger logger;
    std::unique_ptr<nvinfer1::IRuntime> runtime(nvinfer1::createInferRuntime(logger));
    std::unique_ptr<nvinfer1::ICudaEngine> engine(runtime->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine)
      throw std::runtime_error(std::string(argv[1]) + ": TensorRT could not deserialize it: corrupt, or built by "
                               "another TensorRT version or for another GPU");
    std::unique_ptr<nvinfer1::IExecutionContext> context(engine->createExecutionContext());
    if (!context) throw std::runtime_error("could not create an execution context");
    for (size_t m = 0; m < 3; ++m) check_input(*engine, m, inputs[m]);

    cudaStream_t stream;
    check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
    const int64_t batch = inputs[0].shape[0];
    const int64_t out_dim = engine->getTensorShape(kOutput).d[1];  // (-1, out): dynamic batch
    std::vector<std::unique_ptr<DeviceBuffer>> device;  // text, audio, vision, score
    for (const mimic::Array& a : inputs) device.push_back(std::make_unique<DeviceBuffer>(a.data.size() * sizeof(float)));
    device.push_back(std::make_unique<DeviceBuffer>(static_cast<size_t>(batch * out_dim) * sizeof(float)));

    // Runs the first `batch` samples: with C order they are the first elements of each array.
    // The scores land in device[3].
    auto run = [&](int64_t n) {
      for (size_t m = 0; m < 3; ++m) {
        const mimic::Array& a = inputs[m];
        const char* name = mimic::kModalities[m];
        const size_t bytes = static_cast<size_t>(n * a.shape[1] * a.shape[2]) * sizeof(float);
        check_cuda(cudaMemcpyAsync(device[m]->ptr, a.data.data(), bytes, cudaMemcpyHostToDevice, stream), "copy in");
        if (!context->setInputShape(name, nvinfer1::Dims3(n, a.shape[1], a.shape[2])) ||
            !context->setTensorAddress(name, device[m]->ptr))
          throw std::runtime_error(std::string("could not bind input ") + name);
      }
      if (!context->setTensorAddress(kOutput, device[3]->ptr) || !context->enqueueV3(stream))
        throw std::runtime_error("enqueueV3 failed");
    };

    run(batch);
    std::vector<float> scores(static_cast<size_t>(batch * out_dim));
    check_cuda(cudaMemcpyAsync(scores.data(), device[3]->ptr, scores.size() * sizeof(float), cudaMemcpyDeviceToHost, stream),
               "copy out");
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    mimic::print_scores(scores.data(), batch, out_dim);

    if (bench) {
      const int iters = std::atoi(argv[4]);
      if (iters < 1) throw std::runtime_error("--bench: expected a positive number of runs");
      float first = 0.0f;
      auto run_one = [&] {  // batch 1, end to end: copies in, inference, copy out
        run(1);
        check_cuda(cudaMemcpyAsync(&first, device[3]->ptr, sizeof(float), cudaMemcpyDeviceToHost, stream), "copy out");
        check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      };
      for (int i = 0; i < kWarmup; ++i) run_one();
      std::vector<double> ms;
      for (int i = 0; i < iters; ++i) {
        const auto start = std::chrono::steady_clock::now();
        run_one();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      }
      mimic::print_latency(ms, "batch-1 latency (TensorRT C++)");
    }
    cudaStreamDestroy(stream);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mimic_trt: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
