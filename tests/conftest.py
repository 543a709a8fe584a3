import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """Real media from ../shared/data; tests that need it skip in a user's clone where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test media not found at {SHARED_DATA} (only present in the project workspace)")
    return SHARED_DATA


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (still part of make test)")
    # keep torch from oversubscribing the 2-core CI machine when several processes run
    os.environ.setdefault("OMP_NUM_THREADS", "2")
