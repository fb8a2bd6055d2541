// mimic_ort: run a mimic-edge ONNX artifact (fp32, fp16 or int8) with ONNX Runtime's C++ API.
//
//   mimic_ort MODEL.onnx INPUT_DIR [--bench N]
//
// Reads INPUT_DIR/{text,audio,vision}.npy (float32, (batch, seq_len, dim); see
// ../common/mimic_io.hpp) and prints one line of scores per sample. With --bench N it also
// times N batch-1 runs on the first sample and prints the latency to stderr.
#include <onnxruntime_cxx_api.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mimic_io.hpp"

namespace {

constexpr int kWarmup = 20;  // untimed runs before --bench timing

// Checks that the model has rank-3 inputs text, audio, vision whose feature dims match `inputs`.
void check_model_inputs(Ort::Session& session, const std::array<mimic::Array, 3>& inputs) {
  Ort::AllocatorWithDefaultOptions allocator;
  std::array<bool, 3> seen = {false, false, false};
  for (size_t i = 0; i < session.GetInputCount(); ++i) {
    const std::string name = session.GetInputNameAllocated(i, allocator).get();
    const auto shape = session.GetInputTypeInfo(i).GetTensorTypeAndShapeInfo().GetShape();
    for (size_t m = 0; m < 3; ++m) {
      if (name != mimic::kModalities[m]) continue;
      if (shape.size() != 3) throw std::runtime_error("model input " + name + " is not rank 3: not a mimic-edge model");
      mimic::check_dim(m, inputs[m], shape[2]);
      seen[m] = true;
    }
  }
  for (size_t m = 0; m < 3; ++m)
    if (!seen[m]) throw std::runtime_error(std::string("model has no input '") + mimic::kModalities[m] + "': not a mimic-edge model");
}

}  // namespace

int main(int argc, char** argv) {
  const bool bench = argc == 5 && std::string(argv[3]) == "--bench";
  if (argc != 3 && !bench) {
    std::fprintf(stderr, "usage: %s MODEL.onnx INPUT_DIR [--bench N]\n", argv[0]);
    return 2;
  }
  try {
    const std::array<mimic::Array, 3> inputs = mimic::read_inputs(argv[2]);

    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "mimic_ort");
    Ort::SessionOptions options;
    // As in mimic_edge.runtime: ORT_ENABLE_ALL segfaults at session creation for FP16 models
    // on CPUs with AVX-512-FP16, and is no faster than EXTENDED on this model.
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_EXTENDED);
    Ort::Session session(env, argv[1], options);
    check_model_inputs(session, inputs);

    const Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    const char* input_names[] = {"text", "audio", "vision"};
    const char* output_names[] = {"score"};
    // Runs the first `batch` samples: with C order they are the first elements of each array.
    auto run = [&](int64_t batch) {
      std::vector<Ort::Value> tensors;
      for (const mimic::Array& a : inputs) {
        const std::array<int64_t, 3> shape = {batch, a.shape[1], a.shape[2]};
        tensors.push_back(Ort::Value::CreateTensor<float>(memory, const_cast<float*>(a.data.data()),
                                                          static_cast<size_t>(batch * a.shape[1] * a.shape[2]),
                                                          shape.data(), shape.size()));
      }
      return session.Run(Ort::RunOptions{nullptr}, input_names, tensors.data(), tensors.size(), output_names, 1);
    };

    const std::vector<Ort::Value> scores = run(inputs[0].shape[0]);
    const auto shape = scores[0].GetTensorTypeAndShapeInfo().GetShape();  // (batch, out)
    mimic::print_scores(scores[0].GetTensorData<float>(), shape[0], shape[1]);

    if (bench) {
      const int iters = std::atoi(argv[4]);
      if (iters < 1) throw std::runtime_error("--bench: expected a positive number of runs");
      for (int i = 0; i < kWarmup; ++i) run(1);
      std::vector<double> ms;
      for (int i = 0; i < iters; ++i) {
        const auto start = std::chrono::steady_clock::now();
        run(1);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      }
      mimic::print_latency(ms, "batch-1 latency (ONNX Runtime C++)");
    }
  } catch (const std::exception& e) {  // Ort::Exception included
    std::fprintf(stderr, "mimic_ort: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
