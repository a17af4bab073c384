from edgeprune.errors import first_line


def test_first_line_quotes_one_line_of_a_foreign_exception():
    assert first_line(ValueError("  bad header\nTraceback details\n")) == "bad header"
    assert first_line(RuntimeError("")) == "RuntimeError"  # an empty message still says something
    assert first_line(OSError("x" * 300)) == "x" * 200
    assert first_line(OSError("x" * 300), limit=None) == "x" * 300
    assert first_line(KeyError("k"), limit=10) == "'k'"
