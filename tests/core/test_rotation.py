"""sys/rotate/config's decision (pure): when the barrier's data key is due for rotation."""

from __future__ import annotations

from strongroom.core.system.keys import MAX_OPERATIONS, RotateConfig, rotation_due

DAY = 86400


def test_defaults_rotate_only_near_the_operation_limit() -> None:
    config = RotateConfig()
    assert not rotation_due(config, install_time=0, encryptions=10, now=365 * DAY)
    assert rotation_due(config, install_time=0, encryptions=MAX_OPERATIONS, now=1)


def test_interval_and_operations_and_disabled() -> None:
    config = RotateConfig(interval=2 * DAY, max_operations=1_000_000)
    assert not rotation_due(config, install_time=100, encryptions=0, now=100 + 2 * DAY - 1)
    assert rotation_due(config, install_time=100, encryptions=0, now=100 + 2 * DAY)
    assert rotation_due(config, install_time=100, encryptions=1_000_000, now=101)
    off = RotateConfig(enabled=False, interval=DAY, max_operations=1_000_000)
    assert not rotation_due(off, install_time=0, encryptions=10**9, now=10 * DAY)
