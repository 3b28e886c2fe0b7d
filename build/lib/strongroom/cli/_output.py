"""Rendering responses the way Vault's CLI does: tables, JSON, YAML and raw fields.

Pure functions from data to text; the commands decide where the text goes. Tables follow
Vault's ``columnize`` layout (columns padded to the widest cell, joined by four spaces, a rule of
dashes under the header); values print as Go's ``%v`` would (``[a b]``, ``map[k:v]``, ``<nil>``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = [
    "FORMATS",
    "columns",
    "field_value",
    "go_value",
    "header_for_map",
    "human_duration",
    "pad_equal_signs",
    "render",
    "render_data",
    "render_field",
    "render_list",
    "render_secret",
    "secret_rows",
    "table",
]

FORMATS = ("table", "json", "yaml")
_GLUE = "    "
_AUTH_FIELDS = ("token", "token_accessor", "token_duration", "token_renewable")
_AUTH_LISTS = ("token_policies", "identity_policies", "policies")


def go_value(value: object) -> str:
    """Go's ``fmt.Sprintf("%v", v)`` for decoded JSON."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    return str(value)


def _go_quoted(values: object) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    items = values if isinstance(values, list) else []
    return "[" + " ".join(json.dumps(str(v)) for v in items) + "]"


def looks_like_duration(key: str) -> bool:
    return key in ("period", "ttl", "duration", "lease_max", "ttl_max") or key.endswith(
        ("_period", "_ttl", "_duration")
    )


def _as_seconds(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return None


def human_duration(value: object) -> str:
    """Seconds as Vault prints them: 2764800 -> ``768h``, 90 -> ``1m30s``; others unchanged."""
    seconds = _as_seconds(value)
    if seconds is None:
        return go_value(value)
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        text = f"{hours}h{minutes}m{secs}s"
    elif minutes:
        text = f"{minutes}m{secs}s"
    else:
        text = f"{secs}s"
    # Vault's humanDuration trims "m0s" and "h0m" from Go's Duration.String().
    if text.endswith("m0s"):
        text = text[:-2]
    text = text.replace("h0m", "h", 1) if "h0m" in text else text
    return sign + text


def columns(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns joined by four spaces; the last column is not padded."""
    if not rows:
        return ""
    count = max(len(r) for r in rows)
    widths = [0] * count
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append(_GLUE.join(cells).rstrip())
    return "\n".join(lines)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A header row, a rule of dashes under each header cell, then the rows."""
    rule = ["-" * len(h) for h in header]
    return columns([list(header), rule, *rows])


def pad_equal_signs(header: str, width: int) -> str:
    """Vault's section headers: ``== Secret Path ==`` centred over ``width`` characters."""
    signs = (width - (len(header) + 2)) // 2
    if signs <= 0:
        return header
    return f"{'=' * signs} {header} {'=' * signs}"


def header_for_map(header: str, data: Mapping[str, object]) -> str:
    longest = max((len(k) for k in data), default=0)
    return pad_equal_signs(header, longest + len(_GLUE) + len("Value"))


def secret_rows(secret: Mapping[str, Any]) -> list[list[str]]:
    """The Key/Value rows of Vault's TableFormatter.OutputSecret."""
    rows: list[list[str]] = []
    lease = secret.get("lease_duration") or 0
    if isinstance(lease, int) and lease > 0:
        if secret.get("lease_id"):
            rows.append(["lease_id", str(secret["lease_id"])])
            rows.append(["lease_duration", human_duration(lease)])
            rows.append(["lease_renewable", go_value(bool(secret.get("renewable")))])
        else:
            # A lease without an ID (KV v1): Vault calls it refresh_interval.
            rows.append(["refresh_interval", human_duration(lease)])
    auth = secret.get("auth")
    if isinstance(auth, Mapping):
        duration = auth.get("lease_duration") or 0
        rows.append(["token", go_value(auth.get("client_token", ""))])
        rows.append(["token_accessor", go_value(auth.get("accessor", ""))])
        rows.append(["token_duration", "∞" if not duration else human_duration(duration)])
        rows.append(["token_renewable", go_value(bool(auth.get("renewable")))])
        rows.append(["token_policies", _go_quoted(auth.get("token_policies"))])
        rows.append(["identity_policies", _go_quoted(auth.get("identity_policies"))])
        rows.append(["policies", _go_quoted(auth.get("policies"))])
        metadata = auth.get("metadata")
        if isinstance(metadata, Mapping):
            rows.extend([f"token_meta_{k}", go_value(metadata[k])] for k in sorted(metadata))
    wrap = secret.get("wrap_info")
    if isinstance(wrap, Mapping):
        rows.append(["wrapping_token:", go_value(wrap.get("token", ""))])
        rows.append(["wrapping_accessor:", go_value(wrap.get("accessor", ""))])
        rows.append(["wrapping_token_ttl:", human_duration(wrap.get("ttl", 0))])
        rows.append(["wrapping_token_creation_time:", go_value(wrap.get("creation_time", ""))])
        rows.append(["wrapping_token_creation_path:", go_value(wrap.get("creation_path", ""))])
        if wrap.get("wrapped_accessor"):
            rows.append(["wrapped_accessor:", go_value(wrap["wrapped_accessor"])])
    data = secret.get("data")
    if isinstance(data, Mapping):
        rows.extend(_data_rows(data))
    return rows


def _data_rows(data: Mapping[str, object]) -> list[list[str]]:
    rows = []
    for key in sorted(data):
        value = data[key]
        text = human_duration(value) if looks_like_duration(key) else go_value(value)
        rows.append([key, text])
    return rows


def render_json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


_PLAIN = re.compile(r"^[A-Za-z_/.][A-Za-z0-9_ ./-]*$")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"})


def _yaml_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS and not text.endswith(" "):
        return text
    return json.dumps(text, ensure_ascii=False)


def render_yaml(value: object, indent: int = 0) -> str:
    """A small YAML emitter for JSON-shaped data (sorted keys, as Vault's ghodss/yaml)."""
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            return pad + "{}"
        lines = []
        for key in sorted(value):
            item = value[key]
            name = _yaml_scalar(str(key))
            if isinstance(item, Mapping | list) and item:
                lines.append(f"{pad}{name}:")
                lines.append(render_yaml(item, indent + (2 if isinstance(item, Mapping) else 0)))
            else:
                lines.append(f"{pad}{name}: {render_yaml(item).strip()}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return pad + "[]"
        lines = []
        for item in value:
            body = render_yaml(item, indent + 2).strip()
            lines.append(f"{pad}- {body}")
        return "\n".join(lines)
    return pad + _yaml_scalar(value)


def render(value: object, fmt: str) -> str:
    """JSON or YAML of any value."""
    return render_yaml(value) if fmt == "yaml" else render_json(value)


def render_secret(secret: Mapping[str, Any], fmt: str) -> str:
    """A whole response: the Key/Value table, or the full JSON/YAML document."""
    if fmt != "table":
        return render(dict(secret), fmt)
    rows = secret_rows(secret)
    return table(["Key", "Value"], rows) if rows else ""


def render_data(data: Mapping[str, object], fmt: str) -> str:
    """A plain map as a Key/Value table (Vault's OutputData)."""
    if fmt != "table":
        return render(dict(data), fmt)
    return table(["Key", "Value"], _data_rows(data)) if data else ""


def render_list(keys: Sequence[object], fmt: str) -> str:
    """``Keys`` and a rule, then one key a line; JSON/YAML print the list itself, as Vault."""
    if fmt != "table":
        return render(list(keys), fmt)
    return table(["Keys"], [[go_value(k)] for k in keys])


def field_value(secret: Mapping[str, Any], name: str) -> object:
    """Vault's extractDataFromSecret: auth and wrapping fields first, then data."""
    auth = secret.get("auth")
    if isinstance(auth, Mapping):
        found = {
            "token": auth.get("client_token"),
            "token_accessor": auth.get("accessor"),
            "token_duration": auth.get("lease_duration"),
            "token_renewable": auth.get("renewable"),
            "token_policies": auth.get("token_policies"),
            "identity_policies": auth.get("identity_policies"),
            "policies": auth.get("policies"),
        }
        if name in found and found[name] is not None:
            return found[name]
    wrap = secret.get("wrap_info")
    if isinstance(wrap, Mapping):
        found = {
            "wrapping_token": wrap.get("token"),
            "wrapping_accessor": wrap.get("accessor"),
            "wrapping_token_ttl": wrap.get("ttl"),
            "wrapping_token_creation_time": wrap.get("creation_time"),
            "wrapping_token_creation_path": wrap.get("creation_path"),
            "wrapped_accessor": wrap.get("wrapped_accessor"),
        }
        if name in found and found[name] is not None:
            return found[name]
    data = secret.get("data")
    if isinstance(data, Mapping) and name in data:
        return data[name]
    if name in ("lease_id", "lease_duration", "renewable") and name in secret:
        return secret[name]
    if name == "refresh_interval" and secret.get("lease_duration"):
        return secret["lease_duration"]
    return None


def render_field(value: object, fmt: str) -> str:
    """A single field: raw text in table format, otherwise JSON/YAML of the value."""
    if fmt == "table":
        return go_value(value)
    return render(value, fmt)
