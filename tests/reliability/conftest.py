"""Fixtures of the reliability suite.

``tiny_run`` is the uninterrupted tiny build of tests/workflow (``build_tiny`` of its
conftest: built once per session, whichever test directory asks first), reached through
reliability_harness, which loads that conftest from its file so that nothing is copied.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_harness import workflow


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    return workflow.build_tiny(tmp_path_factory)
