"""Drills: the engine under faults (issue 5). `python -m drills.crash` kills workers, restarts servers, cuts the database."""
