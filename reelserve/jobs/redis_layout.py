"""The version of the Redis store's key layout and the ordered migrations between them.

The version is ``P:layout-version`` under the store's prefix. Absent means a
layout made before versions existed (release 0.1.0), or a prefix nothing has
written yet; version N is reached by running migration N. Each migration is one
Lua script, atomic like every store change: it checks the version it starts
from, changes the data and writes the next version, or does nothing when another
process got there first.

A new layout change is a script appended to ``MIGRATIONS``; a released migration
is never edited.
"""

from __future__ import annotations

from typing import cast

import redis

from reelserve.errors import StoreTooNew

# Every migration script starts like this: ARGV[1] the prefix, ARGV[2] the version
# it migrates from. It answers the version the layout has afterwards.
_STEP = """
local P = ARGV[1]
local current = tonumber(redis.call('GET', P .. ':layout-version') or '0')
if current ~= tonumber(ARGV[2]) then return current end
"""
_DONE = """
redis.call('SET', P .. ':layout-version', tonumber(ARGV[2]) + 1)
return tonumber(ARGV[2]) + 1
"""

# Version 1 is the 0.1.0 layout as it stands (described in ``redis_store``): the
# migration only writes the version.
_BASELINE = _STEP + _DONE

MIGRATIONS: tuple[str, ...] = (_BASELINE,)
LAYOUT_VERSION = len(MIGRATIONS)


def migrate(client: redis.Redis, prefix: str, where: str) -> int:
    """Bring the layout under ``prefix`` to ``LAYOUT_VERSION``; answers the version it had.

    Raises ``StoreTooNew`` for a layout a newer release has migrated further.
    """
    found = layout_version(client, prefix)
    if found > LAYOUT_VERSION:
        raise StoreTooNew(where, found, LAYOUT_VERSION)
    current = found
    while current < LAYOUT_VERSION:
        current = int(cast(int, client.eval(MIGRATIONS[current], 0, prefix, current)))
        if current > LAYOUT_VERSION:
            raise StoreTooNew(where, current, LAYOUT_VERSION)
    return found


def layout_version(client: redis.Redis, prefix: str) -> int:
    raw = client.get(f"{prefix}:layout-version")
    return 0 if raw is None else int(cast(str, raw))
