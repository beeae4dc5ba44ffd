"""A pytest plugin loaded inside the task's own environment: per-test coverage contexts.

It is copied next to a link to the coverage package and loaded with PYTEST_PLUGINS, so it must
import nothing from treefix (the task's venv does not have it). Each test runs in a coverage
context named by its pytest node id; code run outside any test (imports, collection) stays in the
empty context, which fault localisation ignores.
"""

from __future__ import annotations

import os

import pytest

_cov = None


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


def pytest_unconfigure(config: pytest.Config) -> None:
    global _cov
    if _cov is not None:
        _cov.stop()
        _cov.save()
        _cov = None
