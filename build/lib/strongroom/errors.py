"""The one exception tree. A leaf module: it imports nothing of ours.

http/ maps each class to exactly one HTTP status (see ``status``)::

    StrongroomError                 500  something broke; the message is generic to clients
    ├── InternalError               500
    │   └── UpstreamError           500  a database a backend uses failed; the (masked) message
    │                                    is shown, as Vault shows the driver's error
    ├── InvalidRequest              400  bad input: malformed JSON, wrong field type, bad path
    │   ├── InvalidPath             400  "." / ".." segments, bad characters
    │   └── CheckAndSetMismatch     400  KV v2 ``options.cas`` did not match (Vault answers 400)
    ├── PermissionDenied            403  no token, a bad token, or the ACL said no
    ├── NotFound                    404  no such mount or path (``unsupported path``)
    ├── UnsupportedOperation        405  the path exists but not with this operation
    ├── PreconditionFailed          412
    ├── RequestTooLarge             413  body over ``max_request_size``
    ├── UnsupportedMediaType        415  a PATCH that is not ``application/merge-patch+json``
    ├── RateLimited                 429
    ├── Sealed                      503  the barrier is sealed
    ├── Standby                     503
    │   └── StandbyRedirect         307  a standby sends the client to the active (Location)
    ├── DeadlineExceeded            503  the request ran past ``max_request_duration``; cancelled
    ├── IndexNotApplied             412  a standby is behind the X-Vault-Index asked for
    ├── StorageUnavailable          503  storage unreachable, or a write's outcome unknown
    │   └── Fenced                  503  this node lost leadership: its term is no longer current
    ├── StorageConflict             409  a transaction's guard (``StorageOp(check=True)``) failed;
    │                                    callers that read-modify-write retry or refuse
    └── CryptoError                 400  a flat "cipher: message authentication failed"-like error
        (never says which byte, key or share was wrong)

Messages never contain secrets: callers pass descriptions, not values.
"""

from __future__ import annotations

__all__ = [
    "CheckAndSetMismatch",
    "CryptoError",
    "DeadlineExceeded",
    "Fenced",
    "IndexNotApplied",
    "InternalError",
    "InvalidPath",
    "InvalidRequest",
    "NotFound",
    "PermissionDenied",
    "PreconditionFailed",
    "RateLimited",
    "RequestTooLarge",
    "Sealed",
    "Standby",
    "StandbyRedirect",
    "StorageConflict",
    "StorageUnavailable",
    "StrongroomError",
    "UnsupportedMediaType",
    "UnsupportedOperation",
    "UpstreamError",
]


class StrongroomError(Exception):
    """Base of every error we raise on purpose. ``status`` is the HTTP status http/ uses."""

    status = 500

    def __init__(self, message: str = "", *more: str) -> None:
        self.messages: list[str] = [message, *more] if message else list(more)
        super().__init__("; ".join(self.messages) if self.messages else self.__class__.__name__)


class InternalError(StrongroomError):
    """Unexpected state: logged in full on the server, reported generically to the client."""

    status = 500


class UpstreamError(InternalError):
    """A system a backend relies on (a database) failed. Unlike other internal errors, the
    client sees the message, as Vault shows the driver's error: the backend builds it with
    every secret and connection string masked."""

    status = 500


class InvalidRequest(StrongroomError):
    status = 400


class InvalidPath(InvalidRequest):
    status = 400


class CheckAndSetMismatch(InvalidRequest):
    status = 400


class PermissionDenied(StrongroomError):
    status = 403

    def __init__(self, message: str = "permission denied", *more: str) -> None:
        super().__init__(message, *more)


class NotFound(StrongroomError):
    status = 404


class UnsupportedOperation(StrongroomError):
    status = 405

    def __init__(self, message: str = "unsupported operation", *more: str) -> None:
        super().__init__(message, *more)


class PreconditionFailed(StrongroomError):
    status = 412


class RequestTooLarge(StrongroomError):
    status = 413


class UnsupportedMediaType(StrongroomError):
    status = 415


class RateLimited(StrongroomError):
    """A quota refused the request; ``headers`` (Retry-After, X-Ratelimit-*) go to the client."""

    status = 429

    def __init__(self, message: str = "", *more: str, headers: dict[str, str] | None = None):
        super().__init__(message, *more)
        self.headers: dict[str, str] = dict(headers or {})


class Sealed(StrongroomError):
    status = 503

    def __init__(self, message: str = "Vault is sealed", *more: str) -> None:
        super().__init__(message, *more)


class Standby(StrongroomError):
    status = 503


class StandbyRedirect(Standby):
    """This node is a standby: the request must run on the active node, at ``active_addr``
    (Vault's 307 with a Location header when request forwarding is not available)."""

    status = 307

    def __init__(self, active_addr: str) -> None:
        super().__init__("this node is a standby; the active node is at " + active_addr)
        self.active_addr = active_addr


class DeadlineExceeded(StrongroomError):
    """The request ran past its listener's ``max_request_duration`` and was cancelled."""

    status = 503

    def __init__(self, message: str = "context deadline exceeded", *more: str) -> None:
        super().__init__(message, *more)


class IndexNotApplied(StrongroomError):
    """A standby has not applied the ``X-Vault-Index`` the client asked for (Vault's 412)."""

    status = 412


class StorageUnavailable(StrongroomError):
    """The storage backend could not be reached or a write's outcome is unknown."""

    status = 503


class Fenced(StorageUnavailable):
    """A write was refused because this node's leadership term is no longer current."""

    status = 503


class StorageConflict(StrongroomError):
    """A transaction guard failed: the value changed since it was read. Nothing was written."""

    status = 409


class CryptoError(InvalidRequest):
    """A decryption/authentication failure. Deliberately says nothing specific."""

    status = 400
