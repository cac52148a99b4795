"""Fixtures shared by the test modules; plain helpers live in tests/helpers.py."""
from __future__ import annotations

import os

import pytest

from tests.helpers import SHARED_DATA, run, small

# Snapshots from data default to the shared files in tests (and in their subprocesses).
os.environ.setdefault("CARRYSIM_DATA", str(SHARED_DATA))


@pytest.fixture(scope="session")
def default_run():
    """The default scenario at a small size, shared by several tests."""
    cfg = small(paths=3000, months=24)
    return cfg, run(cfg)
