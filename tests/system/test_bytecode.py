"""The workflow modules' bytecode, written at the worker's start (stack/bytecode.py)."""

from __future__ import annotations



def test_the_workflow_modules_are_compiled_for_the_sandbox(tmp_path, monkeypatch):
    """The sandbox imports a workflow's module for every case it loads: with the bytecode on disk the
    import loads it instead of compiling the source again, even where PYTHONDONTWRITEBYTECODE is set."""
    import importlib.machinery
    import importlib.util
    import py_compile
    import sys

    from stack.bytecode import compile_for_the_sandbox

    package = tmp_path / "sandboxed_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text("class Flow:\n    pass\n\n\nclass Other:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    from sandboxed_pkg.flows import Flow, Other  # type: ignore[import-not-found]

    loader = importlib.machinery.SourceFileLoader("sandboxed_pkg.flows", str(package / "flows.py"))
    compiles: list[str] = []
    original = importlib.machinery.SourceFileLoader.source_to_code

    def counting(self, data, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        compiles.append(path)
        return original(self, data, path, *args, **kwargs)

    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "source_to_code", counting)
    loader.get_code("sandboxed_pkg.flows")
    assert len(compiles) == 1, "without bytecode on disk every import compiles the source"

    assert compile_for_the_sandbox([Flow, Other]) == ["sandboxed_pkg.flows"]  # each module once
    compiles.clear()
    loader.get_code("sandboxed_pkg.flows")
    loader.get_code("sandboxed_pkg.flows")
    assert compiles == [], "the imports compiled the source although its bytecode was written"

    def unwritable(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(py_compile, "compile", unwritable)
    assert compile_for_the_sandbox([Flow]) == []  # left as it was, never an error
