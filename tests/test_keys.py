"""API keys: a format secret scanners can spot, only hashes in the store, revocation at once."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from reelserve.jobs.backends import open_store
from reelserve.keys import PREFIX, authenticate, hash_key, issue_key, looks_like_key, new_key
from reelserve.settings import Settings


def test_keys_have_a_prefix_and_a_checksum_that_catches_typos() -> None:
    key = new_key()
    assert key.startswith(PREFIX)
    assert looks_like_key(key)
    typo = key[:10] + ("A" if key[10] != "A" else "B") + key[11:]
    assert not looks_like_key(typo)
    assert not looks_like_key(key[:-1])
    assert not looks_like_key("sk_" + key[3:])


def test_the_store_holds_only_a_hash_and_a_short_prefix(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = open_store(settings.store_section)
    secret = issue_key(store, credits=1000).secret
    store.close()
    files = b"".join(path.read_bytes() for path in tmp_path.glob("reelserve.sqlite3*"))
    with contextlib.closing(sqlite3.connect(settings.db_path)) as connection:
        dump = files + "\n".join(connection.iterdump()).encode()
    assert secret.encode() not in dump
    assert secret[3:].encode() not in dump   # not even without its prefix
    assert hash_key(secret).encode() in dump


def test_a_revoked_key_is_refused_at_once_and_lookalikes_never_reach_the_store(
        tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path).store_section)
    issued = issue_key(store, credits=1000)
    assert authenticate(store, issued.secret) is not None
    store.revoke_key(issued.record.prefix)
    assert authenticate(store, issued.secret) is None
    assert authenticate(store, "rs_" + "x" * 38) is None
    store.close()
