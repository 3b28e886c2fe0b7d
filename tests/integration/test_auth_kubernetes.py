"""kubernetes through hvac over HTTP on the dev server; TokenReview is answered by a small
HTTPS server in this process, with a throwaway CA the server is told to trust."""

from __future__ import annotations

import json
import time
from typing import Any

import hvac
import hvac.exceptions
import pytest
from joserfc.jwk import RSAKey

from tests.auth.helpers import issue, make_ca, serve, sign, tls_files
from tests.serverproc import ServerProcess

MOUNT = "kubernetes-it"


def service_account_token(key: RSAKey, namespace: str, name: str, jti: str = "1") -> str:
    now = int(time.time())
    claims = {
        "jti": jti,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "aud": ["strongroom"],
        "iat": now,
        "exp": now + 600,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "u-1"}},
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }
    return sign(claims, key)


def test_login_confirmed_by_token_review(
    dev_server: ServerProcess, root_client: hvac.Client
) -> None:
    key = RSAKey.generate_key(2048)
    good = service_account_token(key, "apps", "web")
    other_ns = service_account_token(key, "kube-system", "web")
    reviews: list[dict[str, Any]] = []

    def review(path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        request = json.loads(body)
        reviews.append({"auth": headers.get("authorization"), **request})
        ok = request["spec"]["token"] == good
        status: dict[str, Any] = {"authenticated": ok}
        if ok:
            status["user"] = {"username": "system:serviceaccount:apps:web", "uid": "u-1"}
        return 201, {**request, "status": status}

    ca = make_ca("k8s-it-ca")
    with tls_files(issue(ca, "k8s-api", server=True)) as files, serve({}, tls=files) as api:
        api.routes["/apis/authentication.k8s.io/v1/tokenreviews"] = review
        root_client.sys.enable_auth_method("kubernetes", path=MOUNT)
        root_client.auth.kubernetes.configure(
            kubernetes_host=api.url,
            kubernetes_ca_cert=ca.pem,
            token_reviewer_jwt="reviewer-token",
            mount_point=MOUNT,
        )
        root_client.auth.kubernetes.create_role(
            "web",
            bound_service_account_names=["web"],
            bound_service_account_namespaces=["apps"],
            policies=["web-secrets"],
            ttl="15m",
            mount_point=MOUNT,
        )
        config = root_client.auth.kubernetes.read_config(mount_point=MOUNT)
        assert config["token_reviewer_jwt_set"] is True and "token_reviewer_jwt" not in config

        client = dev_server.client()
        answer = client.auth.kubernetes.login("web", good, mount_point=MOUNT)["auth"]
        assert answer["policies"] == ["default", "web-secrets"]
        assert 890 <= answer["lease_duration"] <= 900
        info = client.auth.token.lookup_self()["data"]
        assert info["meta"]["service_account_name"] == "web"
        assert info["meta"]["service_account_namespace"] == "apps"
        assert info["meta"]["service_account_uid"] == "u-1"
        assert info["display_name"] == f"{MOUNT}-apps-web"
        assert reviews[-1]["auth"] == "Bearer reviewer-token"
        assert reviews[-1]["spec"]["token"] == good

        count = len(reviews)
        with pytest.raises(hvac.exceptions.Forbidden):
            dev_server.client().auth.kubernetes.login("web", other_ns, mount_point=MOUNT)
        assert len(reviews) == count  # refused by the role before asking the API
        # a token the cluster no longer honours (its account was deleted, say)
        stale = service_account_token(key, "apps", "web", jti="2")
        with pytest.raises(hvac.exceptions.Forbidden):
            dev_server.client().auth.kubernetes.login("web", stale, mount_point=MOUNT)
        assert reviews[-1]["spec"]["token"] == stale


def test_ca_bundle_with_several_certificates_and_no_local_ca(
    dev_server: ServerProcess, root_client: hvac.Client
) -> None:
    """kubernetes_ca_cert holding a bundle (an unrelated CA, an intermediate and its root,
    with text between them as `kubectl config view --raw` and openssl print it), with
    disable_local_ca_jwt: the API server's certificate, issued by the intermediate, is
    trusted through the bundle."""
    key = RSAKey.generate_key(2048)
    token = service_account_token(key, "apps", "bundle")
    root = make_ca("k8s-bundle-root")
    intermediate = make_ca("k8s-bundle-intermediate", issuer=root)
    unrelated = make_ca("some-other-ca")
    bundle = unrelated.pem + intermediate.pem + root.pem
    annotated = (
        f"# unrelated\n{unrelated.pem}"
        f"subject=CN=k8s-bundle-intermediate\n{intermediate.pem}\r\n"
        f"{root.pem}"
    )

    def review(path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        request = json.loads(body)
        user = {"username": "system:serviceaccount:apps:bundle", "uid": "u-1"}
        status = {"authenticated": True, "user": user}
        return 201, {**request, "status": status}

    mount = "kubernetes-bundle"
    with (
        tls_files(issue(intermediate, "k8s-api", server=True)) as files,
        serve({}, tls=files) as api,
    ):
        api.routes["/apis/authentication.k8s.io/v1/tokenreviews"] = review
        root_client.sys.enable_auth_method("kubernetes", path=mount)
        root_client.auth.kubernetes.configure(
            kubernetes_host=api.url,
            kubernetes_ca_cert=bundle,
            token_reviewer_jwt="reviewer",
            disable_local_ca_jwt=True,
            mount_point=mount,
        )
        config = root_client.auth.kubernetes.read_config(mount_point=mount)
        assert config["kubernetes_ca_cert"] == bundle and config["disable_local_ca_jwt"] is True
        root_client.auth.kubernetes.create_role(
            "bundle",
            bound_service_account_names=["bundle"],
            bound_service_account_namespaces=["apps"],
            policies=["p"],
            mount_point=mount,
        )
        answer = dev_server.client().auth.kubernetes.login("bundle", token, mount_point=mount)
        assert answer["auth"]["policies"] == ["default", "p"]
        # the same bundle with text between the certificates (as openssl and kubectl print
        # them); hvac refuses such text client-side, so it goes over httpx
        http = dev_server.http(dev_server.root_token)
        resp = http.post(
            f"/v1/auth/{mount}/config",
            json={"kubernetes_host": api.url, "kubernetes_ca_cert": annotated},
        )
        assert resp.status_code == 204, resp.text
        answer = dev_server.client().auth.kubernetes.login("bundle", token, mount_point=mount)
        assert answer["auth"]["policies"] == ["default", "p"]
        # a bundle without the issuing chain is refused at login (TLS does not verify)
        root_client.auth.kubernetes.configure(
            kubernetes_host=api.url,
            kubernetes_ca_cert=unrelated.pem,
            disable_local_ca_jwt=True,
            mount_point=mount,
        )
        with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
            dev_server.client().auth.kubernetes.login("bundle", token, mount_point=mount)
    # a bundle with nothing usable is refused when written
    with pytest.raises(hvac.exceptions.InvalidRequest, match="kubernetes_ca_cert"):
        root_client.auth.kubernetes.configure(
            kubernetes_host="https://127.0.0.1:1",
            kubernetes_ca_cert="-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----",
            mount_point=mount,
        )
