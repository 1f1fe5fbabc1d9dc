"""Small maintenance scripts of the repository (run from its root with `python -m tools.<name>`)."""
