"""``reelserve get ID`` and ``reelserve download ID``: pick a request back up by its id.

``generate`` prints the id whenever it stops before the video is saved (``--timeout``,
a dropped connection); these commands read the request's state or fetch its MP4.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from reelserve.cli_generate import (
    DEFAULT_SERVER,
    EXIT_DONE,
    EXIT_FAILED,
    ApiKey,
    Server,
    exit_code_for,
    follow,
    report_error,
)
from reelserve.client import ClientError, JobStatus, ReelserveClient
from reelserve.jobs.states import JobState

RequestId = Annotated[str, typer.Argument(help="The request id generate printed.",
                                          metavar="REQUEST_ID", show_default=False)]
console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True)


def get(
    request_id: RequestId,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status body as JSON.")]
    = False,
) -> None:
    """Show a request's state: progress while it runs, its output and cost once done.

    Exit codes: 0 it exists (queued, running or completed), 3 it FAILED (or was canceled),
    and the other codes of generate for errors (1 for an unknown id).
    """
    try:
        with ReelserveClient(server, api_key) as client:
            status = client.status(request_id)
            if status.status is JobState.COMPLETED:
                status = client.result(request_id)
    except ClientError as error:
        report_error(error)
        raise typer.Exit(exit_code_for(error)) from None
    if as_json:
        print(json.dumps(status.raw, indent=2))
    else:
        _print_status(status)
    raise typer.Exit(EXIT_FAILED if status.status is JobState.FAILED else EXIT_DONE)


def _print_status(status: JobStatus) -> None:
    state = status.status.value
    if status.status is JobState.FAILED:
        state = "CANCELED" if status.canceled else f"FAILED: {status.error}"
    elif status.status is JobState.QUEUED and status.queue_position:
        state += f" (position {status.queue_position})"
    elif status.status is JobState.PROCESSING:
        eta = f", ~{status.eta_seconds:.0f} s left" if status.eta_seconds else ""
        state += f" {status.progress:.0%}{eta}"
    console.print(f"request {status.request_id}: {state}", highlight=False)
    if status.output:
        console.print(f"output: {status.output}", highlight=False)
    cost = (status.metrics or {}).get("cost")
    if cost is not None and status.status is JobState.COMPLETED:
        console.print(f"cost: {cost} credits", highlight=False)


def download(
    request_id: RequestId,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where the MP4 goes.  \\[default: REQUEST_ID.mp4]",
        show_default=False)] = None,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    timeout: Annotated[float, typer.Option(
        help="Seconds to wait if it is still running.")] = 900.0,
) -> None:
    """Save a request's MP4, waiting for it to finish if it still runs.

    Exit codes as for generate: 0 saved (its path is printed), 3 it FAILED,
    4 still running after --timeout, 1 an unknown id.
    """
    try:
        with ReelserveClient(server, api_key) as client:
            status = client.status(request_id)
            if not status.is_terminal:
                follow(client, request_id, timeout)
            result = client.result(request_id)
            assert result.output is not None
            saved = client.download(result.output, output or Path(f"{request_id}.mp4"))
    except ClientError as error:
        report_error(error)
        raise typer.Exit(exit_code_for(error)) from None
    print(saved, flush=True)
