from edgeprune.bench.memory import record
from edgeprune.bench.targets import memory_info


def test_tflite_per_matrix_report_becomes_the_standard_keys():
    info = {
        "dtype": "f32",
        "weights": {
            "head.weight": {"bytes": 640, "dtype": "f32", "encoding": "dense", "nnz": 160, "stored_values": 160},
            "layers.0.weight": {"bytes": 1665, "dtype": "f32", "encoding": "csr", "nnz": 307, "stored_values": 307},
        },
    }
    m = record(None, None, 467, memory_info("tflite", info))
    assert m["storage_bytes"] == 2305 and m["stored_values"] == 467
    assert m["bytes_per_nonzero"] == 2305 / 467 and m["weight_bytes"] is None  # never split by guessing


def test_dense_micro_weights_count_their_stored_values():
    info = {
        "weights": {
            "layers.0.weight": {"dtype": "f32", "encoding": "dense", "stored_values": 1536},
            "head.weight": {"bytes": 640, "dtype": "f32", "encoding": "dense", "stored_values": 160},
        }
    }
    assert memory_info("tflite", info)["storage_bytes"] == 1536 * 4 + 640


def test_unknown_encoding_leaves_the_total_unknown():
    info = {"weights": {"layers.0.weight": {"dtype": "f32", "encoding": "block1x4", "stored_values": 64}}}
    assert "storage_bytes" not in memory_info("tflite", info)


def test_numbers_a_backend_reports_win():
    info = {"storage_bytes": 99, "weights": {"w": {"bytes": 5, "stored_values": 1}}}
    assert memory_info("tflite", info)["storage_bytes"] == 99
    assert memory_info("no-such-target", {"a": 1}) == {"a": 1}
