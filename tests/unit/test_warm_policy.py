"""The warm kernels' budget and idle timeout, as the user sets them (kernel/warm.py)."""

from __future__ import annotations

import os

import pytest

from nbseal.errors import NbsealError
from nbseal.kernel.warm import WarmPolicy, resident_mb


def test_the_warm_policy_reads_its_settings_and_refuses_nonsense() -> None:
    policy = WarmPolicy.from_environ({"NBSEAL_WARM_MB": "300", "NBSEAL_WARM_IDLE": "60"})
    assert (policy.budget_mb, policy.idle_seconds) == (300, 60)
    assert policy.room_for_another([100, 90])  # 190 + 100 <= 300
    assert not policy.room_for_another([100, 150])  # 250 + 150 > 300
    assert not WarmPolicy(budget_mb=0).room_for_another([])  # 0: none beyond the first
    with pytest.raises(NbsealError, match="NBSEAL_WARM_MB='lots' is not a number of MB"):
        WarmPolicy.from_environ({"NBSEAL_WARM_MB": "lots"})


def test_resident_memory_is_read_from_proc() -> None:
    size = resident_mb(os.getpid())
    assert size is not None
    assert size > 5  # this Python has imported pytest
    assert resident_mb(None) is None
