"""Benchmarks: ``python -m bench`` runs them all, ``python -m bench NAME`` one (``make bench``).

Each public module here (``layers``, later ``build``...) is one benchmark with a ``run(argv)``
function; results go to ``bench/results/NAME.json`` and a summary section in ``bench/README.md``.
"""
