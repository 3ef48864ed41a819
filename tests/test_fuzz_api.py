"""A bounded schemathesis run against the real app's /openapi.json, in process.

The app is the one `reelserve serve` runs (SQLite store, local storage, a real
key); only the transport is ASGI instead of a socket, and no worker runs. Every operation is fuzzed
with positive and negative data: no answer may be a 5xx, and each response must
match the schema and content type the document declares for its status code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from reelserve.api import create_app
from reelserve.jobs.backends import open_store
from reelserve.keys import issue_key
from reelserve.settings import Settings
from reelserve.storage import LocalStorage

from conftest import I2V, T2V

EXAMPLES = 30
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    config = Settings(data_dir=data_dir, rate_limit=0, max_body_bytes=1_000_000,
                      ready_without_workers=True)
    store = open_store(config)
    key = issue_key(store, credits=10**12).secret
    yield create_app(config, store, LocalStorage(config.outputs_dir)), key
    store.close()


def fuzz_operation(operation: Any, mode: GenerationMode, key: str, **fixed: Any) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers={"x-api-key": key}, checks=CHECKS)

    run()


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_no_5xx_and_responses_conform(fuzzed_app: tuple[Any, str], mode: GenerationMode) -> None:
    app, key = fuzzed_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    fuzzed = []
    for result in schema.get_all_operations():
        operation = result.ok()
        # POST /v1 waits for the job (no worker runs here) and answers 504 by contract;
        # it parses and checks the body with the same code as POST /v2, fuzzed below.
        if operation.path == "/v1/{slug}":
            continue
        runs: list[dict[str, Any]] = [{}]
        if operation.path == "/v2/{slug}":  # the body rules of each real model too
            runs += [{"path_parameters": {"slug": slug}} for slug in (T2V, I2V)]
        for fixed in runs:
            try:
                fuzz_operation(operation, mode, key, **fixed)
            except Unsatisfiable:
                # nothing in it that negative data can break (e.g. /healthz, a free string)
                assert mode is GenerationMode.NEGATIVE
                continue
            fuzzed.append((operation.label, str(fixed)))
    assert ("POST /v2/{slug}", str({"path_parameters": {"slug": I2V}})) in fuzzed
