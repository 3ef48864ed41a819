"""A bounded schemathesis run against the real app's /openapi.json, in process.

The app is the one `reelserve serve` runs (SQLite store, local storage, a real
key); only the transport is ASGI instead of a socket, and no worker runs. Every operation is fuzzed
with positive and negative data: no answer may be a 5xx, and each response must
match the schema and content type the document declares for its status code.
The response models forbid fields they do not declare, so a body that drifts
from its model fails here. Routes on one request run again with the ids of real
jobs in each state (moved through the store as a worker would), and the output
route with a real output file, so every body the API serves is checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
from reelserve.catalog import get_model, parse_submit
from reelserve.jobs import JobOrder, JobStore
from reelserve.jobs.backends import open_store
from reelserve.keys import issue_key
from reelserve.settings import Settings
from reelserve.storage import LocalStorage

from conftest import I2V, T2V

EXAMPLES = 30
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@dataclass
class FuzzedApp:
    app: Any
    key: str
    request_ids: list[str]  # one job per state: queued, processing, completed, failed
    output_key: str


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzedApp]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    config = Settings(data_dir=data_dir, rate_limit=0, max_body_bytes=1_000_000,
                      ready_without_workers=True)
    store = open_store(config.store_section)
    storage = LocalStorage(config.outputs_dir)
    issued = issue_key(store, credits=10**12)
    jobs = jobs_in_every_state(store, storage, issued.record.id)
    yield FuzzedApp(create_app(config.api, store, storage), issued.secret, *jobs)
    store.close()


def jobs_in_every_state(store: JobStore, storage: LocalStorage,
                        key_id: int) -> tuple[list[str], str]:
    params = parse_submit(get_model(T2V), {"prompt": "p", "duration": "3"})
    outcomes = store.submit_jobs([JobOrder(key_id, params, 240) for _ in range(4)])
    ids = [outcome[0].id for outcome in outcomes if not isinstance(outcome, Exception)]
    claims = [store.claim_next_job("fuzz-worker", 600) for _ in range(3)]
    attempts = {claim.id: claim.attempt for claim in claims if claim is not None}
    running, done, failed = ids[:3]
    store.renew_lease(running, attempts[running], 600, 0.5)
    output_key = storage.new_key()
    storage.staging_path(output_key).write_bytes(b"\0" * 4096)
    store.complete_job(done, attempts[done], output_key, {"engine": "fixture", "cost": 0.24})
    store.fail_job(failed, attempts[failed], "engine error: told to fail", 500)
    queued = ids[3]
    return [queued, running, done, failed], output_key


def fuzz_operation(operation: Any, mode: GenerationMode, key: str, **fixed: Any) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers={"x-api-key": key}, checks=CHECKS)

    run()


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_no_5xx_and_responses_conform(fuzzed_app: FuzzedApp, mode: GenerationMode) -> None:
    app, key = fuzzed_app.app, fuzzed_app.key
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
        if "{request_id}" in operation.path:  # real jobs, so real bodies are checked
            runs += [{"path_parameters": {"request_id": request_id}}
                     for request_id in fuzzed_app.request_ids]
        if "{output_key}" in operation.path:
            runs.append({"path_parameters": {"output_key": fuzzed_app.output_key}})
        for fixed in runs:
            try:
                fuzz_operation(operation, mode, key, **fixed)
            except Unsatisfiable:
                # nothing in it that negative data can break (e.g. /healthz, a free string)
                assert mode is GenerationMode.NEGATIVE
                continue
            fuzzed.append((operation.label, str(fixed)))
    assert ("POST /v2/{slug}", str({"path_parameters": {"slug": I2V}})) in fuzzed
    done = str({"path_parameters": {"request_id": fuzzed_app.request_ids[2]}})
    if mode is GenerationMode.POSITIVE:  # a fixed id leaves negative data nothing to break
        assert ("GET /v2/requests/{request_id}", done) in fuzzed
