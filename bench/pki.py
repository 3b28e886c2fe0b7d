"""PKI benchmark: issuing, signing and OCSP over HTTP; CRL rebuild and RSS at 100,000 certs.

``python bench/pki.py [--seconds 10] [--concurrency 16] [--certs 100000]`` (from the
repository root, with the project's virtualenv):

1. starts ``strongroom server -dev``, mounts ``pki/`` with an EC P-256 root, and measures
   for ``--seconds`` each, with ``--concurrency`` requests in flight (httpx, HTTP/1.1):
   ``issue`` with an EC P-256 role and with an RSA-2048 role, ``sign`` of an EC P-256 CSR,
   and ``POST ocsp``, with the server's CPU time per request (user + system, all threads,
   from /proc: unmoved by what the client and neighbours take); each issue figure is also
   given as a ratio to ``cryptography`` doing the same key generation and signing in this
   process on one thread, both as measured (req/s) and as the server's CPU allows;
2. in-process (the real core over SQLite and the barrier, driven through its ASGI app):
   stores ``--certs`` real leaf certificates signed by the mount's root and revokes them
   all (written through the engine's store, not 100,000 HTTP requests), then times
   ``crl/rotate`` twice (target < 5 s; the second with the storage cache warm); then
   reports this process's RSS (the core's ciphertext cache of up to 131,072 entries is
   most of it).

Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from bench.run import cpu_seconds, free_port, wait_port  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509 import ocsp  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

Call = Callable[[httpx.AsyncClient], Awaitable[None]]


async def rate(seconds: float, concurrency: int, call: Call, url: str) -> tuple[float, int]:
    """Requests per second over ``seconds`` with ``concurrency`` workers; (rate, errors)."""
    done = 0
    errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < deadline:
                try:
                    await call(client)
                    done += 1
                except Exception:
                    errors += 1

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - start
    return done / elapsed, errors, done


def baseline_issue(kind: str, seconds: float) -> float:
    """In-process: key generation plus signing a comparable leaf, one thread; operations
    per CPU-second."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.UTC)
    count = 0
    deadline = time.monotonic() + seconds
    cpu_start = time.process_time()
    while time.monotonic() < deadline:
        key: Any = (
            ec.generate_private_key(ec.SECP256R1())
            if kind == "ec"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName("a.example.com")]), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        count += 1
    # per second of this thread's CPU: neighbours on a shared box do not move it
    return count / max(time.process_time() - cpu_start, 1e-9)


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    log = open(workdir / "server.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strongroom.server",
            "-dev",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-dir={workdir / 'dev'}",
        ],
        stdout=log,
        stderr=log,
    )
    wait_port(port)
    deadline = time.monotonic() + 30
    token = ""
    while time.monotonic() < deadline and not token:
        for line in (workdir / "server.log").read_text(errors="replace").splitlines():
            if line.startswith("Root Token: "):
                token = line.split(": ", 1)[1].strip()
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}", token


async def http_benchmarks(seconds: float, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, token = start_server(Path(tmp))
        try:
            headers = {"X-Vault-Token": token}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                http.post("/v1/sys/mounts/pki", json={"type": "pki"}).raise_for_status()
                ca = http.post(
                    "/v1/pki/root/generate/internal",
                    json={"common_name": "Bench Root", "key_type": "ec", "ttl": "760h"},
                ).json()["data"]
                for role, key_type, bits in (("ec", "ec", 256), ("rsa", "rsa", 2048)):
                    http.post(
                        f"/v1/pki/roles/{role}",
                        json={"allow_any_name": True, "key_type": key_type, "key_bits": bits},
                    ).raise_for_status()
                leaf = http.post(
                    "/v1/pki/issue/ec", json={"common_name": "ocsp.bench", "ttl": "1h"}
                ).json()["data"]
            csr_key = ec.generate_private_key(ec.SECP256R1())
            csr = (
                x509.CertificateSigningRequestBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.bench")]))
                .sign(csr_key, hashes.SHA256())
                .public_bytes(serialization.Encoding.PEM)
                .decode()
            )
            ca_cert = x509.load_pem_x509_certificate(ca["certificate"].encode())
            leaf_cert = x509.load_pem_x509_certificate(leaf["certificate"].encode())
            ocsp_der = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(leaf_cert, ca_cert, hashes.SHA256())
                .build()
                .public_bytes(serialization.Encoding.DER)
            )

            def poster(
                path: str, body: dict[str, Any]
            ) -> Callable[[httpx.AsyncClient], Awaitable[None]]:
                async def call(client: httpx.AsyncClient) -> None:
                    response = await client.post(path, json=body, headers=headers)
                    response.raise_for_status()

                return call

            async def ocsp_call(client: httpx.AsyncClient) -> None:
                response = await client.post(
                    "/v1/pki/ocsp",
                    content=ocsp_der,
                    headers={"Content-Type": "application/ocsp-request"},
                )
                response.raise_for_status()

            rows = []
            for label, call, kind in (
                (
                    "issue EC P-256",
                    poster("/v1/pki/issue/ec", {"common_name": "a.bench", "ttl": "1h"}),
                    "ec",
                ),
                (
                    "issue RSA-2048",
                    poster("/v1/pki/issue/rsa", {"common_name": "a.bench", "ttl": "1h"}),
                    "rsa",
                ),
                ("sign EC P-256 CSR", poster("/v1/pki/sign/ec", {"csr": csr, "ttl": "1h"}), ""),
                ("OCSP (POST)", ocsp_call, ""),
            ):
                before = cpu_seconds(proc.pid)
                per_second, errors, done = await rate(seconds, concurrency, call, url)
                cpu_ms = (cpu_seconds(proc.pid) - before) / max(done, 1) * 1000
                base = baseline_issue(kind, min(seconds, 5.0)) if kind else 0.0
                rows.append((label, per_second, errors, cpu_ms, base))
            print(
                f"{'operation':<20}{'req/s':>9}{'errors':>7}{'server CPU/req':>16}"
                f"{'in-process/CPU-s':>18}{'ratio':>7}{'CPU ratio':>11}"
            )
            for label, per_second, errors, cpu_ms, base in rows:
                ratio = f"{per_second / base:.2f}" if base else ""
                # what the server's own CPU time per request allows, against the same work
                # done in-process: robust to the CPU the client and neighbours take
                cpu_ratio = f"{1000 / cpu_ms / base:.2f}" if base and cpu_ms else ""
                base_text = f"{base:.0f}/s" if base else ""
                print(
                    f"{label:<20}{per_second:>9.1f}{errors:>7}{cpu_ms:>13.2f} ms"
                    f"{base_text:>18}{ratio:>7}{cpu_ratio:>11}"
                )
        finally:
            proc.terminate()
            proc.wait()


async def crl_benchmark(count: int) -> None:
    from strongroom.server.wiring import assemble

    with tempfile.TemporaryDirectory() as tmp:
        assembly = await assemble("sqlite", {"path": f"{tmp}/db.sqlite"})
        core = assembly.core
        keys, root_token = await core.initialize(1, 1)
        await core.seal_manager.submit_unseal_key(keys[0])
        await core.after_unseal()
        await core.enable("pki/", "pki", is_auth=False, options={})
        app = assembly.app

        async def call(
            method: str, path: str, body: dict[str, Any] | None = None
        ) -> tuple[int, bytes]:
            raw = b"" if body is None else __import__("json").dumps(body).encode()
            scope: dict[str, Any] = {
                "type": "http",
                "method": method,
                "path": path,
                "query_string": b"",
                "headers": [
                    (b"x-vault-token", root_token.encode()),
                    (b"content-length", b"%d" % len(raw)),
                ],
                "client": ("127.0.0.1", 1),
            }
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": raw, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await app(scope, receive, send)
            return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

        status, _ = await call(
            "POST",
            "/v1/pki/root/generate/internal",
            {"common_name": "CRL Root", "key_type": "ec", "ttl": "760h"},
        )
        assert status == 200
        backend: Any = core.router.get("pki/").backend  # type: ignore[union-attr]
        store = backend.store
        issuer = (await store.issuers())[0]
        ca_cert = store.cert(issuer.certificate)
        ca_key = store.private_key(await store.key(issuer.key_id))
        from strongroom.engines.pki._crypto import cert_der, format_serial
        from strongroom.engines.pki._store import RevokedRecord

        leaf_key = ec.generate_private_key(ec.SECP256R1())
        start_rss = _rss_mib()
        now = datetime.datetime.now(datetime.UTC)
        started = time.monotonic()
        batch: list[Any] = []
        for i in range(count):
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"c{i}.bench")]))
                .issuer_name(ca_cert.subject)
                .public_key(leaf_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(hours=24))
                .sign(ca_key, hashes.SHA256())
            )
            serial, der = format_serial(cert.serial_number), cert_der(cert)
            batch.append(store.put_cert(serial, der))
            batch.append(store.put_revoked(RevokedRecord(serial, der, time.time(), issuer.id)))
            if len(batch) >= 512:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
        print(f"stored and revoked {count} certificates in {time.monotonic() - started:.1f} s")
        for label in ("first", "second"):
            started = time.monotonic()
            status, body = await call("POST", "/v1/pki/crl/rotate")
            elapsed = time.monotonic() - started
            assert status == 200, (status, body)
            status, der = await call("GET", "/v1/pki/crl")
            crl = x509.load_der_x509_crl(der)
            print(
                f"crl/rotate with {len(crl)} revoked ({label}): {elapsed:.2f} s "
                f"(target < 5 s); CRL {len(der) / 1e6:.1f} MB"
            )
        started = time.monotonic()
        status, _ = await call("LIST", "/v1/pki/certs")
        print(f"certs LIST ({count + 1} keys): {time.monotonic() - started:.2f} s")
        gc.collect()
        current = _rss_mib()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"RSS of this process (core + SQLite + PKI, {count} stored and revoked certs, "
            f"after the CRL rebuilds): {current:.0f} MiB (at start {start_rss:.0f} MiB; peak "
            f"{peak:.0f} MiB, which includes generating the certificates here)"
        )
        await core.seal()


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--certs", type=int, default=100_000)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-crl", action="store_true")
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        print("note: openssl not found (not needed here)")
    if not args.skip_http:
        asyncio.run(http_benchmarks(args.seconds, args.concurrency))
    if not args.skip_crl:
        asyncio.run(crl_benchmark(args.certs))


if __name__ == "__main__":
    main()
