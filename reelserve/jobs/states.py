"""Job states and the one function that guards moves between them."""

from __future__ import annotations

from enum import StrEnum

CANCELED_STATUS = 409  # the HTTP status a canceled /v1 call answers


class JobState(StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED)


# A PROCESSING job goes back to QUEUED when its attempt is lost (crash, lease expiry).
ALLOWED_MOVES: dict[JobState, set[JobState]] = {
    JobState.QUEUED: {JobState.PROCESSING, JobState.FAILED},
    JobState.PROCESSING: {JobState.COMPLETED, JobState.FAILED, JobState.QUEUED},
    JobState.COMPLETED: set(),
    JobState.FAILED: set(),
}


class IllegalTransition(ValueError):
    pass


def check_transition(current: JobState, target: JobState) -> None:
    """Refuse a move the state machine does not allow.

    The Redis store's scripts carry the same table (``redis_scripts.COMMON``).
    """
    if target not in ALLOWED_MOVES[current]:
        raise IllegalTransition(f"a {current.value} job cannot become {target.value}")
