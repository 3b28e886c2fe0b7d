"""Concurrent bursts against a real server: many connections, started together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx

T = TypeVar("T")


def burst(count: int, action: Callable[[int, httpx.Client], T], *, base_url: str) -> list[T]:
    """Run ``action(i, client)`` in ``count`` threads, each on its own connection (opened
    beforehand), all released by one barrier so the requests really overlap."""
    clients = [httpx.Client(base_url=base_url, timeout=60) for _ in range(count)]
    gate = threading.Barrier(count)

    def one(index: int) -> T:
        client = clients[index]
        client.get("/v1/sys/health")  # open the connection before the gate
        gate.wait(timeout=30)
        return action(index, client)

    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(one, range(count)))
    finally:
        for client in clients:
            client.close()
