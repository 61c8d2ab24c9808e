"""ci-kit's benchmarks: the speed-up measured side by side, in one run, as ratios.

``python -m benchmarks`` (or ``nox -s bench``) runs every measurement (quick by
default, ``--full`` for all sizes and rounds), every command timed by hyperfine in
rounds that run each variant once (:mod:`benchmarks.hyperfine`), prints a table and
writes ``docs/benchmarks/`` (results.json, results.md, chart.png). The kit's tests
check the benchmarks' own logic (``tests/test_bench_*.py``: the timing rounds, the
seed's way, the breakdown, the report); no test asserts a wall-clock time.
"""
