"""Run a TensorRT engine. Imports numpy, tensorrt and the CUDA Python bindings only.

The engine's JSON sidecar (TensorRT version, GPU, compute capability, profile shapes) is checked
before TensorRT sees the engine: an engine built for another TensorRT or GPU gets a clear
error instead of a failed deserialization. Inputs are checked against the optimization
profile (batch and sequence ranges) before they reach the GPU.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES, OUTPUT_NAME
from mimic_edge.errors import ArtifactError
from mimic_edge.runtime.inputs import check_scores, lengths_feeds, prepare_inputs, refuse_lengths
from mimic_edge.sidecar import check_sidecar
from mimic_edge.tensorrt_probe import cuda_runtime, require_tensorrt

if TYPE_CHECKING:  # for the annotations: mypy checks them against tensorrt-stubs
    import tensorrt as trt


def _cuda_call(result: Any) -> Any:
    """cuda-python returns (error, *values): raise on error, return the value(s)."""
    err, *values = result
    if getattr(err, "value", err) != 0:  # cudaSuccess
        raise RuntimeError(f"CUDA call failed: {err}")
    return values[0] if len(values) == 1 else values


class TensorRTPredictor:
    """`predict(text, audio, vision) -> (B, out)` on one TensorRT execution context.

    Thread-safe: calls take turns on the context and its device buffers (a lock); the GPU
    is the bottleneck either way.
    """

    backend = "tensorrt"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactError(f"TensorRT engine not found: expected a file at {self.path}")
        self.sidecar = check_sidecar(self.path)  # also needs TensorRT and the CUDA bindings: says which is missing
        require_tensorrt()
        import tensorrt as trt

        self._cudart = cuda_runtime()
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise ArtifactError(f"{self.path}: expected a TensorRT {trt.__version__} engine, "
                                "found one TensorRT cannot deserialize (corrupt, truncated or foreign)")
        self.engine: trt.ICudaEngine = engine
        self._check_io()
        self.dims = {m: self.engine.get_tensor_shape(m)[2] for m in MODALITIES}
        self.out_dim = self.engine.get_tensor_shape(OUTPUT_NAME)[1]
        profile = {m: self.engine.get_tensor_profile_shape(m, 0) for m in MODALITIES}  # (min, opt, max)
        self.seq_range = {m: (lo[1], hi[1]) for m, (lo, _, hi) in profile.items()}
        self.batch_range = (max(lo[0] for lo, _, _ in profile.values()), min(hi[0] for _, _, hi in profile.values()))
        self._context: trt.IExecutionContext = self.engine.create_execution_context()
        self._stream = _cuda_call(self._cudart.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}  # name → (device pointer, bytes), grown on demand
        self._lock = threading.Lock()

    def _check_io(self) -> None:
        import tensorrt as trt

        names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        modes = {n: self.engine.get_tensor_mode(n) for n in names}
        lengths = set(LENGTHS_INPUTS.values())
        self.takes_lengths = lengths <= names  # an engine built from an ONNX artifact exported with --lengths
        floats = {*MODALITIES, OUTPUT_NAME}
        ok = (names in (floats, floats | lengths)
              and all(modes[n] == trt.TensorIOMode.INPUT for n in names - {OUTPUT_NAME})
              and modes[OUTPUT_NAME] == trt.TensorIOMode.OUTPUT
              and all(self.engine.get_tensor_dtype(n) == trt.DataType.FLOAT for n in floats)
              and all(self.engine.get_tensor_dtype(n) == trt.DataType.INT64 for n in names & lengths))
        if not ok:
            found = {n: (str(modes[n]), str(self.engine.get_tensor_dtype(n))) for n in sorted(names)}
            raise ArtifactError(f"{self.path}: not a mimic-edge engine: expected float32 inputs "
                                f"{list(MODALITIES)} (and optionally int64 {list(LENGTHS_INPUTS.values())}) and "
                                f"output {OUTPUT_NAME!r}, found {found}")

    def predict(self, text: Any, audio: Any, vision: Any, lengths: Any = None) -> np.ndarray:
        if not self.takes_lengths:
            refuse_lengths(lengths, self.path)
        feeds = prepare_inputs(text, audio, vision, self.dims, self.seq_range, self.batch_range, lengths)
        if self.takes_lengths:
            feeds.update({LENGTHS_INPUTS[m]: n for m, n in lengths_feeds(lengths, feeds).items()})
        cudart, stream = self._cudart, self._stream
        with self._lock:
            for m, x in feeds.items():
                self._context.set_input_shape(m, x.shape)
            shape = self._context.get_tensor_shape(OUTPUT_NAME)
            out = np.empty((shape[0], shape[1]), np.float32)  # (B, out)
            for m, x in feeds.items():
                ptr = self._device_buffer(m, x.nbytes)
                _cuda_call(cudart.cudaMemcpyAsync(ptr, x.ctypes.data, x.nbytes,
                                                  cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream))
                self._context.set_tensor_address(m, ptr)
            out_ptr = self._device_buffer(OUTPUT_NAME, out.nbytes)
            self._context.set_tensor_address(OUTPUT_NAME, out_ptr)
            if not self._context.execute_async_v3(int(stream)):
                raise RuntimeError(f"{self.path}: TensorRT enqueueV3 failed")
            _cuda_call(cudart.cudaMemcpyAsync(out.ctypes.data, out_ptr, out.nbytes,
                                              cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream))
            _cuda_call(cudart.cudaStreamSynchronize(stream))
        return check_scores(out, self.path)

    def _device_buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _cuda_call(self._cudart.cudaFree(ptr))
            ptr = int(_cuda_call(self._cudart.cudaMalloc(nbytes)))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def __del__(self):
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for ptr, _ in getattr(self, "_buffers", {}).values():
            cudart.cudaFree(ptr)
        if getattr(self, "_stream", None) is not None:
            cudart.cudaStreamDestroy(self._stream)

    def __repr__(self) -> str:
        return f"TensorRTPredictor({str(self.path)!r})"
