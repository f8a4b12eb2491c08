"""The benchmark and load-generating scripts (see README.md here). A package, so that its modules import one another
by one name (`from bench import loadgen`) whether a script runs as `python bench/run.py` or as `python -m bench.run`,
and so that tests/bench imports them the same way. Nothing here imports `tests/`."""
