"""Benchmarks of abmhub: `python -m benchmarks <suite> ...` (see benchmarks/__main__.py).

Each suite is a module with `add_arguments(parser)` and `main(args) -> int`, built on the
shared pieces in `benchmarks.harness` (databases, servers, timing, reports). Results go to
`benchmarks/results/<suite>-<backend>-<UTC timestamp>.json`.
"""
