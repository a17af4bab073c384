"""Benchmark-program providers shipped with edgeprune, one module per backend (``providers.<target>``).

A module defines ``PROVIDER``, a ``programs.ProgramProvider``; ``programs.provider_for(target)``
finds it by the target's name, so a backend's artifacts become runnable on devices without
editing the harness.
"""
