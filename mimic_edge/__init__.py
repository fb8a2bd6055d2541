"""mimic-edge: deploy the MIMIC multimodal emotion-recognition model on the edge.

`import mimic_edge` is light: torch is imported only when a model is built or loaded, so an
app that runs an ONNX or TensorRT artifact through `mimic_edge.runtime` never loads it.
"""
__version__ = "0.1.0"

_LAZY = {
    "build_model": "mimic_edge.models",
    "save_checkpoint": "mimic_edge.checkpoint",
    "load_checkpoint": "mimic_edge.checkpoint",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mimic_edge' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
