"""kubernetes driven directly: real service-account-shaped JWTs (legacy and projected), local
verification with pem_keys, and TokenReview answered by a real HTTPS server made here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from strongroom.auth import kubernetes
from strongroom.auth.kubernetes import _backend as k8s_backend
from strongroom.errors import InvalidRequest, PermissionDenied
from tests.auth.conftest import AuthCaller, MakeAuth
from tests.auth.helpers import issue, make_ca, public_pem, serve, sign, tls_files

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000
UID = "aa9aa8ff-98d0-11e7-9bb7-0800276d99bf"


@pytest.fixture(scope="module")
def sa_key() -> RSAKey:
    return RSAKey.generate_key(2048)


def legacy(namespace: str = "default", name: str = "vault-auth", uid: str = UID) -> dict:
    prefix = "kubernetes.io/serviceaccount/"
    return {
        "iss": "kubernetes/serviceaccount",
        prefix + "namespace": namespace,
        prefix + "secret.name": f"{name}-token-pd21c",
        prefix + "service-account.name": name,
        prefix + "service-account.uid": uid,
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }


def projected(namespace: str = "apps", name: str = "web", **extra: Any) -> dict:
    claims = {
        "iss": "https://kubernetes.default.svc.cluster.local",
        "aud": ["vault"],
        "iat": NOW - 10,
        "exp": NOW + 3600,
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": "web-0", "uid": "pod-uid"},
            "serviceaccount": {"name": name, "uid": "sa-uid-" + name},
        },
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }
    claims.update(extra)
    return claims


@pytest.fixture
async def kube(make_auth: MakeAuth, sa_key: RSAKey) -> AuthCaller:
    caller = await make_auth(kubernetes.factory, "kubernetes")
    await caller.write("config", {"kubernetes_host": "", "pem_keys": [public_pem(sa_key)]})
    await caller.write(
        "role/dev",
        {
            "bound_service_account_names": "vault-auth,web",
            "bound_service_account_namespaces": ["default", "apps"],
            "policies": "dev",
            "ttl": "1h",
        },
    )
    return caller


async def k8s_login(caller: AuthCaller, token: str, role: str = "dev", **kwargs: Any):
    return await caller.login("login", {"role": role, "jwt": token}, **kwargs)


async def test_legacy_token_with_local_keys(kube: AuthCaller, sa_key: RSAKey) -> None:
    auth = await k8s_login(kube, sign(legacy(), sa_key))
    assert auth.alias_name == UID
    assert auth.display_name == "default-vault-auth"
    assert auth.metadata == {
        "role": "dev",
        "service_account_name": "vault-auth",
        "service_account_namespace": "default",
        "service_account_secret_name": "vault-auth-token-pd21c",
        "service_account_uid": UID,
    }
    assert auth.policies == ("dev",) and auth.ttl == 3600


async def test_projected_token_and_alias_by_name(kube: AuthCaller, sa_key: RSAKey) -> None:
    auth = await k8s_login(kube, sign(projected(), sa_key))
    assert auth.alias_name == "sa-uid-web"
    await kube.write("role/dev", {"alias_name_source": "serviceaccount_name"})
    auth = await k8s_login(kube, sign(projected(), sa_key))
    assert auth.alias_name == "apps/web"
    with pytest.raises(PermissionDenied, match="expired"):
        await k8s_login(kube, sign(projected(exp=NOW - 61), sa_key))


async def test_bound_names_and_namespaces_are_globs(kube: AuthCaller, sa_key: RSAKey) -> None:
    with pytest.raises(PermissionDenied, match="namespace not authorized"):
        await k8s_login(kube, sign(legacy(namespace="kube-system"), sa_key))
    with pytest.raises(PermissionDenied, match="service account name not authorized"):
        await k8s_login(kube, sign(legacy(name="other"), sa_key))
    await kube.write(
        "role/glob",
        {"bound_service_account_names": "web-*", "bound_service_account_namespaces": "*"},
    )
    await k8s_login(kube, sign(legacy(namespace="any", name="web-frontend"), sa_key), "glob")
    with pytest.raises(PermissionDenied):
        await k8s_login(kube, sign(legacy(name="webfrontend"), sa_key), "glob")
    with pytest.raises(InvalidRequest, match="can not mix"):
        await kube.write(
            "role/bad",
            {"bound_service_account_names": "*,x", "bound_service_account_namespaces": "*"},
        )
    with pytest.raises(InvalidRequest, match="must be set"):
        await kube.write("role/bad", {"bound_service_account_names": "x"})
    with pytest.raises(InvalidRequest, match="alias_name_source"):
        await kube.write("role/dev", {"alias_name_source": "pod"})


async def test_signature_issuer_and_audience(
    kube: AuthCaller, sa_key: RSAKey, make_auth: MakeAuth
) -> None:
    stranger = ECKey.generate_key("P-256")
    with pytest.raises(PermissionDenied, match="signature"):
        await k8s_login(kube, sign(legacy(), stranger, "ES256"))
    await kube.write(
        "config",
        {"pem_keys": [public_pem(sa_key)], "disable_iss_validation": False},
    )
    await k8s_login(kube, sign(legacy(), sa_key))
    with pytest.raises(PermissionDenied, match="issuer"):
        await k8s_login(kube, sign(projected(), sa_key))
    await kube.write(
        "config",
        {
            "pem_keys": [public_pem(sa_key)],
            "disable_iss_validation": False,
            "issuer": "https://kubernetes.default.svc.cluster.local",
        },
    )
    await kube.write("role/dev", {"audience": "vault"})
    await k8s_login(kube, sign(projected(), sa_key))
    await k8s_login(kube, sign(projected(aud="vault"), sa_key))  # a string aud works too
    for aud in ("other", ["other"], None):
        token = sign({k: v for k, v in projected(aud=aud).items() if v is not None}, sa_key)
        with pytest.raises(PermissionDenied, match="aud"):
            await k8s_login(kube, token)


async def test_config_validation_and_read(kube: AuthCaller) -> None:
    with pytest.raises(InvalidRequest, match="kubernetes_host or pem_keys"):
        await kube.write("config", {})
    with pytest.raises(InvalidRequest, match="pem_keys"):
        await kube.write(
            "config", {"pem_keys": "-----BEGIN NONSENSE-----\nAAAA\n-----END NONSENSE-----"}
        )
    await kube.write(
        "config", {"kubernetes_host": "k8s.example:6443", "token_reviewer_jwt": "abc.def.ghi"}
    )
    read = await kube.read("config")
    assert read is not None and read.data["kubernetes_host"] == "https://k8s.example:6443"
    assert read.data["token_reviewer_jwt_set"] is True
    assert "abc.def.ghi" not in json.dumps(read.data)


def review_handler(valid: dict[str, dict], seen: list[dict]):
    """A TokenReview endpoint: tokens in ``valid`` are authenticated as the given user."""

    def handle(path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        request = json.loads(body)
        seen.append({"authorization": headers.get("authorization"), **request})
        if headers.get("authorization") == "Bearer refused":
            return 403, {"kind": "Status", "message": "forbidden"}
        user = valid.get(request["spec"]["token"])
        status: dict[str, Any] = {"authenticated": user is not None}
        if user is not None:
            status["user"] = user
            status["audiences"] = request["spec"].get(
                "audiences", ["https://kubernetes.default.svc"]
            )
        return 201, {**request, "status": status}

    return handle


async def test_token_review_over_https(make_auth: MakeAuth, sa_key: RSAKey) -> None:
    ca = make_ca("k8s-ca")
    good = sign(projected(), sa_key)
    deleted = sign(projected(name="gone"), sa_key)
    impostor = sign(projected(jti="2"), sa_key)  # the API says it belongs to someone else
    valid = {
        good: {"username": "system:serviceaccount:apps:web", "uid": "sa-uid-web"},
        impostor: {"username": "system:serviceaccount:apps:admin", "uid": "x"},
    }
    seen: list[dict] = []
    caller = await make_auth(kubernetes.factory, "kubernetes")
    with tls_files(issue(ca, "api", server=True)) as files, serve({}, tls=files) as api:
        api.routes["/apis/authentication.k8s.io/v1/tokenreviews"] = review_handler(valid, seen)
        await caller.write(
            "config",
            {
                "kubernetes_host": api.url,
                "kubernetes_ca_cert": ca.pem,
                "token_reviewer_jwt": "reviewer",
            },
        )
        await caller.write(
            "role/web",
            {
                "bound_service_account_names": ["web", "gone"],
                "bound_service_account_namespaces": "apps",
                "audience": "vault",
                "token_policies": "web",
            },
        )
        auth = await k8s_login(caller, good, "web")
        assert auth.alias_name == "sa-uid-web" and auth.policies == ("web",)
        assert seen[-1]["authorization"] == "Bearer reviewer"
        assert seen[-1]["spec"] == {"token": good, "audiences": ["vault"]}
        assert seen[-1]["kind"] == "TokenReview"
        with pytest.raises(PermissionDenied, match="deleted or recreated"):
            await k8s_login(caller, deleted, "web")
        with pytest.raises(PermissionDenied, match="names did not match"):
            await k8s_login(caller, impostor, "web")
        hits = len(api.hits)
        with pytest.raises(PermissionDenied, match="namespace not authorized"):
            await k8s_login(caller, sign(projected(namespace="other"), sa_key), "web")
        assert len(api.hits) == hits  # refused before asking the API
        # without a reviewer JWT the client's own token asks about itself
        await caller.write("config", {"kubernetes_host": api.url, "kubernetes_ca_cert": ca.pem})
        await k8s_login(caller, good, "web")
        assert seen[-1]["authorization"] == f"Bearer {good}"
        await caller.write(
            "config",
            {
                "kubernetes_host": api.url,
                "kubernetes_ca_cert": ca.pem,
                "token_reviewer_jwt": "refused",
            },
        )
        with pytest.raises(PermissionDenied, match="refused the reviewer"):
            await k8s_login(caller, good, "web")
        # the API's certificate must chain to kubernetes_ca_cert
        other_ca = make_ca("other")
        await caller.write(
            "config",
            {
                "kubernetes_host": api.url,
                "kubernetes_ca_cert": other_ca.pem,
                "disable_local_ca_jwt": True,
            },
        )
        with pytest.raises(InvalidRequest, match="TokenReview: request failed"):
            await k8s_login(caller, good, "web")


async def test_pod_local_ca_and_token_fill_in(
    make_auth: MakeAuth, sa_key: RSAKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = make_ca("k8s-ca")
    (tmp_path / "ca.crt").write_text(ca.pem)
    (tmp_path / "token").write_text("pod-token\n")
    monkeypatch.setattr(k8s_backend, "LOCAL_CA_PATH", str(tmp_path / "ca.crt"))
    monkeypatch.setattr(k8s_backend, "LOCAL_JWT_PATH", str(tmp_path / "token"))
    good = sign(legacy(), sa_key)
    seen: list[dict] = []
    user = {"username": "system:serviceaccount:default:vault-auth", "uid": UID}
    caller = await make_auth(kubernetes.factory, "kubernetes")
    with tls_files(issue(ca, "api", server=True)) as files, serve({}, tls=files) as api:
        api.routes["/apis/authentication.k8s.io/v1/tokenreviews"] = review_handler(
            {good: user}, seen
        )
        await caller.write("config", {"kubernetes_host": api.url})
        await caller.write(
            "role/r",
            {"bound_service_account_names": "*", "bound_service_account_namespaces": "*"},
        )
        await k8s_login(caller, good, "r")
        assert seen[-1]["authorization"] == "Bearer pod-token"


async def test_renewal_hook_and_cidrs(kube: AuthCaller, sa_key: RSAKey) -> None:
    await kube.write("role/dev", {"token_bound_cidrs": "10.0.0.0/8"})
    with pytest.raises(PermissionDenied):
        await k8s_login(kube, sign(legacy(), sa_key))
    auth = await k8s_login(kube, sign(legacy(), sa_key), remote_addr="10.1.1.1")
    assert (await kube.renew(auth)).ttl == 3600
    await kube.delete("role/dev")
    with pytest.raises(InvalidRequest, match="no longer exists"):
        await kube.renew(auth)
