"""``strongroom injector``: a mutating admission webhook that adds the agent to annotated pods,
reading Vault's ``vault.hashicorp.com/*`` annotations so existing manifests keep working.

For a pod with ``vault.hashicorp.com/agent-inject: "true"`` and a ``role``, the answer to the
AdmissionReview is a JSON patch that adds an in-memory volume mounted at ``/vault/secrets`` in
every container, an init container that renders the secrets once and exits
(``exit_after_auth``), and a sidecar that keeps them fresh. Annotations read:

- ``role``, ``auth-path`` (``auth/kubernetes``), ``service`` (the server address),
  ``tls-skip-verify``, ``ca-cert``, ``namespace``;
- ``agent-inject-secret-<name>: <path>`` (a file ``/vault/secrets/<name>`` with the secret's
  data as ``key: value`` lines, Vault's default template), ``agent-inject-template-<name>``
  (a template of one's own), ``agent-inject-file-<name>`` (another file name),
  ``agent-inject-perms-<name>``, ``agent-inject-command-<name>``, ``secret-volume-path``;
- ``agent-init-first`` (the init container goes first), ``agent-pre-populate`` (default true:
  the init container), ``agent-pre-populate-only`` (no sidecar);
- ``agent-limits-cpu``, ``agent-limits-mem``, ``agent-limits-ephemeral``,
  ``agent-requests-cpu``, ``agent-requests-mem``, ``agent-requests-ephemeral``.

The agent's configuration travels base64-encoded in the ``VAULT_CONFIG`` variable, as Vault's
injector sends it, so the agent needs no writable file system. A pod already injected
(``agent-inject-status: injected``) is left alone. Bad annotations are refused with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn

from .config import AgentConfigError, parse_agent_config

__all__ = ["InjectionError", "InjectorSettings", "main", "mutate", "patch_for_pod"]

log = logging.getLogger("strongroom.injector")

PREFIX = "vault.hashicorp.com/"
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"  # noqa: S105 - a path
DEFAULT_TEMPLATE = (
    '{{ with secret "%s" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}'
)
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class InjectionError(ValueError):
    """The annotations cannot be turned into an agent; the pod is refused with this message."""


_DEFAULT_ADDRESS = "https://strongroom.strongroom.svc:8200"
_DEFAULT_IMAGE = "strongroom:0.1.0"
_DEFAULT_AUTH_PATH = "auth/kubernetes"


@dataclass(frozen=True, slots=True)
class InjectorSettings:
    vault_address: str = _DEFAULT_ADDRESS
    image: str = _DEFAULT_IMAGE
    auth_path: str = _DEFAULT_AUTH_PATH
    run_as_user: int = 100
    run_as_group: int = 1000


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "t", "yes", "on")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _agent_config(
    annotations: Mapping[str, str], settings: InjectorSettings, init: bool
) -> dict[str, Any]:
    role = annotations.get(PREFIX + "role", "")
    if not role:
        raise InjectionError(f'"{PREFIX}role" is required to inject the agent')
    volume_path = annotations.get(PREFIX + "secret-volume-path", "/vault/secrets").rstrip("/")
    templates: list[dict[str, Any]] = []
    secrets = sorted(
        (key[len(PREFIX + "agent-inject-secret-") :], value)
        for key, value in annotations.items()
        if key.startswith(PREFIX + "agent-inject-secret-")
    )
    for name, path in secrets:
        if not name or not _NAME.match(name) or not path:
            raise InjectionError(f'bad secret annotation "agent-inject-secret-{name}"')
        contents = annotations.get(PREFIX + f"agent-inject-template-{name}") or (
            DEFAULT_TEMPLATE % path.replace('"', '\\"')
        )
        file_name = annotations.get(PREFIX + f"agent-inject-file-{name}", name).lstrip("/")
        if ".." in file_name.split("/"):
            raise InjectionError(f'"agent-inject-file-{name}" must stay inside the volume')
        template: dict[str, Any] = {
            "destination": f"{volume_path}/{file_name}",
            "contents": contents,
            "left_delimiter": "{{",
            "right_delimiter": "}}",
        }
        perms = annotations.get(PREFIX + f"agent-inject-perms-{name}")
        if perms:
            template["perms"] = perms
        command = annotations.get(PREFIX + f"agent-inject-command-{name}")
        if command and not init:
            template["command"] = command
        templates.append(template)
    vault: dict[str, Any] = {"address": annotations.get(PREFIX + "service", settings.vault_address)}
    if _flag(annotations.get(PREFIX + "tls-skip-verify"), False):
        vault["tls_skip_verify"] = True
    if annotations.get(PREFIX + "ca-cert"):
        vault["ca_cert"] = annotations[PREFIX + "ca-cert"]
    if annotations.get(PREFIX + "namespace"):
        vault["namespace"] = annotations[PREFIX + "namespace"]
    config: dict[str, Any] = {
        "auto_auth": {
            "method": [
                {
                    "type": "kubernetes",
                    "mount_path": annotations.get(PREFIX + "auth-path", settings.auth_path),
                    "config": {"role": role, "token_path": f"{TOKEN_MOUNT}/token"},
                }
            ],
            "sink": [{"type": "file", "config": {"path": "/home/vault/.vault-token"}}],
        },
        "exit_after_auth": init,
        "pid_file": "/home/vault/.pid",
        "vault": vault,
        "template_config": {"exit_on_retry_failure": True},
    }
    if templates:
        config["template"] = templates
    # refuse now what the agent would refuse at start (a bad template, say)
    try:
        parse_agent_config(json.dumps(config), "json", "<injected agent config>")
    except AgentConfigError as exc:
        raise InjectionError(f"the agent configuration is invalid: {exc}") from None
    return config


def _resources(annotations: Mapping[str, str]) -> dict[str, dict[str, str]]:
    resources: dict[str, dict[str, str]] = {
        "limits": {"cpu": "500m", "memory": "128Mi"},
        "requests": {"cpu": "250m", "memory": "64Mi"},
    }
    for kind in ("limits", "requests"):
        for suffix, key in (("cpu", "cpu"), ("mem", "memory"), ("ephemeral", "ephemeral-storage")):
            value = annotations.get(PREFIX + f"agent-{kind}-{suffix}")
            if value is None:
                continue
            if value == "":
                resources[kind].pop(key, None)
                continue
            if not _QUANTITY.match(value):
                raise InjectionError(f'"agent-{kind}-{suffix}" is not a Kubernetes quantity')
            resources[kind][key] = value
    return resources


def _container(
    name: str,
    config: dict[str, Any],
    resources: dict[str, dict[str, str]],
    mounts: list[dict[str, Any]],
    settings: InjectorSettings,
) -> dict[str, Any]:
    encoded = base64.b64encode(json.dumps(config).encode()).decode()
    return {
        "name": name,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["agent"],
        "env": [
            {"name": "VAULT_CONFIG", "value": encoded},
            {"name": "HOME", "value": "/home/vault"},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        ],
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_group,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }


def patch_for_pod(pod: Mapping[str, Any], settings: InjectorSettings) -> list[dict[str, Any]]:
    """The JSON patch (RFC 6902) that injects the agent into ``pod``; ``[]`` when the pod does
    not ask for it (or already has it).

    Raises:
        InjectionError: the annotations ask for the agent but cannot configure it.
    """
    metadata = pod.get("metadata") or {}
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    if not _flag(annotations.get(PREFIX + "agent-inject"), False):
        return []
    if annotations.get(PREFIX + "agent-inject-status") == "injected":
        return []
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    pre_populate_only = _flag(annotations.get(PREFIX + "agent-pre-populate-only"), False)
    pre_populate = _flag(annotations.get(PREFIX + "agent-pre-populate"), True) or pre_populate_only
    init_first = _flag(annotations.get(PREFIX + "agent-init-first"), False)
    resources = _resources(annotations)
    volume_path = annotations.get(PREFIX + "secret-volume-path", "/vault/secrets").rstrip("/")

    # the service-account token the kubernetes auth method logs in with
    token_mount: dict[str, Any] | None = None
    for container in containers:
        for mount in container.get("volumeMounts") or []:
            if mount.get("mountPath") == TOKEN_MOUNT:
                token_mount = {"name": mount["name"], "mountPath": TOKEN_MOUNT, "readOnly": True}
                break
        if token_mount:
            break

    secrets_mount = {"name": "strongroom-secrets", "mountPath": volume_path}
    ops: list[dict[str, Any]] = []
    volumes = [
        {"name": "strongroom-secrets", "emptyDir": {"medium": "Memory"}},
        {"name": "strongroom-home-init", "emptyDir": {"medium": "Memory"}},
        {"name": "strongroom-home-sidecar", "emptyDir": {"medium": "Memory"}},
    ]
    if spec.get("volumes"):
        ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in volumes]
    else:
        ops.append({"op": "add", "path": "/spec/volumes", "value": volumes})
    for index, container in enumerate(containers):
        if container.get("volumeMounts"):
            ops.append(
                {
                    "op": "add",
                    "path": f"/spec/containers/{index}/volumeMounts/-",
                    "value": {**secrets_mount, "readOnly": True},
                }
            )
        else:
            ops.append(
                {
                    "op": "add",
                    "path": f"/spec/containers/{index}/volumeMounts",
                    "value": [{**secrets_mount, "readOnly": True}],
                }
            )

    def mounts(home: str) -> list[dict[str, Any]]:
        found = [secrets_mount, {"name": home, "mountPath": "/home/vault"}]
        return found + ([token_mount] if token_mount else [])

    if pre_populate:
        init = _container(
            "strongroom-agent-init",
            _agent_config(annotations, settings, init=True),
            resources,
            mounts("strongroom-home-init"),
            settings,
        )
        if not spec.get("initContainers"):
            ops.append({"op": "add", "path": "/spec/initContainers", "value": [init]})
        elif init_first:
            ops.append({"op": "add", "path": "/spec/initContainers/0", "value": init})
        else:
            ops.append({"op": "add", "path": "/spec/initContainers/-", "value": init})
    if not pre_populate_only:
        sidecar = _container(
            "strongroom-agent",
            _agent_config(annotations, settings, init=False),
            resources,
            mounts("strongroom-home-sidecar"),
            settings,
        )
        ops.append({"op": "add", "path": "/spec/containers/-", "value": sidecar})
    status: dict[str, Any] = {"op": "add", "value": "injected"}
    if metadata.get("annotations"):
        status["path"] = "/metadata/annotations/" + _escape(PREFIX + "agent-inject-status")
    else:
        status = {
            "op": "add",
            "path": "/metadata/annotations",
            "value": {PREFIX + "agent-inject-status": "injected"},
        }
    ops.append(status)
    return ops


def mutate(review: Mapping[str, Any], settings: InjectorSettings) -> dict[str, Any]:
    """Answer an AdmissionReview (admission.k8s.io/v1 or v1beta1)."""
    request = review.get("request") or {}
    uid = request.get("uid", "")
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    kind = (request.get("kind") or {}).get("kind")
    pod = request.get("object")
    if kind == "Pod" and isinstance(pod, dict) and request.get("operation", "CREATE") == "CREATE":
        try:
            patch = patch_for_pod(pod, settings)
        except InjectionError as exc:
            response = {
                "uid": uid,
                "allowed": False,
                "status": {"code": 400, "message": f"strongroom injector: {exc}"},
            }
        else:
            if patch:
                response["patchType"] = "JSONPatch"
                response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }


class _App:
    def __init__(self, settings: InjectorSettings) -> None:
        self.settings = settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
            if len(body) > 4 * 1024 * 1024:
                await _answer(send, 413, {"error": "request too large"})
                return
        path = scope["path"]
        if path in ("/health/ready", "/healthz"):
            await _answer(send, 200, {})
            return
        if path != "/mutate" or scope["method"] != "POST":
            await _answer(send, 404, {"error": "not found"})
            return
        try:
            review = json.loads(body)
            if not isinstance(review, dict):
                raise ValueError("not an object")
        except ValueError:
            await _answer(send, 400, {"error": "the body is not an AdmissionReview"})
            return
        answer = mutate(review, self.settings)
        log.info(
            "pod %s/%s: %s",
            (review.get("request") or {}).get("namespace", ""),
            ((review.get("request") or {}).get("object") or {})
            .get("metadata", {})
            .get("generateName", ""),
            "injected"
            if answer["response"].get("patch")
            else ("refused" if not answer["response"]["allowed"] else "skipped"),
        )
        await _answer(send, 200, answer)


async def _answer(send: Any, status: int, payload: Mapping[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """``strongroom injector``: serve the webhook over HTTPS until SIGTERM."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="strongroom injector")
    parser.add_argument("-listen", "--listen", default=env.get("AGENT_INJECT_LISTEN", ":8080"))
    parser.add_argument(
        "-tls-cert-file", "--tls-cert-file", default=env.get("AGENT_INJECT_TLS_CERT_FILE", "")
    )
    parser.add_argument(
        "-tls-key-file", "--tls-key-file", default=env.get("AGENT_INJECT_TLS_KEY_FILE", "")
    )
    parser.add_argument(
        "-vault-address",
        "--vault-address",
        default=env.get("AGENT_INJECT_VAULT_ADDR", _DEFAULT_ADDRESS),
    )
    parser.add_argument(
        "-agent-image",
        "--agent-image",
        default=env.get("AGENT_INJECT_VAULT_IMAGE", _DEFAULT_IMAGE),
    )
    parser.add_argument(
        "-auth-path",
        "--auth-path",
        default=env.get("AGENT_INJECT_VAULT_AUTH_PATH", _DEFAULT_AUTH_PATH),
    )
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if not args.tls_cert_file or not args.tls_key_file:
        sys.stderr.write("the injector serves HTTPS only: -tls-cert-file and -tls-key-file\n")
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s")
    settings = InjectorSettings(args.vault_address, args.agent_image, args.auth_path.strip("/"))
    host, _, port = args.listen.rpartition(":")
    config = uvicorn.Config(
        _App(settings),
        host=host.strip("[]") or "0.0.0.0",  # noqa: S104 - a webhook serves the cluster
        port=int(port),
        ssl_certfile=args.tls_cert_file,
        ssl_keyfile=args.tls_key_file,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    server = _Server(config)

    async def serve() -> None:
        import signal

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
        log.info("injector listening on %s", args.listen)
        await server.serve()

    asyncio.run(serve())
    return 0
