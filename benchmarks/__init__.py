"""ci-kit's benchmarks: the speed-up measured side by side, in one run, as ratios.

``python -m benchmarks`` (or ``nox -s bench``) runs every measurement (quick by
default, ``--full`` for all sizes and repetitions), prints a table and writes
``docs/benchmarks/`` (results.json, results.md, chart.png). Nothing here runs in
the test suites, and no test asserts a wall-clock time.
"""
