"""Settings are parsed and checked once, when built; a bad value names its variable."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from reelserve.errors import InvalidSetting
from reelserve.settings import Settings, settings_from_env, settings_to_env

from cli_binary import reelserve
from conftest import process_env


@pytest.mark.parametrize(("variable", "raw", "rule"), [
    ("REELSERVE_LEASE_S", "0", "more than 0"),
    ("REELSERVE_LEASE_S", "-3", "more than 0"),
    ("REELSERVE_RETENTION_S", "0", "more than 0"),
    ("REELSERVE_MAX_ATTEMPTS", "0", "at least 1"),
    ("REELSERVE_WEBHOOK_KEY_CONCURRENCY", "0", "at least 1"),
    ("REELSERVE_WORKERS", "-1", "not be negative"),
    ("REELSERVE_RATE_LIMIT", "-5", "not be negative"),
    ("REELSERVE_PORT", "70000", "TCP port"),
    ("REELSERVE_PORT", "eighty", "a number"),
    ("REELSERVE_MAX_BODY_BYTES", "1e3x", "a number"),
    ("REELSERVE_READY_WITHOUT_WORKERS", "maybe", "true or false"),
    ("REELSERVE_WEBHOOK_BACKOFF_S", "5,soon", "seconds separated by commas"),
    ("REELSERVE_WEBHOOK_BACKOFF_S", "5,0", "more than 0"),
    ("REELSERVE_FETCH_ALLOW_CIDRS", "10.0.0.0/8,intranet", "'intranet' is not a network"),
])
def test_a_value_that_makes_no_sense_is_refused_naming_the_variable(
        variable: str, raw: str, rule: str) -> None:
    with pytest.raises(InvalidSetting) as refused:
        settings_from_env({variable: raw})
    assert refused.value.variable == variable
    assert refused.value.message.startswith(f"{variable}: ")
    assert rule in refused.value.message


def test_command_line_overrides_are_checked_too() -> None:
    with pytest.raises(InvalidSetting, match="REELSERVE_WORKERS"):
        Settings().with_overrides(workers=-2)


def test_zero_where_zero_means_off_is_accepted() -> None:
    settings = settings_from_env({"REELSERVE_RATE_LIMIT": "0", "REELSERVE_WORKERS": "0",
                                  "REELSERVE_SHUTDOWN_GRACE_S": "0"})
    assert (settings.rate_limit, settings.workers, settings.shutdown_grace_s) == (0, 0, 0.0)


def test_lists_are_parsed_once_into_their_sections() -> None:
    settings = settings_from_env({"REELSERVE_WEBHOOK_BACKOFF_S": "5, 30,120",
                                  "REELSERVE_FETCH_ALLOW_CIDRS": "10.0.0.0/8, ::1/128"})
    assert settings.webhooks.backoff_s == (5.0, 30.0, 120.0)
    assert settings.fetch.allow_networks == (ipaddress.ip_network("10.0.0.0/8"),
                                             ipaddress.ip_network("::1/128"))
    assert settings.webhooks.fetch == settings.fetch


def test_settings_survive_the_trip_to_a_child_process() -> None:
    settings = settings_from_env({"REELSERVE_LEASE_S": "2.5", "REELSERVE_WORKERS": "3",
                                  "REELSERVE_READY_WITHOUT_WORKERS": "true"})
    assert settings_from_env(settings_to_env(settings)) == settings


def test_the_cli_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    env = process_env(tmp_path) | {"REELSERVE_LEASE_S": "0"}
    done = reelserve("keys", "list", env=env)
    assert done.returncode == 1
    assert "REELSERVE_LEASE_S: must be more than 0" in done.stderr
    assert "Traceback" not in done.stderr
