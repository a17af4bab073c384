"""Memory figures of the ``tflite`` target from its per-matrix report (``info["weights"]``)."""

from __future__ import annotations

DTYPE_BYTES = {"f32": 4, "float32": 4, "int8": 1}


def memory_info(info: dict, directory=None, artifact=None) -> dict:
    """``weights.<matrix>.bytes`` are the stored values + sparse index vectors of each matrix.

    A matrix without ``bytes`` (TFLite Micro's LSTM op weights) is dense: stored values x the
    dtype's size. Anything else unknown leaves the total unknown rather than guessed.
    """
    weights = info.get("weights")
    if not isinstance(weights, dict) or not weights:
        return {}
    total = stored = 0
    for m in weights.values():
        stored += int(m.get("stored_values", 0))
        if isinstance(m.get("bytes"), int):
            total += m["bytes"]
        elif m.get("encoding") == "dense" and m.get("dtype") in DTYPE_BYTES and "stored_values" in m:
            total += int(m["stored_values"]) * DTYPE_BYTES[m["dtype"]]
        else:
            return {"stored_values": stored}
    return {"storage_bytes": total, "stored_values": stored, "dtype": info.get("dtype")}
