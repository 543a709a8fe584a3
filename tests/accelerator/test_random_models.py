"""A fixed set of random plain-Conv3d models through transmute, deploy, fp32 / int8 programs and per-layer lowerings,
each checked against torch (random_models.py says what is checked; a longer sweep runs from there, opt-in)."""
import pytest

from .random_models import check_seed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_random_models_match_torch():
    checked, problems = 0, {}
    for seed in range(60):
        found = check_seed(seed)
        if found and found[0].startswith("skipped"):
            continue
        checked += 1
        if found:
            problems[seed] = found
    assert checked >= 25  # the generator still makes models the path takes
    assert not problems, problems
