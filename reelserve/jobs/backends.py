"""Open the job store and the rate limiter that their settings sections name."""

from __future__ import annotations

from reelserve.errors import ReelserveError
from reelserve.jobs.sqlite import SqliteJobStore
from reelserve.jobs.store import JobStore
from reelserve.ratelimit import LocalRateLimiter, RateLimiter, SharedRateLimiter
from reelserve.settings_sections import RateLimitSettings, StoreSettings


class StoreUnavailable(ReelserveError):
    pass


def open_store(settings: StoreSettings) -> JobStore:
    """SQLite in the data dir by default; Redis when ``settings.url`` is a redis:// URL.

    Either is brought to this release's schema (or refused when a newer release
    wrote it); a Redis is first checked to be fit to keep the data (see
    ``redis_durability``). Raises ``StoreUnreadable`` and its kinds.
    """
    if not settings.url:
        return SqliteJobStore(settings.db_path, retention_s=settings.retention_s,
                              fair_dispatch=settings.fair_dispatch)
    if settings.url.startswith(("redis://", "rediss://", "unix://")):
        from reelserve.jobs.redis_durability import check_redis_server, redis_location
        from reelserve.jobs.redis_store import RedisJobStore

        where = redis_location(settings.url)
        store = RedisJobStore(settings.url, retention_s=settings.retention_s,
                              prefix=settings.redis_prefix, migrate=False,
                              fair_dispatch=settings.fair_dispatch)
        try:
            store.durability_warnings = check_redis_server(
                store.redis, where, ephemeral=settings.redis_ephemeral)
            store.migrate_layout(f"Redis at {where} (prefix {settings.redis_prefix})")
        except BaseException:
            store.close()
            raise
        return store
    raise StoreUnavailable(
        f"store {settings.url!r} is not supported: leave it empty for SQLite in the data "
        "dir, or give a redis://HOST:PORT/DB URL")


def open_rate_limiter(limits: RateLimitSettings, store: JobStore) -> RateLimiter:
    """A limit every API server shares when the store is shared (Redis), else in-process."""
    from reelserve.jobs.redis_store import RedisJobStore

    if isinstance(store, RedisJobStore):
        return SharedRateLimiter(store, limits.limit, limits.window_s)
    return LocalRateLimiter(limits.limit, limits.window_s)
