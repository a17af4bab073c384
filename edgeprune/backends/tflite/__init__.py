"""The ``tflite`` target: LiteRT / TensorFlow Lite flatbuffers written straight from the IR.

No TensorFlow: the files are built with ``flatbuffers`` and the LiteRT schema module
(``ai_edge_litert.schema_py_generated``, object API). Three files, each run in its own runtime by the
verification gate (see docs/tflite.md for what each is for and what was measured):

* ``model_step.tflite`` - one time step per invoke, every stage's state (recurrent h/c, a conv's
  window, a pool's running value and count) an explicit input and output (streaming). Each matrix
  stage is one ``FULLY_CONNECTED``: a recurrent layer's over ``z = [x ; h ; feedback]`` with the IR's
  fused gate matrix, followed by LOGISTIC/TANH/MUL/ADD/SUB (there is no builtin GRU op, and the
  builtin LSTM/RNN ops ignore sparsity); a conv's over its k taps; a dense stage's over its input.
  Sparse matrices are stored as TFLite sparse tensors (CSR, or 1x4 blocks when the pattern is
  exactly 1x4-blocked; the buffer holds only the stored entries) and their FC is written as op
  version 8 - the one version the XNNPACK delegate declines, so the builtin sparse kernel runs it
  (a sparse FC of any other version is taken by XNNPACK, which reads the nonzero array as a dense
  matrix and silently computes garbage).
* ``model.tflite`` - whole sequence, unrolled over a fixed number of steps (the IR's
  ``sequence_length``): the last step's output, or every step's ([N, T, C]). Same stages and
  weights (each weight is stored once).
* ``model_dense.tflite`` - for TensorFlow Lite Micro, which ignores sparsity (a sparse file runs and
  returns garbage): the sequence model with dense fp32 weights and batch 1, or
  ``UNIDIRECTIONAL_SEQUENCE_LSTM`` for v1 LSTM stacks without feedback.

Every file has dynamic batch except the micro one, and carries an ``edgeprune`` metadata entry
(JSON: kind, steps, inputs/outputs, per-matrix weight encodings) that the runners read.

The package, one concern per module: ``flatbuffer`` (schema, graph writer, file readers),
``weights`` (how each matrix is stored), ``ops`` (op-level writer, the FC), ``graphs`` (one emitter
per stage kind, the three models), ``runners``
(LiteRT and TFLite Micro), ``backend`` (options and emission). The registry imports ``BACKEND``
from here.
"""

from .backend import BACKEND, INT8_IN_TFLITE_RUNTIME, INT8_TOLERANCE, TFLiteBackend
from .flatbuffer import (
    FORMAT,
    METADATA_NAME,
    MICRO_FILE,
    SEQUENCE_FILE,
    STEP_FILE,
    check_micro_compatible,
    read_metadata,
    sparse_tensors,
    summarize,
)
from .graphs import (
    build_linear_model,
    build_micro_model,
    build_sequence_model,
    build_step_model,
    micro_uses_sequence_lstm,
    prepare,
    state_layout,
)
from .runners import RESOLVERS, RUNTIME_MODULES, LiteRTRunner, MicroRunner, interpreter_module, litert_label
from .weights import encode_weight

__all__ = [
    "BACKEND",
    "FORMAT",
    "INT8_IN_TFLITE_RUNTIME",
    "INT8_TOLERANCE",
    "METADATA_NAME",
    "MICRO_FILE",
    "RESOLVERS",
    "RUNTIME_MODULES",
    "SEQUENCE_FILE",
    "STEP_FILE",
    "LiteRTRunner",
    "MicroRunner",
    "TFLiteBackend",
    "build_linear_model",
    "build_micro_model",
    "build_sequence_model",
    "build_step_model",
    "check_micro_compatible",
    "encode_weight",
    "interpreter_module",
    "litert_label",
    "micro_uses_sequence_lstm",
    "prepare",
    "read_metadata",
    "sparse_tensors",
    "state_layout",
    "summarize",
]
