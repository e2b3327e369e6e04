"""Benchmarks of poster-pipeline: each prints measured figures next to their target and a
reference measured in the same run. Run them from the repository root with
``python -m benchmarks.<name>`` or all at once with ``python -m benchmarks.run_all``; see
benchmarks/README.md.
"""
