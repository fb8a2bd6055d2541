"""One exception family for everything a user can get wrong.

The CLI prints these as one line and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class MimicEdgeError(Exception):
    """Base class: a clear message naming what was expected and what was found."""


class InputError(MimicEdgeError, ValueError):
    """Model inputs of the wrong rank, dims, dtype, size, or with NaN/Inf."""


class ConfigError(MimicEdgeError, ValueError):
    """An unknown preset, model name, option or option value."""


class CheckpointError(MimicEdgeError):
    """A missing, corrupt or mismatched checkpoint."""


class ArtifactError(MimicEdgeError):
    """A missing, corrupt, foreign or mismatched ONNX artifact or TensorRT engine."""


class WriteError(MimicEdgeError, OSError):
    """A file that could not be written (disk full, quota, I/O error); what was there is left as it was."""


class DataError(InputError):
    """A dataset file that is missing, unreadable, refused (unsafe pickle) or of the wrong layout."""


class ExportError(MimicEdgeError):
    """An export that cannot produce a trustworthy artifact: the base of the two below."""


class CompatibilityError(ExportError):
    """An ONNX artifact that breaks TensorRT's parser rules; `.findings` lists every broken rule."""

    def __init__(self, message: str, findings: list):
        super().__init__(message)
        self.findings = findings


class ArtifactValidationError(ExportError):
    """An artifact whose outputs or task metrics drift from the PyTorch model beyond the
    precision's thresholds; `.report` is the full validation report."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report
