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

# Version 2, fair scheduling (``redis_scripts``): queued jobs are also kept by fair tag
# in ``P:fair`` and their key's ``P:kq:<key>``, as '<seq, 15 digits>:<id>'; jobs carry
# their model (``slug``) and tag; ``P:queued-models`` and ``P:running`` count them.
# Jobs queued before it keep their order, ahead of later ones (tag 0).
_FAIR_SCHEDULING = _STEP + """
local function describe(id)
  local job = P .. ':job:' .. id
  local key_id, params, seq = unpack(redis.call('HMGET', job, 'key_id', 'params', 'seq'))
  if not params then return nil end
  local slug = cjson.decode(params).slug
  redis.call('HSET', job, 'slug', slug)
  redis.call('HSETNX', job, 'tag', '0')
  return key_id, slug, seq
end
for _, id in ipairs(redis.call('ZRANGE', P .. ':queue', 0, -1)) do
  local key_id, slug, seq = describe(id)
  if key_id then
    local member = string.format('%015d', tonumber(seq)) .. ':' .. id
    redis.call('ZADD', P .. ':fair', 0, member)
    redis.call('ZADD', P .. ':kq:' .. key_id, 0, member)
    redis.call('HINCRBY', P .. ':queued-models', slug, 1)
  end
end
for _, id in ipairs(redis.call('ZRANGE', P .. ':leases', 0, -1)) do
  local key_id = describe(id)
  if key_id then redis.call('HINCRBY', P .. ':running', key_id, 1) end
end
""" + _DONE

MIGRATIONS: tuple[str, ...] = (_BASELINE, _FAIR_SCHEDULING)
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


def remove_prefix(client: redis.Redis, prefix: str, *, batch: int = 1000) -> int:
    """Delete every key under ``prefix`` (a test's or a benchmark's); answers how many.

    SCAN walks the whole database whatever it matches, so it asks for ``batch`` keys
    a call: with the default ten, a Redis holding a million other keys takes a
    hundred thousand round trips to clear a few.
    """
    removed = 0
    found: list[bytes | str] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=batch):
        found.append(key)
        if len(found) == batch:
            removed += cast(int, client.unlink(*found))
            found.clear()
    if found:
        removed += cast(int, client.unlink(*found))
    return removed
