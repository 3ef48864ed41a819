"""Job records, states, the store protocol and its backends."""

from reelserve.jobs.records import (
    ApiKey,
    ClaimedJob,
    Job,
    JobOrder,
    KeyIdentity,
    QueueStats,
    Refusal,
    Submitted,
    SweepReport,
    Voice,
    WebhookDelivery,
    WorkerRecord,
)
from reelserve.jobs.states import JobState
from reelserve.jobs.store import JobStore

__all__ = ["ApiKey", "ClaimedJob", "Job", "JobOrder", "JobState", "JobStore", "KeyIdentity",
           "QueueStats", "Refusal", "Submitted", "SweepReport", "Voice", "WebhookDelivery",
           "WorkerRecord"]
