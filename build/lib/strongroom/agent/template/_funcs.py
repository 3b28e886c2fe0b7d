"""The functions templates call: Go's text/template built-ins and consul-template's own
(the ones that need no Consul). ``secret`` and ``secrets`` are supplied per render by the
caller, since they fetch from the server."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from ._exec import MISSING, TemplateExecError, go_format, truth

__all__ = ["BUILTINS", "go_sprintf", "go_time_format"]


# -- Go's built-ins -----------------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    return None if value is MISSING else value


def _basic_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None or value is MISSING:
        return "nil"
    return "other"


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise ValueError("missing argument for comparison")
    left = _comparable(first)
    for other in others:
        right = _comparable(other)
        kinds = {_basic_kind(left), _basic_kind(right)}
        if len(kinds) > 1 and "nil" not in kinds:
            raise ValueError("incompatible types for comparison")
        if left == right:
            return True
    return False


def _ne(left: Any, right: Any) -> bool:
    return not _eq(left, right)


def _ordered(left: Any, right: Any) -> tuple[Any, Any]:
    kinds = {_basic_kind(left), _basic_kind(right)}
    if len(kinds) != 1 or kinds & {"bool", "nil", "other"}:
        raise ValueError("invalid type for comparison")
    return left, right


def _lt(left: Any, right: Any) -> bool:
    a, b = _ordered(left, right)
    return bool(a < b)


def _le(left: Any, right: Any) -> bool:
    a, b = _ordered(left, right)
    return bool(a <= b)


def _gt(left: Any, right: Any) -> bool:
    a, b = _ordered(left, right)
    return bool(a > b)


def _ge(left: Any, right: Any) -> bool:
    a, b = _ordered(left, right)
    return bool(a >= b)


def _len(value: Any) -> int:
    if value is None or value is MISSING:
        raise ValueError("len of nil pointer")
    if isinstance(value, str | bytes | list | tuple | dict):
        return len(value.encode() if isinstance(value, str) else value)
    raise ValueError(f"len of type {type(value).__name__}")


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if value is None or value is MISSING:
            raise ValueError("index of untyped nil")
        if isinstance(value, Mapping):
            value = value.get(key, MISSING)
        elif isinstance(value, list | tuple | str):
            if not isinstance(key, int) or isinstance(key, bool):
                raise ValueError("cannot index slice/array with non-integer")
            if not 0 <= key < len(value):
                raise IndexError(f"index out of range: {key}")
            value = value[key]
        else:
            raise ValueError(f"can't index item of type {type(value).__name__}")
    return value


def _slice(value: Any, *bounds: int) -> Any:
    if not isinstance(value, str | list | tuple):
        raise ValueError(f"can't slice item of type {type(value).__name__}")
    if len(bounds) > 2:
        raise ValueError("too many slice indexes")
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(value)
    if not 0 <= start <= end <= len(value):
        raise IndexError(f"slice index out of range: {start}:{end}")
    return value[start:end]


def _not(value: Any) -> bool:
    return not truth(value)


def _print(*args: Any) -> str:
    # Go's Sprint: a space between operands when neither is a string
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_format(arg, False) if arg is not MISSING else "<nil>")
    return "".join(out)


def _println(*args: Any) -> str:
    return " ".join(go_format(arg, False) for arg in args) + "\n"


_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d+))?([a-zA-Z%])")


def go_sprintf(layout: str, *args: Any) -> str:
    """Go's ``fmt.Sprintf`` for the verbs templates use: %v %s %d %q %x %X %o %b %f %e %g %t %c
    %T %%, with flags, width and precision."""
    values = list(args)
    out: list[str] = []
    pos = 0
    used = 0
    for match in _VERB.finditer(layout):
        out.append(layout[pos : match.start()])
        pos = match.end()
        flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if width == "*":
            width = str(values[used]) if used < len(values) else ""
            used += 1
        if precision == "*":
            precision = str(values[used]) if used < len(values) else ""
            used += 1
        if used >= len(values):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = values[used]
        used += 1
        out.append(_one_verb(flags, width, precision, verb, value))
    out.append(layout[pos:])
    if used < len(values):
        extra = ", ".join(f"{type(v).__name__}={go_format(v, False)}" for v in values[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _one_verb(flags: str, width: str | None, precision: str | None, verb: str, value: Any) -> str:
    spec_flags = "".join(f for f in flags if f in "-+ 0#")
    spec_width = width or ""
    spec_prec = f".{precision}" if precision is not None else ""
    try:
        if verb in "dxXob" and isinstance(value, int) and not isinstance(value, bool):
            return format(value, f"{spec_flags}{spec_width}{verb if verb != 'd' else 'd'}")
        if verb in "xX" and isinstance(value, str):
            text = value.encode().hex()
            return (text.upper() if verb == "X" else text).rjust(int(spec_width or 0))
        if verb in "feEgG" and isinstance(value, int | float) and not isinstance(value, bool):
            prec = spec_prec or (".6" if verb in "feE" else "")
            if verb in "gG" and not prec:
                return go_format(float(value), False)
            return format(float(value), f"{spec_flags}{spec_width}{prec}{verb}")
        if verb == "t" and isinstance(value, bool):
            text = "true" if value else "false"
        elif verb == "q":
            text = json.dumps(go_format(value, False) if not isinstance(value, str) else value)
        elif verb == "c" and isinstance(value, int):
            text = chr(value)
        elif verb == "T":
            text = _go_type(value)
        elif verb in "vs":
            text = go_format(value, False) if value is not MISSING else "<nil>"
            if precision is not None and verb == "s":
                text = text[: int(precision)]
        else:
            return f"%!{verb}({_go_type(value)}={go_format(value, False)})"
    except (ValueError, TypeError):
        return f"%!{verb}({_go_type(value)}={go_format(value, False)})"
    size = int(spec_width or 0)
    return text.ljust(size) if "-" in flags else text.rjust(size)


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    return "<nil>" if value is None or value is MISSING else type(value).__name__


def _html(*args: Any) -> str:
    text = _print(*args)
    for old, new in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;")):
        text = text.replace(old, new)
    return text


def _js(*args: Any) -> str:
    return json.dumps(_print(*args))[1:-1].replace("'", "\\'").replace("<", "\\u003C")


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_print(*args))


# -- consul-template's functions ----------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-ready data: MISSING becomes None, records become their fields."""
    if value is MISSING:
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    fields = getattr(value, "template_fields", None)
    if fields is not None:
        return {name: _plain(getattr(value, name)) for name in fields}
    return value


def _to_json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))


def _to_json_pretty(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, indent=2)


def _to_yaml(value: Any) -> str:
    text: str = yaml.safe_dump(_plain(value), default_flow_style=False, sort_keys=True)
    return text.rstrip("\n")


def _b64encode(value: Any) -> str:
    return base64.b64encode(_bytes(value)).decode()


def _b64decode(value: Any) -> str:
    return base64.b64decode(_str(value), validate=True).decode("utf-8", "replace")


def _b64url_encode(value: Any) -> str:
    return base64.urlsafe_b64encode(_bytes(value)).decode()


def _b64url_decode(value: Any) -> str:
    return base64.urlsafe_b64decode(_str(value)).decode("utf-8", "replace")


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else _str(value).encode()


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    return go_format(value, False)


def _env(name: str) -> str:
    return os.environ.get(name, "")


def _env_or_default(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _must_env(name: str) -> str:
    if name not in os.environ:
        raise ValueError(f"environment variable {name} not set")
    return os.environ[name]


def _file(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


_GO_LAYOUT = [
    ("January", "%B"),
    ("Monday", "%A"),
    ("2006", "%Y"),
    ("-07:00", "+TZC"),
    ("Z07:00", "ZTZC"),
    ("-0700", "%z"),
    ("Jan", "%b"),
    ("Mon", "%a"),
    ("MST", "%Z"),
    ("15", "%H"),
    ("06", "%y"),
    ("01", "%m"),
    ("02", "%d"),
    ("_2", "_D"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("PM", "%p"),
    (".000000000", ".NS9"),
    (".000000", ".%f"),
    (".000", ".MS3"),
    ("1", "M1"),
    ("2", "D1"),
    ("3", "H1"),
    ("4", "I1"),
    ("5", "S1"),
]


def go_time_format(moment: datetime.datetime, layout: str) -> str:
    """Format ``moment`` with a Go reference-time layout (``2006-01-02T15:04:05Z07:00``)."""
    out: list[str] = []
    pos = 0
    while pos < len(layout):
        for token, code in _GO_LAYOUT:
            if layout.startswith(token, pos):
                out.append(_time_part(moment, code))
                pos += len(token)
                break
        else:
            out.append(layout[pos])
            pos += 1
    return "".join(out)


def _time_part(moment: datetime.datetime, code: str) -> str:
    if code.startswith("%"):
        return moment.strftime(code)
    if code in ("+TZC", "ZTZC"):
        offset = moment.utcoffset() or datetime.timedelta(0)
        if code == "ZTZC" and not offset:
            return "Z"
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    simple = {
        "_D": f"{moment.day:>2}",
        ".NS9": f".{moment.microsecond * 1000:09d}",
        ".MS3": f".{moment.microsecond // 1000:03d}",
        "M1": str(moment.month),
        "D1": str(moment.day),
        "H1": str(moment.hour % 12 or 12),
        "I1": str(moment.minute),
        "S1": str(moment.second),
    }
    return simple[code]


def _timestamp(*args: Any) -> str:
    now = datetime.datetime.now(datetime.UTC)
    if not args:
        return now.strftime("%Y-%m-%dT%H:%M:%SZ")
    layout = _str(args[0])
    if layout == "unix":
        return str(int(now.timestamp()))
    return go_time_format(now, layout)


def _split(separator: str, text: str) -> list[str]:
    text = _str(text)
    if text == "":
        return []
    if separator == "":
        return list(text)
    return text.split(separator)


def _join(separator: str, values: Any) -> str:
    return separator.join(_str(v) for v in values)


def _replace_all(old: str, new: str, text: str) -> str:
    return _str(text).replace(old, new)


def _regex_replace_all(pattern: str, replacement: str, text: str) -> str:
    # Go's $1 / ${1} group references become Python's \g<1>
    python = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", replacement)
    return re.sub(pattern, python, _str(text))


def _regex_match(pattern: str, text: str) -> bool:
    return re.search(pattern, _str(text)) is not None


def _contains(needle: Any, haystack: Any) -> bool:
    # consul-template: {{ "x" | contains "y" }} tests whether the piped value contains the arg
    if isinstance(haystack, str):
        return _str(needle) in haystack
    return needle in haystack


def _in(collection: Any, needle: Any) -> bool:
    if isinstance(collection, str):
        return _str(needle) in collection
    return needle in collection


def _contains_all(needles: Any, haystack: Any) -> bool:
    return all(n in haystack for n in needles)


def _contains_any(needles: Any, haystack: Any) -> bool:
    return any(n in haystack for n in needles)


def _contains_none(needles: Any, haystack: Any) -> bool:
    return not any(n in haystack for n in needles)


def _contains_not_all(needles: Any, haystack: Any) -> bool:
    return not all(n in haystack for n in needles)


def _parse_json(text: str) -> Any:
    return json.loads(text) if text.strip() else {}


def _parse_bool(text: str) -> bool:
    lowered = _str(text).strip()
    if lowered in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if lowered in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"parseBool: invalid syntax: {lowered!r}")


def _parse_int(text: Any) -> int:
    return int(_str(text).strip(), 0)


def _parse_float(text: Any) -> float:
    return float(_str(text).strip())


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, int | float):
        return value
    text = _str(value).strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def _add(b: Any, a: Any) -> int | float:
    return _number(a) + _number(b)


def _subtract(b: Any, a: Any) -> int | float:
    return _number(a) - _number(b)


def _multiply(b: Any, a: Any) -> int | float:
    return _number(a) * _number(b)


def _divide(b: Any, a: Any) -> int | float:
    x, y = _number(a), _number(b)
    if isinstance(x, int) and isinstance(y, int):
        return int(x / y)
    return x / y


def _modulo(b: Any, a: Any) -> int | float:
    x, y = _number(a), _number(b)
    return int(x) % int(y) if isinstance(x, int) and isinstance(y, int) else x % y


def _minimum(b: Any, a: Any) -> int | float:
    return min(_number(a), _number(b))


def _maximum(b: Any, a: Any) -> int | float:
    return max(_number(a), _number(b))


def _indent(spaces: int, text: str) -> str:
    pad = " " * int(spaces)
    return "\n".join(pad + line if line else line for line in _str(text).split("\n"))


def _loop(*args: Any) -> list[int]:
    numbers = [int(_number(a)) for a in args]
    if len(numbers) == 1:
        return list(range(numbers[0]))
    if len(numbers) == 2:
        return list(range(numbers[0], numbers[1]))
    raise ValueError("loop: expected 1 or 2 arguments")


def _sha256_hex(text: Any) -> str:
    return hashlib.sha256(_bytes(text)).hexdigest()


def _md5sum(text: Any) -> str:
    return hashlib.md5(_bytes(text), usedforsecurity=False).hexdigest()


def _trim(cutset: str, text: str) -> str:
    return _str(text).strip(cutset)


def _trim_prefix(prefix: str, text: str) -> str:
    text = _str(text)
    return text[len(prefix) :] if text.startswith(prefix) else text


def _trim_suffix(suffix: str, text: str) -> str:
    text = _str(text)
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text


def _to_title(text: str) -> str:
    return re.sub(r"\b\w", lambda m: m.group(0).upper(), _str(text))


def _reject(name: str) -> Callable[..., Any]:
    def refuse(*_args: Any) -> Any:
        raise TemplateExecError(f'function "{name}" is not available in Strongroom templates')

    return refuse


BUILTINS: dict[str, Callable[..., Any]] = {
    # Go text/template
    "eq": _eq,
    "ne": _ne,
    "lt": _lt,
    "le": _le,
    "gt": _gt,
    "ge": _ge,
    "not": _not,
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _print,
    "printf": go_sprintf,
    "println": _println,
    "html": _html,
    "js": _js,
    "urlquery": _urlquery,
    # consul-template
    "toJSON": _to_json,
    "toJSONPretty": _to_json_pretty,
    "toYAML": _to_yaml,
    "base64Encode": _b64encode,
    "base64Decode": _b64decode,
    "base64URLEncode": _b64url_encode,
    "base64URLDecode": _b64url_decode,
    "env": _env,
    "envOrDefault": _env_or_default,
    "mustEnv": _must_env,
    "file": _file,
    "timestamp": _timestamp,
    "trimSpace": lambda text: _str(text).strip(" \t\r\n\v\f"),
    "trim": _trim,
    "trimPrefix": _trim_prefix,
    "trimSuffix": _trim_suffix,
    "toLower": lambda text: _str(text).lower(),
    "toUpper": lambda text: _str(text).upper(),
    "toTitle": _to_title,
    "split": _split,
    "join": _join,
    "replaceAll": _replace_all,
    "regexReplaceAll": _regex_replace_all,
    "regexMatch": _regex_match,
    "contains": _contains,
    "containsAll": _contains_all,
    "containsAny": _contains_any,
    "containsNone": _contains_none,
    "containsNotAll": _contains_not_all,
    "in": _in,
    "parseJSON": _parse_json,
    "parseBool": _parse_bool,
    "parseInt": _parse_int,
    "parseUint": _parse_int,
    "parseFloat": _parse_float,
    "add": _add,
    "subtract": _subtract,
    "multiply": _multiply,
    "divide": _divide,
    "modulo": _modulo,
    "minimum": _minimum,
    "maximum": _maximum,
    "indent": _indent,
    "loop": _loop,
    "sha256Hex": _sha256_hex,
    "md5sum": _md5sum,
    # Consul's catalog and key/value store do not exist here
    **{
        name: _reject(name)
        for name in ("key", "keyOrDefault", "keyExists", "ls", "tree", "service", "services")
    },
    "executeTemplate": _reject("executeTemplate"),
    "writeToFile": _reject("writeToFile"),
    "plugin": _reject("plugin"),
}
