"""The operator state machines: init, unseal, seal, rotate, generate-root and rekey.

Key hierarchy (Vault's Shamir seal)::

    unseal key shares ──shamir──▶ unseal key ──decrypts core/root-key──▶ root key
        root key ──decrypts core/keyring──▶ data keys (terms) ──encrypt──▶ every value

The unseal key is never stored; the root key is stored only encrypted under it. A rekey
replaces both (so old shares plus an old copy of ``core/root-key`` open nothing current),
writing the keyring, the new encrypted root key and the new seal config in one physical
transaction.

Trusts: the physical storage for availability only (everything read is authenticated or, for
the seal config, validated); the ``mint_root_token`` callback to return a fresh root token.
Promises: key shares, combined keys, OTPs and tokens never reach a ``repr``, a log line or an
exception message; a failed combination says nothing about which share was wrong and always
resets that attempt's progress; secrets are compared with :func:`hmac.compare_digest`.

Status reads (``unseal_progress``, ``generate_root_status``, ``rekey_status`` …) are
synchronous and use the seal config cached by the last async call; call :meth:`load` once at
startup so a sealed server reports its threshold.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace

from strongroom import errors
from strongroom.barrier import (
    KEY_SIZE,
    ROOT_KEY_PATH,
    SEAL_CONFIG_PATH,
    AESGCMBarrier,
    KeyStatus,
    decrypt_blob,
    encrypt_blob,
)
from strongroom.clock import Clock, SystemClock
from strongroom.logical import Storage, StorageOp
from strongroom.seal._attempts import (
    MAX_KEY_LENGTH,
    MIN_KEY_LENGTH,
    REKEY_CANCEL_GRACE,
    GenerateRootAttempt,
    RekeyAttempt,
    UnsealAttempt,
    check_key_length,
    combine_parts,
    contains,
    new_nonce,
    nonce_matches,
    split_key,
)
from strongroom.seal._status import (
    GenerateRootStatus,
    InitResult,
    RekeyResult,
    RekeyStatus,
    RekeyVerificationResult,
    RekeyVerificationStatus,
    SealConfig,
    UnsealProgress,
)
from strongroom.seal.otp import OTP_LENGTH, encode_root_token, generate_otp

__all__ = ["MAX_KEY_LENGTH", "MIN_KEY_LENGTH", "REKEY_CANCEL_GRACE", "SealManager"]

_log = logging.getLogger(__name__)

_VERIFY_FAILED = "cipher: message authentication failed"


class SealManager:
    """Holds the in-memory progress of every operator flow and drives the barrier.

    Args:
        physical: the untrusted physical storage (for the reserved ``core/`` records).
        barrier: the barrier over that same storage.
        clock: for the rekey-cancel grace period; :class:`SystemClock` by default.
    """

    def __init__(
        self, physical: Storage, barrier: AESGCMBarrier, clock: Clock | None = None
    ) -> None:
        self._physical = physical
        self._barrier = barrier
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._config: SealConfig | None = None
        self._unseal: UnsealAttempt | None = None
        self._generate_root: GenerateRootAttempt | None = None
        self._rekey: RekeyAttempt | None = None
        # Serializes the async flows; sync reads and cancels need no lock (no await inside).
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SealManager(sealed={self._barrier.sealed}, config={self._config!r})"

    # --- configuration ----------------------------------------------------------------------

    async def load(self) -> None:
        """Read and cache the seal config (call once at startup)."""
        await self.seal_config()

    async def seal_config(self) -> SealConfig | None:
        """The stored seal config, or ``None`` before initialization (also refreshes the cache)."""
        raw = await self._physical.get(SEAL_CONFIG_PATH)
        self._config = None if raw is None else SealConfig.from_bytes(raw)
        return self._config

    async def initialized(self) -> bool:
        return await self.seal_config() is not None

    @property
    def sealed(self) -> bool:
        return self._barrier.sealed

    # --- init -------------------------------------------------------------------------------

    async def initialize(self, secret_shares: int, secret_threshold: int) -> InitResult:
        """Create the root key, the unseal key and its shares; leave the barrier unsealed.

        The caller (core) sets up mounts and the root token, then seals.

        Raises:
            errors.InvalidRequest: an invalid config, or already initialized.
        """
        config = SealConfig(secret_shares, secret_threshold)
        try:
            config.validate()
        except errors.InvalidRequest as exc:
            raise errors.InvalidRequest(f"invalid seal configuration: {exc}") from None
        async with self._lock:
            if await self.initialized() or await self._barrier.initialized():
                raise errors.InvalidRequest("Vault is already initialized")
            root_key = secrets.token_bytes(KEY_SIZE)
            unseal_key = secrets.token_bytes(KEY_SIZE)
            await self._barrier.initialize(
                root_key, extra_ops=self._seal_ops(unseal_key, root_key, config)
            )
            self._config = config
            self._reset_all()
            _log.info("initialized", extra={"shares": secret_shares, "threshold": secret_threshold})
            return InitResult(split_key(unseal_key, config))

    # --- unseal / seal ----------------------------------------------------------------------

    def unseal_progress(self) -> UnsealProgress:
        """Seal status: sealed, threshold, shares, progress and nonce of the current attempt."""
        config = self._config
        attempt = self._unseal if self._barrier.sealed else None
        return UnsealProgress(
            sealed=self._barrier.sealed,
            t=config.secret_threshold if config else 0,
            n=config.secret_shares if config else 0,
            progress=len(attempt.parts) if attempt else 0,
            nonce=attempt.nonce if attempt else "",
        )

    def reset_unseal(self) -> UnsealProgress:
        """Discard the shares given so far (``PUT sys/unseal`` with ``reset``)."""
        self._unseal = None
        return self.unseal_progress()

    async def submit_unseal_key(self, key: bytes) -> UnsealProgress:
        """Record one unseal key share; at the threshold, combine it and unseal.

        A share already given in this attempt is ignored, as Vault does. When the barrier is
        already unsealed this is a no-op.

        Raises:
            errors.InvalidRequest: not initialized, or a key of impossible length, or shares
                that cannot be combined (progress is reset).
            errors.CryptoError: the combined key is wrong (progress is reset; the message does
                not say which share was bad).
        """
        async with self._lock:
            config = await self.seal_config()
            if config is None:
                raise errors.InvalidRequest("Vault is not initialized")
            check_key_length(key)
            if not self._barrier.sealed:
                return self.unseal_progress()
            attempt = self._unseal or UnsealAttempt(nonce=new_nonce())
            if not contains(attempt.parts, key):
                attempt = replace(attempt, parts=(*attempt.parts, key))
            self._unseal = attempt
            if len(attempt.parts) < config.secret_threshold:
                return self.unseal_progress()
            self._unseal = None  # whatever happens next, this attempt is over
            unseal_key = combine_parts(attempt.parts, config.secret_threshold)
            await self._barrier.unseal(await self._root_key_from(unseal_key))
            _log.info("unsealed")
            return self.unseal_progress()

    def seal(self) -> None:
        """Seal the barrier and drop every attempt in progress (unseal, generate-root, rekey)."""
        self._barrier.seal()
        self._reset_all()
        _log.info("sealed")

    # --- rotate -----------------------------------------------------------------------------

    async def rotate(self) -> KeyStatus:
        """Install a new data-encryption term (``POST sys/rotate``)."""
        async with self._lock:
            await self._barrier.rotate()
            return self._barrier.key_status()

    def key_status(self) -> KeyStatus:
        return self._barrier.key_status()

    # --- generate-root ----------------------------------------------------------------------

    def generate_root_status(self) -> GenerateRootStatus:
        """``GET sys/generate-root/attempt`` (never shows the OTP)."""
        config = self._require_unsealed()
        attempt = self._generate_root
        return GenerateRootStatus(
            started=attempt is not None,
            nonce=attempt.nonce if attempt else "",
            progress=len(attempt.parts) if attempt else 0,
            required=config.secret_threshold,
        )

    def generate_root_init(self, otp_length: int = OTP_LENGTH, otp: str = "") -> GenerateRootStatus:
        """Start a root-token generation; the answer carries the server-made OTP, once.

        Args:
            otp_length: must be the root token length (28).
            otp: an operator-chosen OTP of that length (legacy ``-otp``); not echoed back.

        Raises:
            errors.Sealed: sealed.
            errors.InvalidRequest: an attempt is already in progress, or a bad OTP length.
        """
        self._require_unsealed()
        if otp_length != OTP_LENGTH or (otp and len(otp) != OTP_LENGTH):
            raise errors.InvalidRequest("OTP string is wrong length")
        if self._generate_root is not None:
            raise errors.InvalidRequest("root generation already in progress")
        attempt = GenerateRootAttempt(
            nonce=new_nonce(), otp=otp or generate_otp(OTP_LENGTH), return_otp=not otp
        )
        self._generate_root = attempt
        _log.info("root generation initialized")
        return replace(self.generate_root_status(), otp=attempt.otp if attempt.return_otp else "")

    def generate_root_cancel(self) -> None:
        """Drop the attempt and its progress (``DELETE sys/generate-root/attempt``)."""
        self._require_unsealed()
        self._generate_root = None

    async def generate_root_update(
        self, key: bytes, nonce: str, mint_root_token: Callable[[], Awaitable[str]]
    ) -> GenerateRootStatus:
        """Record one unseal key share; at the threshold, verify it and mint a root token.

        Args:
            key: one unseal key share (raw bytes).
            nonce: the attempt's nonce from :meth:`generate_root_init`.
            mint_root_token: called once, only after the shares proved to be right; returns a
                new root token of :data:`~strongroom.seal.otp.OTP_LENGTH` characters. It runs
                under the manager's lock, so it must not call back into the manager.

        Returns:
            The progress; once complete, ``encoded_token`` = base64(token XOR otp).

        Raises:
            errors.Sealed: sealed.
            errors.InvalidRequest: no attempt, wrong nonce, a repeated or malformed share.
            errors.CryptoError: the shares do not rebuild the unseal key (progress reset).
        """
        async with self._lock:
            config = self._require_unsealed()
            check_key_length(key)
            attempt = self._generate_root
            if attempt is None:
                raise errors.InvalidRequest("no root generation in progress")
            if not nonce_matches(attempt.nonce, nonce):
                raise errors.InvalidRequest("incorrect nonce supplied for this root generation")
            if contains(attempt.parts, key):
                raise errors.InvalidRequest(
                    "given key has already been provided during this generation operation"
                )
            attempt = replace(attempt, parts=(*attempt.parts, key))
            self._generate_root = attempt
            progress = len(attempt.parts)
            if progress < config.secret_threshold:
                return self.generate_root_status()
            self._generate_root = replace(attempt, parts=())
            await self._verify_unseal_key(combine_parts(attempt.parts, config.secret_threshold))
            current = self._generate_root
            if current is None or current.nonce != attempt.nonce:
                raise errors.InvalidRequest("the root generation was cancelled")
            token = await mint_root_token()
            try:
                encoded = encode_root_token(token, attempt.otp)
            except errors.InvalidRequest:
                raise errors.InternalError(
                    "minted root token does not match the OTP length"
                ) from None
            if self._generate_root is not None and self._generate_root.nonce == attempt.nonce:
                self._generate_root = None
            _log.info("root generation finished")
            return GenerateRootStatus(
                started=True,
                nonce=attempt.nonce,
                progress=progress,
                required=config.secret_threshold,
                complete=True,
                encoded_token=encoded,
            )

    # --- rekey ------------------------------------------------------------------------------

    def rekey_status(self) -> RekeyStatus:
        """``GET sys/rekey/init``."""
        config = self._require_unsealed()
        attempt = self._rekey
        if attempt is None:
            return RekeyStatus(
                started=False, nonce="", t=0, n=0, progress=0, required=config.secret_threshold
            )
        return RekeyStatus(
            started=True,
            nonce=attempt.nonce,
            t=attempt.config.secret_threshold,
            n=attempt.config.secret_shares,
            progress=len(attempt.parts),
            required=config.secret_threshold,
            verification_required=attempt.verification_required,
            verification_nonce=attempt.verification_nonce,
        )

    def rekey_init(
        self, secret_shares: int, secret_threshold: int, require_verification: bool = False
    ) -> RekeyStatus:
        """Start a rekey to ``secret_shares``/``secret_threshold`` (``PUT sys/rekey/init``).

        Raises:
            errors.Sealed: sealed.
            errors.InvalidRequest: invalid parameters, or a rekey already in progress.
        """
        self._require_unsealed()
        if secret_threshold > secret_shares:
            raise errors.InvalidRequest("provided threshold greater than the total shares")
        config = SealConfig(secret_shares, secret_threshold)
        try:
            config.validate()
        except errors.InvalidRequest as exc:
            raise errors.InvalidRequest(f"invalid rekey seal configuration: {exc}") from None
        if self._rekey is not None:
            raise errors.InvalidRequest("rekey already in progress")
        self._rekey = RekeyAttempt(
            nonce=new_nonce(),
            config=config,
            verification_required=require_verification,
            created=self._clock.monotonic(),
        )
        _log.info(
            "rekey initialized",
            extra={"shares": secret_shares, "threshold": secret_threshold},
        )
        return self.rekey_status()

    def rekey_cancel(self, nonce: str = "") -> None:
        """Drop the rekey, including a pending verification (``DELETE sys/rekey/init``).

        The current shares stay valid. Within :data:`REKEY_CANCEL_GRACE` seconds of
        ``rekey_init`` the attempt's nonce is required, as Vault requires it.

        Raises:
            errors.Sealed: sealed.
            errors.InvalidRequest: a recent attempt and no (or the wrong) nonce.
        """
        self._require_unsealed()
        attempt = self._rekey
        if attempt is None:
            return
        expired = self._clock.monotonic() - attempt.created >= REKEY_CANCEL_GRACE
        if not expired and not nonce_matches(attempt.nonce, nonce):
            raise errors.InvalidRequest("invalid request")
        self._rekey = None

    async def rekey_update(self, key: bytes, nonce: str) -> RekeyStatus | RekeyResult:
        """Record one current unseal key share (``PUT sys/rekey/update``).

        At the current threshold the shares are checked and a new unseal key is split into
        the requested shares. Without verification it takes effect at once (new root key,
        keyring, encrypted root key and seal config in one transaction); with verification
        the new shares are only returned, with a ``verification_nonce``.

        Returns:
            :class:`RekeyStatus` below the threshold, :class:`RekeyResult` at it.

        Raises:
            errors.Sealed: sealed.
            errors.InvalidRequest: no rekey, verification pending, wrong nonce, a repeated or
                malformed share.
            errors.CryptoError: the shares do not rebuild the unseal key (progress reset).
        """
        async with self._lock:
            config = self._require_unsealed()
            check_key_length(key)
            attempt = self._rekey
            if attempt is None:
                raise errors.InvalidRequest("no barrier rekey in progress")
            if attempt.verification_key is not None:
                raise errors.InvalidRequest(
                    "rekey operation already finished; verification must be performed"
                )
            if not nonce_matches(attempt.nonce, nonce):
                raise errors.InvalidRequest("incorrect nonce supplied for this rekey operation")
            if contains(attempt.parts, key):
                raise errors.InvalidRequest(
                    "given key has already been provided during this rekey operation"
                )
            attempt = replace(attempt, parts=(*attempt.parts, key))
            self._rekey = attempt
            if len(attempt.parts) < config.secret_threshold:
                return self.rekey_status()
            self._rekey = replace(attempt, parts=())
            await self._verify_unseal_key(combine_parts(attempt.parts, config.secret_threshold))
            if self._rekey is None or self._rekey.nonce != attempt.nonce:
                raise errors.InvalidRequest("the rekey operation was cancelled")
            new_unseal_key = secrets.token_bytes(KEY_SIZE)
            shares = split_key(new_unseal_key, attempt.config)
            if attempt.verification_required:
                verification_nonce = new_nonce()
                self._rekey = replace(
                    self._rekey,
                    verification_key=new_unseal_key,
                    verification_nonce=verification_nonce,
                )
                return RekeyResult(
                    nonce=attempt.nonce,
                    keys=shares,
                    verification_required=True,
                    verification_nonce=verification_nonce,
                )
            await self._perform_rekey(new_unseal_key, attempt.config)
            if self._rekey is not None and self._rekey.nonce == attempt.nonce:
                self._rekey = None
            return RekeyResult(nonce=attempt.nonce, keys=shares)

    def rekey_verify_status(self) -> RekeyVerificationStatus:
        """``GET sys/rekey/verify``.

        Raises:
            errors.InvalidRequest: no rekey in progress.
        """
        self._require_unsealed()
        attempt = self._rekey
        if attempt is None:
            raise errors.InvalidRequest("no rekey configuration found")
        return RekeyVerificationStatus(
            started=attempt.verification_key is not None,
            nonce=attempt.verification_nonce,
            t=attempt.config.secret_threshold,
            n=attempt.config.secret_shares,
            progress=len(attempt.verification_parts),
        )

    def rekey_verify_cancel(self) -> RekeyVerificationStatus:
        """Restart verification: drop its progress and issue a new verification nonce
        (``DELETE sys/rekey/verify``). The rekey itself, and its new shares, stay."""
        self._require_unsealed()
        attempt = self._rekey
        if attempt is not None and attempt.verification_key is not None:
            self._rekey = replace(attempt, verification_nonce=new_nonce(), verification_parts=())
        return self.rekey_verify_status()

    async def rekey_verify_update(
        self, key: bytes, nonce: str
    ) -> RekeyVerificationStatus | RekeyVerificationResult:
        """Record one NEW share (``PUT sys/rekey/verify``); at the new threshold, if they
        rebuild the new unseal key, put the rekey in force.

        Raises:
            errors.Sealed: sealed.
            errors.InvalidRequest: no rekey or no verification pending, wrong nonce, a
                repeated or malformed share.
            errors.CryptoError: the new shares do not rebuild the new key (progress reset and
                a new verification nonce issued, as Vault does).
        """
        async with self._lock:
            self._require_unsealed()
            check_key_length(key)
            attempt = self._rekey
            if attempt is None:
                raise errors.InvalidRequest("no rekey in progress")
            expected = attempt.verification_key
            if expected is None:
                raise errors.InvalidRequest("no rekey verification in progress")
            if not nonce_matches(attempt.verification_nonce, nonce):
                raise errors.InvalidRequest("incorrect nonce supplied for this verify operation")
            if contains(attempt.verification_parts, key):
                raise errors.InvalidRequest(
                    "given key has already been provided during this verify operation"
                )
            attempt = replace(attempt, verification_parts=(*attempt.verification_parts, key))
            self._rekey = attempt
            threshold = attempt.config.secret_threshold
            if len(attempt.verification_parts) < threshold:
                return self.rekey_verify_status()
            # The attempt ends here either way: on failure, start over under a new nonce.
            self._rekey = replace(attempt, verification_parts=(), verification_nonce=new_nonce())
            try:
                candidate = combine_parts(attempt.verification_parts, threshold)
            except errors.InvalidRequest:
                raise errors.CryptoError(
                    "rekey verification failed; incorrect key shares supplied"
                ) from None
            if not hmac.compare_digest(candidate, expected):
                raise errors.CryptoError("rekey verification failed; incorrect key shares supplied")
            await self._perform_rekey(expected, attempt.config)
            if self._rekey is not None and self._rekey.nonce == attempt.nonce:
                self._rekey = None
            return RekeyVerificationResult(nonce=attempt.verification_nonce)

    # --- internals --------------------------------------------------------------------------

    def _require_unsealed(self) -> SealConfig:
        if self._barrier.sealed:
            raise errors.Sealed()
        if self._config is None:
            raise errors.InvalidRequest("server is not yet initialized")
        return self._config

    def _reset_all(self) -> None:
        self._unseal = None
        self._generate_root = None
        self._rekey = None

    def _seal_ops(self, unseal_key: bytes, root_key: bytes, config: SealConfig) -> list[StorageOp]:
        """The two reserved records the seal manager owns, ready for one transaction."""
        return [
            StorageOp(ROOT_KEY_PATH, encrypt_blob(unseal_key, ROOT_KEY_PATH, root_key)),
            StorageOp(SEAL_CONFIG_PATH, config.to_bytes()),
        ]

    async def _root_key_from(self, unseal_key: bytes) -> bytes:
        """Decrypt ``core/root-key`` with ``unseal_key``; CryptoError (flat) if it is wrong."""
        blob = await self._physical.get(ROOT_KEY_PATH)
        if blob is None:
            raise errors.InternalError("the encrypted root key is missing from storage")
        return decrypt_blob(unseal_key, ROOT_KEY_PATH, blob)

    async def _verify_unseal_key(self, unseal_key: bytes) -> None:
        """Check ``unseal_key`` opens the stored root key and that it is the live one."""
        root_key = await self._root_key_from(unseal_key)
        if not self._barrier.verify_root_key(root_key):
            raise errors.CryptoError(_VERIFY_FAILED)

    async def _perform_rekey(self, new_unseal_key: bytes, config: SealConfig) -> None:
        """Put a new unseal key in force, with a new root key too (as Vault does), atomically."""
        new_root_key = secrets.token_bytes(KEY_SIZE)
        ops = self._seal_ops(new_unseal_key, new_root_key, config)
        await self._barrier.rekey_root_key(new_root_key, extra_ops=ops)
        self._config = config
        _log.info(
            "rekeyed",
            extra={"shares": config.secret_shares, "threshold": config.secret_threshold},
        )
