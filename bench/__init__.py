"""Performance benchmark: our exporter against the floor, a naive script and dlt.

``make bench`` (or ``python -m bench.run``) drives everything; see ``bench/README.md``.
"""
