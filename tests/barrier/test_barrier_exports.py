from __future__ import annotations

import strongroom.barrier


def test_all_exports_exist() -> None:
    for name in strongroom.barrier.__all__:
        assert getattr(strongroom.barrier, name) is not None


def test_public_names_are_exported() -> None:
    public = {
        name
        for name, value in vars(strongroom.barrier).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("strongroom.")
    }
    assert public <= set(strongroom.barrier.__all__)
