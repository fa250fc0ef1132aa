"""Stands in for the hiredis package and fails to import, so that redis-py parses replies in Python.

pools.py puts this directory first on a worker's path to run an older checkout as its own
dependencies installed it (without hiredis), beside a current one that has it.
"""

raise ImportError("hiredis is hidden from this process (bench/nohiredis)")
