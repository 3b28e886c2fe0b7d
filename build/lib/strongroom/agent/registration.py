"""``strongroom service-registration``: label a server's pod with its HA role, for the
``strongroom-active`` / ``strongroom-standby`` Services (what Vault's
``service_registration "kubernetes"`` does inside the server; here a small sidecar).

Every ``-interval`` (5 s) it asks the server beside it for ``sys/health`` and, when the answer
changed, patches its own pod's labels through the Kubernetes API (a JSON merge patch):

================================  ======  ======  ===========  ============
``sys/health``                    active  sealed  initialized  perf-standby
================================  ======  ======  ===========  ============
200 active                        true    false   true         false
429 standby                       false   false   true         false
473 performance standby           false   false   true         true
501 not initialized               false   true    false        false
503 sealed                        false   true    true         false
================================  ======  ======  ===========  ============

(each label is ``strongroom-<column>``).

It needs ``get``/``patch`` on pods in its namespace (a Role) and a service-account token: the
projected one at ``/var/run/secrets/kubernetes.io/serviceaccount``, re-read every time (it
rotates). An unreachable server changes nothing (the pod fails its readiness probe anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Mapping, Sequence

import httpx

__all__ = ["labels_for", "main", "register_once"]

log = logging.getLogger("strongroom.registration")

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def labels_for(status: int) -> dict[str, str] | None:
    """The labels for a ``sys/health`` status (None: a status that says nothing)."""
    table = {
        200: ("true", "false", "true", "false"),
        429: ("false", "false", "true", "false"),
        473: ("false", "false", "true", "true"),
        501: ("false", "true", "false", "false"),
        503: ("false", "true", "true", "false"),
    }
    if status not in table:
        return None
    active, sealed, initialized, perf = table[status]
    return {
        "strongroom-active": active,
        "strongroom-sealed": sealed,
        "strongroom-initialized": initialized,
        "strongroom-perf-standby": perf,
    }


async def register_once(
    server: httpx.AsyncClient,
    kube: httpx.AsyncClient,
    pod_path: str,
    token_file: str,
    last: dict[str, str] | None,
) -> dict[str, str] | None:
    """One round: read the health, patch the labels if they changed; the labels now set."""
    try:
        health = await server.get("/v1/sys/health")
    except httpx.TransportError as exc:
        log.warning("the server did not answer: %s", type(exc).__name__)
        return last
    labels = labels_for(health.status_code)
    if labels is None or labels == last:
        return last
    try:
        with open(token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        log.error("cannot read the service-account token: %s", exc.strerror)
        return last
    try:
        answer = await kube.patch(
            pod_path,
            json={"metadata": {"labels": labels}},
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/merge-patch+json",
            },
        )
    except httpx.TransportError as exc:
        log.warning("the Kubernetes API did not answer: %s", type(exc).__name__)
        return last
    if answer.status_code >= 400:
        log.error("patching the pod's labels failed: HTTP %d", answer.status_code)
        return last
    log.info("labels: %s", ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
    return labels


def _verify(ca_file: str, skip: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file or None)
    if skip:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="strongroom service-registration")
    parser.add_argument("-address", "--address", default="https://127.0.0.1:8200")
    parser.add_argument("-ca-cert", "--ca-cert", default="")
    parser.add_argument(
        "-tls-skip-verify",
        "--tls-skip-verify",
        action="store_true",
        help="for a loopback address whose certificate names the pod's DNS name",
    )
    parser.add_argument("-kubernetes-api", "--kubernetes-api", default="")
    parser.add_argument("-service-account-dir", "--service-account-dir", default=SA_DIR)
    parser.add_argument("-namespace", "--namespace", default=env.get("POD_NAMESPACE", ""))
    parser.add_argument("-pod", "--pod", default=env.get("POD_NAME", ""))
    parser.add_argument("-interval", "--interval", type=float, default=5.0)
    parser.add_argument("-once", "--once", action="store_true")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if not args.namespace or not args.pod:
        sys.stderr.write("-namespace and -pod are required (or POD_NAMESPACE and POD_NAME)\n")
        return 1
    api = args.kubernetes_api
    if not api:
        host = env.get("KUBERNETES_SERVICE_HOST", "")
        port = env.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            sys.stderr.write("no -kubernetes-api and no KUBERNETES_SERVICE_HOST\n")
            return 1
        api = f"https://{host}:{port}"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s")
    sa_dir = args.service_account_dir
    pod_path = f"/api/v1/namespaces/{args.namespace}/pods/{args.pod}"

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        server_verify: ssl.SSLContext | bool = False
        if args.address.startswith("https"):
            server_verify = _verify(args.ca_cert, args.tls_skip_verify)
        kube_verify = _verify(os.path.join(sa_dir, "ca.crt"), False)
        async with (
            httpx.AsyncClient(
                base_url=args.address, verify=server_verify, timeout=5, trust_env=False
            ) as server,
            httpx.AsyncClient(
                base_url=api, verify=kube_verify, timeout=10, trust_env=False
            ) as kube,
        ):
            last: dict[str, str] | None = None
            while True:
                last = await register_once(
                    server, kube, pod_path, os.path.join(sa_dir, "token"), last
                )
                if args.once:
                    return 0 if last is not None else 1
                try:
                    await asyncio.wait_for(stop.wait(), timeout=args.interval)
                    return 0
                except TimeoutError:
                    pass

    return asyncio.run(run())
