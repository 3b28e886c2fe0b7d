"""Property tests: decrypt(encrypt(x)) == x for every encryption key type, derived or not,
convergent or not, single and batch, across rotations and pinned key versions."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.clock import FakeClock
from strongroom.engines import transit
from strongroom.logical import BackendConfig
from tests.engines.conftest import Caller, FakeSystem, MemoryStorage
from tests.engines.transit.conftest import b64, unb64

# (name, type, derived, convergent)
KEYS = [
    ("aes128", "aes128-gcm96", False, False),
    ("aes256", "aes256-gcm96", False, False),
    ("chacha", "chacha20-poly1305", False, False),
    ("rsa", "rsa-2048", False, False),
    ("aes128-d", "aes128-gcm96", True, False),
    ("aes256-d", "aes256-gcm96", True, False),
    ("chacha-d", "chacha20-poly1305", True, False),
    ("aes128-c", "aes128-gcm96", True, True),
    ("aes256-c", "aes256-gcm96", True, True),
    ("chacha-c", "chacha20-poly1305", True, True),
]
ROTATIONS = 3


class Engine:
    """A transit backend on its own event loop, so hypothesis can drive it synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        storage = MemoryStorage()
        config = BackendConfig("transit", "transit/", "acc", {}, FakeSystem(FakeClock()), storage)
        backend = self.run(transit.factory(config))
        self.caller = Caller(backend, storage)
        for name, key_type, derived, convergent in KEYS:
            self.write(
                f"keys/{name}",
                {"type": key_type, "derived": derived, "convergent_encryption": convergent},
            )
            for _ in range(ROTATIONS - 1):
                self.write(f"keys/{name}/rotate")

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def write(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.run(self.caller.write(path, body or {}))
        return {} if response is None else dict(response.data or {})

    def close(self) -> None:
        self.loop.close()


def _body(derived: bool, context: bytes, version: int) -> dict[str, Any]:
    body: dict[str, Any] = {"key_version": version} if version else {}
    if derived:
        body["context"] = b64(context)
    return body


def test_round_trip_every_key_type() -> None:
    engine = Engine()
    try:

        @settings(max_examples=150, deadline=None)
        @given(
            key=st.sampled_from(KEYS),
            plaintext=st.binary(max_size=190),  # RSA-2048 OAEP-SHA256 holds up to 190 bytes
            context=st.binary(min_size=1, max_size=64),
            version=st.integers(0, ROTATIONS),
        )
        def check(
            key: tuple[str, str, bool, bool], plaintext: bytes, context: bytes, version: int
        ) -> None:
            name, _, derived, convergent = key
            extra = _body(derived, context, version)
            out = engine.write(f"encrypt/{name}", {"plaintext": b64(plaintext)} | extra)
            assert out["key_version"] == (version or ROTATIONS)
            assert out["ciphertext"].startswith(f"vault:v{version or ROTATIONS}:")
            ctx = {"context": extra["context"]} if derived else {}
            back = engine.write(f"decrypt/{name}", {"ciphertext": out["ciphertext"]} | ctx)
            assert unb64(back["plaintext"]) == plaintext
            if convergent:
                again = engine.write(f"encrypt/{name}", {"plaintext": b64(plaintext)} | extra)
                assert again["ciphertext"] == out["ciphertext"]
            rewrapped = engine.write(f"rewrap/{name}", {"ciphertext": out["ciphertext"]} | ctx)
            assert rewrapped["key_version"] == ROTATIONS
            back = engine.write(f"decrypt/{name}", {"ciphertext": rewrapped["ciphertext"]} | ctx)
            assert unb64(back["plaintext"]) == plaintext

        check()
    finally:
        engine.close()


def test_batch_round_trip() -> None:
    engine = Engine()
    try:

        @settings(max_examples=60, deadline=None)
        @given(
            key=st.sampled_from([k for k in KEYS if k[1] != "rsa-2048"]),
            items=st.lists(
                st.tuples(
                    st.binary(max_size=300),
                    st.binary(min_size=1, max_size=16),
                    st.integers(0, ROTATIONS),
                ),
                min_size=1,
                max_size=20,
            ),
        )
        def check(key: tuple[str, str, bool, bool], items: list[tuple[bytes, bytes, int]]) -> None:
            name, _, derived, _ = key
            # odd items carry nothing but the text (the engine's fast path), even ones a reference
            refs = [str(i) if i % 2 == 0 else "" for i in range(len(items))]
            batch = [
                {"plaintext": b64(p)} | ({"reference": r} if r else {}) | _body(derived, c, v)
                for r, (p, c, v) in zip(refs, items, strict=True)
            ]
            results = engine.write(f"encrypt/{name}", {"batch_input": batch})["batch_results"]
            assert [r["reference"] for r in results] == refs
            assert [r["key_version"] for r in results] == [v or ROTATIONS for _, _, v in items]
            decrypt = [
                {"ciphertext": r["ciphertext"]}
                | ({"reference": r["reference"]} if r["reference"] else {})
                | ({"context": b64(c)} if derived else {})
                for r, (_, c, _) in zip(results, items, strict=True)
            ]
            plain = engine.write(f"decrypt/{name}", {"batch_input": decrypt})["batch_results"]
            assert [unb64(r["plaintext"]) for r in plain] == [p for p, _, _ in items]

        check()
    finally:
        engine.close()
