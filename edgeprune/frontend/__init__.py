"""Front-ends: turn a model from somewhere (our torch classifier, later ONNX) into the IR."""

from .torch_lowering import lower

__all__ = ["lower"]
