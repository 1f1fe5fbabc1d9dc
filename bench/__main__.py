"""`python -m bench`: the engine against bare Temporal (bench/lifecycle.py)."""

from bench.lifecycle import main

main()
