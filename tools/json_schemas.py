"""Write the JSON Schema of every public message to docs/schemas/<Name>.json.

    .venv/bin/python -m tools.json_schemas           # write (make schemas)
    .venv/bin/python -m tools.json_schemas --check   # exit 1 if a file is missing or stale

The messages are the pydantic models of schemas/ that cross the engine's boundary:
the intake (ComplaintIntake, with its Customer), every action of
schemas.actions.ACTIONS, CaseState, TimelineEvent, CaseOutcome, the roster's
models and the problem door's answer (DoorResult). The base class `Action` is
left out: no one sends it alone.

A message the engine takes (an InputMessage) is described as it is validated;
a message it sends (an OutputMessage) as it is serialized. Each file is the
schema of `model_json_schema()` with "$schema" added, keys sorted, 2-space
indent and a trailing newline, so the files change only when a model does.
docs/contract.md lists them; tests/unit/test_contract_schemas.py checks they are current.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

import schemas
from schemas.actions import ACTIONS, Action
from schemas.common import InputMessage
from schemas.door import DoorResult

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "docs" / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def message_models() -> dict[str, type[BaseModel]]:
    """Every public message model by its class name, sorted by name."""
    found: dict[str, type[BaseModel]] = {}
    for name in schemas.__all__:
        value = getattr(schemas, name)
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not Action:
            found[value.__name__] = value
    for model in ACTIONS.values():
        found[model.__name__] = model
    found[DoorResult.__name__] = DoorResult
    return dict(sorted(found.items()))


def schema_file(model: type[BaseModel], directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{model.__name__}.json"


def render(model: type[BaseModel]) -> str:
    """The file's text: the model's JSON Schema, keys sorted, 2-space indent, trailing newline."""
    mode = "validation" if issubclass(model, InputMessage) else "serialization"
    schema = {"$schema": DIALECT, **model.model_json_schema(mode=mode)}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected(directory: Path = SCHEMA_DIR) -> dict[Path, str]:
    return {schema_file(model, directory): render(model) for model in message_models().values()}


def check(directory: Path = SCHEMA_DIR) -> list[str]:
    """One line per file that is missing, stale or no longer generated; empty when all are current."""
    wanted = expected(directory)
    problems = []
    for path, text in wanted.items():
        if not path.exists():
            problems.append(f"missing: {_shown(path)}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"stale: {_shown(path)}")
    if directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            if path not in wanted:
                problems.append(f"stale (no such message): {_shown(path)}")
    return problems


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Write every file that is missing or stale, remove those of messages that are gone; returns what changed."""
    wanted = expected(directory)
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for path, text in wanted.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(f"wrote {_shown(path)}")
    for path in sorted(directory.glob("*.json")):
        if path not in wanted:
            path.unlink()
            changed.append(f"removed {_shown(path)}")
    return changed


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.json_schemas", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 listing files that are missing or stale")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="where the files are (default: docs/schemas)")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.dir)
        for line in problems:
            print(line)
        if problems:
            print(f"{len(problems)} schema file(s) out of date: run `make schemas`", file=sys.stderr)
            return 1
        print(f"{len(message_models())} schema files are current")
        return 0
    for line in write(args.dir):
        print(line)
    print(f"{len(message_models())} schema files in {_shown(args.dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
