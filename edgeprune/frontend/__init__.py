"""Front-ends: turn a model from somewhere into the IR, and back.

``lower`` (torch_lowering): our SequenceClassifier -> IR. ``onnx``: an ONNX file -> IR (needs
the onnx extra; imported on use). ``torch_lifting.lift``: IR -> SequenceClassifier, to prune models
that arrive as IR or ONNX.
"""

from .torch_lowering import lower

__all__ = ["lower"]
