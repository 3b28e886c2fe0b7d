from __future__ import annotations

import strongroom.seal


def test_all_exports_exist() -> None:
    for name in strongroom.seal.__all__:
        assert getattr(strongroom.seal, name) is not None


def test_public_names_are_exported() -> None:
    public = {
        name
        for name, value in vars(strongroom.seal).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("strongroom.seal")
        and not isinstance(value, type(strongroom))
    }
    assert public <= set(strongroom.seal.__all__)
