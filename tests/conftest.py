"""Fixtures of the test suite.  The shared helpers (the per-rule table, problems, the error
measure) are in rules_table.py: tests import them from there."""

from __future__ import annotations

import pytest

import gdfast
from rules_table import relative_error  # noqa: F401  (test_hogwild*.py import it from here)


@pytest.fixture
def restore_threads():
    yield
    gdfast.set_num_threads(None)
