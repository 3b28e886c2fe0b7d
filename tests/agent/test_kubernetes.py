"""deploy/kubernetes validated against Kubernetes' schemas, and the injector answering real
AdmissionReviews: its JSON patch applied to real pod specs and the result validated too."""

from __future__ import annotations

import base64
import copy
import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import kubernetes_validate
import pytest
import yaml

from strongroom.agent.config import parse_agent_config
from strongroom.agent.injector import InjectorSettings, mutate
from tests.agent.helpers import wait_for
from tests.auth.helpers import issue, make_ca
from tests.serverproc import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
K8S_VERSION = kubernetes_validate.latest_version()


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in documents(path):
            if doc.get("kind") != "Kustomization":
                found.append(
                    (f"{path.relative_to(DEPLOY)}:{doc['kind']}/{doc['metadata']['name']}", doc)
                )
    return found


def validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("where", "doc"), manifests(), ids=[m[0] for m in manifests()])
def test_manifest_is_valid(where: str, doc: dict[str, Any]) -> None:
    validate(doc)


def test_validation_catches_mistakes() -> None:
    statefulset = next(d for _, d in manifests() if d["kind"] == "StatefulSet")
    broken = copy.deepcopy(statefulset)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


@pytest.mark.parametrize("directory", [DEPLOY, DEPLOY / "injector"])
def test_kustomization_lists_every_manifest(directory: Path) -> None:
    kustomization = documents(directory / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    present = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for where, doc in manifests():
        if doc["kind"] in ("StatefulSet", "Deployment"):
            found.append((where, doc["spec"]["template"]["spec"]))
    return found


@pytest.mark.parametrize(("where", "spec"), pod_specs(), ids=[p[0] for p in pod_specs()])
def test_pods_are_hardened(where: str, spec: dict[str, Any]) -> None:
    assert spec["automountServiceAccountToken"] is False
    token_volumes = {
        v["name"]
        for v in spec.get("volumes", [])
        if any(
            "serviceAccountToken" in source for source in v.get("projected", {}).get("sources", [])
        )
    }
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] > 0
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec.get("initContainers", []) + spec["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        mounted = {m["name"] for m in container.get("volumeMounts", [])}
        if mounted & token_volumes:  # only the containers that log in or label hold one
            assert container["name"] in (
                "service-registration",
                "strongroom-agent",
                "strongroom-agent-init",
            )


def test_server_manifests_shape() -> None:
    docs = {f"{d['kind']}/{d['metadata']['name']}": d for _, d in manifests()}
    statefulset = docs["StatefulSet/strongroom"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert {
        "name": "VAULT_PG_CONNECTION_URL",
        "valueFrom": {"secretKeyRef": {"name": "strongroom-postgresql", "key": "connection_url"}},
    } in container["env"]
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "strongroom-tls"
    for name in ("strongroom", "strongroom-active", "strongroom-standby", "strongroom-internal"):
        assert f"Service/{name}" in docs
    assert "PodDisruptionBudget/strongroom" in docs and "NetworkPolicy/strongroom" in docs
    sidecar = statefulset["spec"]["template"]["spec"]["containers"][1]
    assert sidecar["args"][0] == "service-registration"
    assert docs["Role/strongroom-service-registration"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}
    ]
    assert docs["Service/strongroom-active"]["spec"]["selector"]["strongroom-active"] == "true"
    config = docs["ConfigMap/strongroom-config"]["data"]["server.hcl"]
    assert 'storage "postgresql"' in config and "tls_cert_file" in config


def test_sidecar_example_agent_config_parses(tmp_path: Path) -> None:
    docs = documents(DEPLOY / "examples" / "agent-sidecar.yaml")
    text = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["agent.hcl"]
    config = parse_agent_config(text, "hcl", str(tmp_path / "agent.hcl"))
    assert config.auto_auth is not None and config.auto_auth.method.type == "kubernetes"
    assert config.auto_auth.sinks[0].mode == 0o600
    assert config.templates[0].destination == "/secrets/database.env"


# -- the injector ---------------------------------------------------------------------

SETTINGS = InjectorSettings(vault_address="https://strongroom.strongroom.svc:8200")


def pod(annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d9c8f-",
            "namespace": "apps",
            "labels": {"app": "web"},
            "annotations": annotations,
        },
        "spec": {
            "serviceAccountName": "web",
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 80}],
                    "volumeMounts": [
                        {
                            "name": "kube-api-access-x7k2p",
                            "readOnly": True,
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        }
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "kube-api-access-x7k2p",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
                        ]
                    },
                }
            ],
            **spec,
        },
    }


def review(obj: dict[str, Any]) -> dict[str, Any]:
    """An AdmissionReview as the API server sends it (admission.k8s.io/v1)."""
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "apps",
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "r-uid",
                "groups": ["system:serviceaccounts"],
            },
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


def patched(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    answer = mutate(review(obj), SETTINGS)
    response = answer["response"]
    assert answer["kind"] == "AdmissionReview" and answer["apiVersion"] == "admission.k8s.io/v1"
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002" and response["allowed"]
    patch = json.loads(base64.b64decode(response["patch"]))
    assert response["patchType"] == "JSONPatch"
    result = jsonpatch.apply_patch(obj, patch)
    validate(result)
    return result, response


def agent_config(container: dict[str, Any]) -> Any:
    env = {e["name"]: e["value"] for e in container["env"]}
    text = base64.b64decode(env["VAULT_CONFIG"]).decode()
    return json.loads(text), parse_agent_config(text, "json", "$VAULT_CONFIG")


ANNOTATED = {
    "vault.hashicorp.com/agent-inject": "true",
    "vault.hashicorp.com/role": "web",
    "vault.hashicorp.com/agent-inject-secret-database-config.txt": "database/creds/db-app",
    "vault.hashicorp.com/agent-inject-secret-app.json": "secret/data/web/config",
    "vault.hashicorp.com/agent-inject-template-app.json": (
        '{{ with secret "secret/data/web/config" }}{{ .Data.data | toJSON }}{{ end }}'
    ),
    "vault.hashicorp.com/agent-limits-cpu": "250m",
    "vault.hashicorp.com/agent-limits-mem": "64Mi",
    "vault.hashicorp.com/agent-requests-cpu": "10m",
}


def test_inject_init_and_sidecar() -> None:
    result, _ = patched(pod(ANNOTATED))
    spec = result["spec"]
    (init,) = spec["initContainers"]
    web, sidecar = spec["containers"]
    assert init["name"] == "strongroom-agent-init" and sidecar["name"] == "strongroom-agent"
    assert {"name": "strongroom-secrets", "mountPath": "/vault/secrets", "readOnly": True} in (
        web["volumeMounts"]
    )
    for agent in (init, sidecar):
        mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}
        assert mounts["/vault/secrets"]["name"] == "strongroom-secrets"
        assert mounts["/var/run/secrets/kubernetes.io/serviceaccount"]["name"] == (
            "kube-api-access-x7k2p"
        )
        assert agent["resources"]["limits"] == {"cpu": "250m", "memory": "64Mi"}
        assert agent["resources"]["requests"] == {"cpu": "10m", "memory": "64Mi"}
        assert agent["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["strongroom-secrets"] == {
        "name": "strongroom-secrets",
        "emptyDir": {"medium": "Memory"},
    }
    assert result["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"] == (
        "injected"
    )
    raw, config = agent_config(init)
    assert config.exit_after_auth and config.auto_auth.method.type == "kubernetes"
    assert config.auto_auth.method.config["role"] == "web"
    assert config.auto_auth.method.mount_path == "auth/kubernetes"
    assert config.vault.address == "https://strongroom.strongroom.svc:8200"
    destinations = {t.destination for t in config.templates}
    assert destinations == {"/vault/secrets/database-config.txt", "/vault/secrets/app.json"}
    default = next(t for t in raw["template"] if t["destination"].endswith("config.txt"))
    assert 'secret "database/creds/db-app"' in default["contents"]
    _, sidecar_config = agent_config(sidecar)
    assert not sidecar_config.exit_after_auth


def test_init_first_and_existing_init_containers() -> None:
    existing = [{"name": "migrate", "image": "app:1", "command": ["migrate"]}]
    annotations = {**ANNOTATED, "vault.hashicorp.com/agent-init-first": "true"}
    result, _ = patched(pod(annotations, initContainers=copy.deepcopy(existing)))
    assert [c["name"] for c in result["spec"]["initContainers"]] == [
        "strongroom-agent-init",
        "migrate",
    ]
    result, _ = patched(pod(ANNOTATED, initContainers=copy.deepcopy(existing)))
    assert [c["name"] for c in result["spec"]["initContainers"]] == [
        "migrate",
        "strongroom-agent-init",
    ]


def test_pre_populate_only_and_no_pre_populate() -> None:
    only = {**ANNOTATED, "vault.hashicorp.com/agent-pre-populate-only": "true"}
    result, _ = patched(pod(only))
    assert [c["name"] for c in result["spec"]["containers"]] == ["web"]
    assert [c["name"] for c in result["spec"]["initContainers"]] == ["strongroom-agent-init"]
    no_init = {**ANNOTATED, "vault.hashicorp.com/agent-pre-populate": "false"}
    result, _ = patched(pod(no_init))
    assert "initContainers" not in result["spec"]
    assert [c["name"] for c in result["spec"]["containers"]] == ["web", "strongroom-agent"]


def test_pod_without_volumes_or_annotations_elsewhere() -> None:
    bare = pod(ANNOTATED)
    del bare["spec"]["volumes"]
    bare["spec"]["containers"][0].pop("volumeMounts")
    result, _ = patched(bare)
    assert result["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] == "/vault/secrets"


@pytest.mark.parametrize(
    "annotations",
    [
        {},
        {"vault.hashicorp.com/agent-inject": "false", "vault.hashicorp.com/role": "web"},
        {**ANNOTATED, "vault.hashicorp.com/agent-inject-status": "injected"},
    ],
)
def test_not_injected(annotations: dict[str, str]) -> None:
    answer = mutate(review(pod(annotations)), SETTINGS)
    assert answer["response"] == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vault.hashicorp.com/role": ""}, "role"),
        ({"vault.hashicorp.com/agent-limits-cpu": "lots"}, "quantity"),
        (
            {"vault.hashicorp.com/agent-inject-template-app.json": "{{ with }}"},
            "template syntax error",
        ),
        ({"vault.hashicorp.com/agent-inject-file-app.json": "../../etc/passwd"}, "inside"),
    ],
)
def test_bad_annotations_refused(change: dict[str, str], message: str) -> None:
    annotations = {**ANNOTATED, **change}
    answer = mutate(review(pod(annotations)), SETTINGS)
    response = answer["response"]
    assert response["allowed"] is False and "patch" not in response
    assert message in response["status"]["message"]


def test_injector_over_https(tmp_path: Path) -> None:
    ca = make_ca("injector-ca")
    cert, key = issue(ca, "strongroom-injector", server=True).write(tmp_path, "injector")
    (tmp_path / "ca.pem").write_text(ca.pem)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strongroom.cli",
            "injector",
            f"-listen=127.0.0.1:{port}",
            f"-tls-cert-file={cert}",
            f"-tls-key-file={key}",
            "-vault-address=https://vault.example:8200",
            "-agent-image=strongroom:test",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context) as http:

            def ready() -> bool:
                try:
                    return http.get("/health/ready").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, timeout=20)
            obj = pod(ANNOTATED)
            answer = http.post("/mutate", json=review(obj)).json()
            patch = json.loads(base64.b64decode(answer["response"]["patch"]))
            result = jsonpatch.apply_patch(obj, patch)
            validate(result)
            sidecar = result["spec"]["containers"][1]
            assert sidecar["image"] == "strongroom:test"
            _, config = agent_config(sidecar)
            assert config.vault.address == "https://vault.example:8200"
            assert http.post("/mutate", content=b"not json").status_code == 400
        with pytest.raises(httpx.TransportError):  # HTTPS only: plain HTTP is dropped
            httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).raise_for_status()
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert code == 0, output
    refused = subprocess.run(
        [sys.executable, "-m", "strongroom.cli", "injector"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 1 and "HTTPS only" in refused.stderr


def test_server_config_in_the_configmap_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.server.config import parse_config

    docs = {f"{d['kind']}/{d['metadata']['name']}": d for _, d in manifests()}
    text = docs["ConfigMap/strongroom-config"]["data"]["server.hcl"]
    monkeypatch.setenv("VAULT_PG_CONNECTION_URL", "postgresql://u:p@db.example:5432/strongroom")
    monkeypatch.setenv("VAULT_API_ADDR", "https://strongroom-0.strongroom-internal:8200")
    config = parse_config(text, "hcl", "/etc/strongroom/config")
    assert config.storage.type == "postgresql" and config.storage.options["ha_enabled"]
    assert config.api_addr == "https://strongroom-0.strongroom-internal:8200"
    listener = config.listeners[0]
    assert listener.tls_cert_file == "/etc/strongroom/tls/tls.crt" and not listener.tls_disable
    env = {
        e["name"]: e
        for e in docs["StatefulSet/strongroom"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["VAULT_API_ADDR"]["value"].startswith("https://$(POD_NAME).strongroom-internal")
