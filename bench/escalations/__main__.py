"""`python -m bench.escalations`: the escalation benchmark (bench/escalations/command.py)."""

from bench.escalations.command import main

main()
