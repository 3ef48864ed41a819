"""The one exception tree of reelserve.

Domain code raises these; ``reelserve.api.errors`` maps them to HTTP status
codes and ``{"error": ...}`` bodies in one place::

    ReelserveError
    ├── InvalidParameter        400  a request field breaks a rule
    ├── InvalidSetting               a REELSERVE_* setting that makes no sense (at start)
    ├── Unauthorized            401  missing, unknown or revoked API key
    │   └── KeyRevoked               a submit's write found its key revoked or gone
    ├── Forbidden               403  the key may not use this model
    ├── NotFound                404
    │   ├── ModelNotFound            unknown slug
    │   └── RequestNotFound          unknown or expired request id
    ├── InsufficientCredits     406  price above the key's balance
    ├── Conflict                409  e.g. canceling a request that already ended
    ├── UnsatisfiableRange      416  a Range header past the end of an output file
    ├── IdempotencyMismatch     422  an Idempotency-Key reused with another body
    ├── JobFailed               422  the request ended FAILED
    ├── RateLimited             429  too many submits for a key
    ├── QueueFull               429  the key has its max-queued jobs waiting
    ├── SyncTimeout             504  a /v1 call passed its deadline
    ├── StoreTimeout            503  the job store did not answer in time (Retry-After)
    ├── InputError                   an input URL could not be fetched or decoded (job FAILED)
    ├── FetchError                   an outbound URL was refused by the fetch policy or failed
    ├── EngineError                  an engine could not generate (job FAILED)
    │   └── EngineUnavailable        the engine cannot start (missing weights, torch, ...)
    ├── Interrupted                  generation stopped because it was asked to
    ├── StaleAttempt                 a write from an attempt that lost its lease
    ├── StorageError                 output or input storage failed (the attempt is retried)
    ├── ChildLimitExceeded           a sandboxed decoder passed its CPU, memory or time limit
    └── StoreUnreadable              the job store cannot be opened (corrupt file, ...)
        ├── StoreTooNew              written by a newer release (schema version)
        └── RedisUnsafe              a Redis that may evict keys (maxmemory-policy)
"""

from __future__ import annotations


class ReelserveError(Exception):
    """Root of every error reelserve raises on purpose."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(ReelserveError):
    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}" if field else rule)
        self.field = field
        self.rule = rule


class InvalidSetting(ReelserveError):
    """A ``REELSERVE_*`` setting (or its CLI option) with a value that makes no sense."""

    def __init__(self, variable: str, rule: str) -> None:
        super().__init__(f"{variable}: {rule}")
        self.variable = variable
        self.rule = rule


class Unauthorized(ReelserveError):
    pass


class KeyRevoked(Unauthorized):
    """The store refused a submit whose key is revoked (or gone) at the write itself.

    Its answer is the key check's own: 401 "invalid API key".
    """

    def __init__(self, key_id: int) -> None:
        super().__init__("invalid API key")
        self.key_id = key_id


class Forbidden(ReelserveError):
    pass


class NotFound(ReelserveError):
    pass


class ModelNotFound(NotFound):
    def __init__(self, slug: str) -> None:
        super().__init__(f"model '{slug}' not found")
        self.slug = slug


class RequestNotFound(NotFound):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"request '{request_id}' not found (unknown or expired)")
        self.request_id = request_id


class InsufficientCredits(ReelserveError):
    def __init__(self, needed: float, balance: float) -> None:
        super().__init__(
            f"Insufficient Credits: this request costs {needed:.3f} credits "
            f"and the key has {balance:.3f}"
        )
        self.needed = needed
        self.balance = balance


class Conflict(ReelserveError):
    """The request cannot apply to the job as it is now (e.g. cancel a finished job)."""


class UnsatisfiableRange(ReelserveError):
    """A Range header that asks for bytes past the end of the file."""

    def __init__(self, http_range: str, size: int) -> None:
        shown = http_range if len(http_range) <= 64 else http_range[:61] + "..."
        super().__init__(f"Range: {shown!r} starts past the end of the file ({size} bytes)")
        self.size = size


class IdempotencyMismatch(ReelserveError):
    """An Idempotency-Key reused with a different request body."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used with a different "
                         "request body; use a new key for a new request")


class JobFailed(ReelserveError):
    def __init__(self, request_id: str, error: str) -> None:
        super().__init__(error)
        self.request_id = request_id


class RateLimited(ReelserveError):
    def __init__(self, limit: int, window_s: float, reset_at: float) -> None:
        super().__init__(f"rate limit exceeded: {limit} submits per {window_s:g} s for this key")
        self.limit = limit
        self.window_s = window_s
        self.reset_at = reset_at


class QueueFull(ReelserveError):
    """A submit past the key's ``max_queued`` cap; the client should retry later."""

    def __init__(self, max_queued: int, retry_after_s: float = 5.0) -> None:
        super().__init__(f"queue full: this key may have at most {max_queued} jobs waiting "
                         "(max-queued); retry once some have started")
        self.max_queued = max_queued
        self.retry_after_s = retry_after_s


class SyncTimeout(ReelserveError):
    def __init__(self, request_id: str, timeout_s: float) -> None:
        super().__init__(
            f"request {request_id} did not finish within {timeout_s:g} s; "
            f"poll /v2/requests/{request_id}/status for it"
        )
        self.request_id = request_id


class StoreTimeout(ReelserveError):
    """The job store did not answer within the API's store timeout; try again later."""

    def __init__(self, timeout_s: float, retry_after_s: int) -> None:
        super().__init__(f"the job store did not answer within {timeout_s:g} s; "
                         f"retry in {retry_after_s} s")
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s


class InputError(ReelserveError):
    """An input URL could not be fetched or is not an image; the job fails."""

    def __init__(self, field: str, url: str, reason: str) -> None:
        shown = url if len(url) <= 120 else url[:117] + "..."
        super().__init__(f"{field} ({shown}): {reason}")
        self.field = field
        self.url = url
        self.reason = reason


class FetchError(ReelserveError):
    """An outbound HTTP call was refused by the fetch policy, or failed on the way."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason


class EngineError(ReelserveError):
    pass


class EngineUnavailable(EngineError):
    pass


class Interrupted(ReelserveError):
    pass


class StaleAttempt(ReelserveError):
    def __init__(self, request_id: str, attempt: int) -> None:
        super().__init__(f"attempt {attempt} of {request_id} no longer holds the job")
        self.request_id = request_id
        self.attempt = attempt


class StoreUnreadable(ReelserveError):
    """The job store cannot be opened: a corrupt or unreadable SQLite file, say."""


class StoreTooNew(StoreUnreadable):
    """The store was written by a newer release, whose layout this one cannot read."""

    def __init__(self, where: str, found: int, supported: int) -> None:
        super().__init__(
            f"{where} has store schema version {found}, made by a newer reelserve; this "
            f"release reads versions up to {supported}: run the newer release, or restore a "
            "backup made before the upgrade")
        self.found = found
        self.supported = supported


class RedisUnsafe(StoreUnreadable):
    """A Redis configured so that it may drop jobs, keys or credits on its own."""


class StorageError(ReelserveError):
    """Storage failed to keep or give back a file: an infrastructure fault, retried.

    ``message`` is what a client may see ("storage error"); ``detail`` is for the log.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("storage error")
        self.detail = detail


class ChildLimitExceeded(ReelserveError):
    """A sandboxed child passed one of its limits, crashed or raised; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
