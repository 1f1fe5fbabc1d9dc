"""Settings from the environment: defaults, overrides and a clear error for a bad value."""

from __future__ import annotations

import pytest

from config import DEFAULT_WORKFLOW_CACHE, load_settings


def test_the_workflow_cache_defaults_and_can_be_set():
    assert load_settings({}).workflow_cache == DEFAULT_WORKFLOW_CACHE
    assert load_settings({"COMPLAINTS_WORKFLOW_CACHE": "750"}).workflow_cache == 750


@pytest.mark.parametrize("raw", ["0", "-3", "lots", "1.5"])
def test_a_bad_workflow_cache_is_refused_by_name(raw):
    with pytest.raises(ValueError, match=f"COMPLAINTS_WORKFLOW_CACHE must be a whole number of at least 1 \\(got '{raw}'\\)"):
        load_settings({"COMPLAINTS_WORKFLOW_CACHE": raw})

