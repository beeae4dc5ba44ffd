"""A pytest plugin loaded inside the task's own environment: per-test coverage contexts.

It is copied next to a link to the coverage package and loaded with PYTEST_PLUGINS, so it must
import nothing from treefix (the task's venv does not have it). Each test runs in a coverage
context named by its pytest node id; code run outside any test (imports, collection) stays in the
empty context (localise.py credits it to the tests that use the module). A failing test's
traceback frames inside the project and its exception message go to `<data file>.failures.json`.
"""

from __future__ import annotations

import json
import os

import pytest

_cov = None
_failures: dict[str, dict] = {}  # node id -> the failing test's traceback frames and message


def pytest_configure(config: pytest.Config) -> None:
    global _cov
    out = os.environ.get("TREEFIX_COVERAGE_FILE")
    if not out or _cov is not None:
        return
    import coverage

    # config_file=False: the project's own coverage settings (omit, plugins) must not change what we see.
    _cov = coverage.Coverage(data_file=out, source=[os.getcwd()], config_file=False)
    _cov.start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    if _cov is not None:
        _cov.switch_context(item.nodeid)
    yield
    if _cov is not None:
        _cov.switch_context("")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if _cov is None or not report.failed or call.excinfo is None:
        return
    root = os.getcwd() + os.sep
    frames = []
    for entry in call.excinfo.traceback:  # outermost first
        path = str(entry.path)
        if path.startswith(root):
            frames.append([path[len(root) :], entry.lineno + 1])
    try:
        message = str(call.excinfo.value)[:2000]
    except Exception:  # a broken __str__ must not break the run
        message = ""
    _failures[item.nodeid] = {"frames": frames, "message": message}


def pytest_unconfigure(config: pytest.Config) -> None:
    global _cov
    if _cov is not None:
        _cov.stop()
        _cov.save()
        with open(os.environ["TREEFIX_COVERAGE_FILE"] + ".failures.json", "w") as fh:
            json.dump(_failures, fh)
        _cov = None
