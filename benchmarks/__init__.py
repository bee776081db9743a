"""Reproducible performance harness (``make bench``).

Each measured job runs in a child process of its own (``python -m benchmarks.jobs``), so its
wall time and peak RSS are its own; the sandbox runs in yet another process so it never shares
the connector's GIL. Every scenario is printed beside its baseline from the same run.
"""
