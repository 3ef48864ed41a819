"""``reelserve generate``: one video from a running server, with a live progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from typer.core import TyperCommand

from reelserve.catalog.models import IMAGE2VIDEO, TEXT2VIDEO
from reelserve.client import (
    ApiError,
    AuthenticationFailed,
    ClientError,
    JobStatus,
    NotEnoughCredits,
    PermissionDenied,
    RateLimitExceeded,
    ReelserveClient,
    RequestFailed,
    ServerError,
    ServerUnreachable,
    WaitTimeout,
    image_url,
)
from reelserve.jobs.states import JobState

EXIT_DONE, EXIT_BAD_INPUT, EXIT_AUTH, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 2, 3, 4
EXIT_UNREACHABLE, EXIT_CREDITS, EXIT_RATE_LIMITED, EXIT_INTERRUPTED = 5, 6, 7, 130
USAGE_ERROR_EXIT = 2  # what click gives a usage error

# Most specific first: the first class an error is an instance of picks the code.
EXIT_BY_ERROR: list[tuple[type[ClientError], int]] = [
    (AuthenticationFailed, EXIT_AUTH), (PermissionDenied, EXIT_AUTH),
    (NotEnoughCredits, EXIT_CREDITS), (RateLimitExceeded, EXIT_RATE_LIMITED),
    (ServerError, EXIT_UNREACHABLE), (ApiError, EXIT_BAD_INPUT),
    (RequestFailed, EXIT_FAILED), (WaitTimeout, EXIT_TIMEOUT),
    (ServerUnreachable, EXIT_UNREACHABLE),
]

err_console = Console(stderr=True)


class GenerateCommand(TyperCommand):
    """Usage errors exit 1 here, since exit code 2 means an authentication problem."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click's Context
        try:
            return super().parse_args(ctx, args)
        # click's UsageError, named by its exit code: typer may ship its own copy of click
        except Exception as error:
            if getattr(error, "exit_code", None) == USAGE_ERROR_EXIT:
                setattr(error, "exit_code", EXIT_BAD_INPUT)  # noqa: B010 - typed as Exception
            raise


def exit_code_for(error: ClientError) -> int:
    for kind, code in EXIT_BY_ERROR:
        if isinstance(error, kind):
            return code
    return EXIT_BAD_INPUT


def generate(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    image: Annotated[str | None, typer.Option(
        "--image", help="Start image: a local file or an http(s) URL.")] = None,
    end_image: Annotated[str | None, typer.Option(
        "--end-image", help="End image (with --image): a local file or a URL.")] = None,
    duration: Annotated[int, typer.Option(help="Seconds, 3 to 15.")] = 5,
    aspect: Annotated[str, typer.Option(help="16:9, 9:16 or 1:1.")] = "16:9",
    no_audio: Annotated[bool, typer.Option("--no-audio", help="No audio track.")] = False,
    seed: Annotated[int | None, typer.Option(help="Same inputs and seed, same video.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where the MP4 goes; REQUEST_ID.mp4 if absent.")] = None,
    server: Annotated[str, typer.Option(
        envvar="REELSERVE_SERVER", help="The server's base URL.")] = "http://127.0.0.1:8000",
    api_key: Annotated[str | None, typer.Option(
        envvar="REELSERVE_API_KEY", help="The API key (rs_...).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the video.")] = 900.0,
) -> None:
    """Generate one video on a reelserve server and save it as an MP4.

    With --image the model is image2video, else text2video.
    Images are local files (sent as data: URLs) or http(s) URLs.
    Ctrl-C cancels the request.

    Exit codes:
      0  the video is saved
      1  bad input: usage, an unreadable file, or a 400 from the server
      2  the key is missing or wrong (401) or may not use the model (403)
      3  the request FAILED (the server's error is printed)
      4  not done within --timeout (it keeps running; its id is printed)
      5  the server cannot be reached, or answers 5xx
      6  not enough credits (406)
      7  rate limited (429)
      130  interrupted with Ctrl-C (the request is canceled)
    """
    params: dict[str, Any] = {"prompt": prompt, "duration": str(duration),
                              "aspect_ratio": aspect, "generate_audio": not no_audio,
                              "seed": seed}
    if end_image is not None and image is None:
        _fail("--end-image needs --image (the start image)", EXIT_BAD_INPUT)
    try:
        if image is not None:
            params["start_image_url"] = image_url(image)
            params["end_image_url"] = None if end_image is None else image_url(end_image)
    except OSError as error:
        _fail(f"cannot read the image: {error}", EXIT_BAD_INPUT)
    with ReelserveClient(server, api_key) as client:
        model = IMAGE2VIDEO if image is not None else TEXT2VIDEO
        code = _run(client, model, params, output, timeout)
    raise typer.Exit(code)


def _run(client: ReelserveClient, model: str, params: dict[str, Any], output: Path | None,
         timeout: float) -> int:
    request_id = None
    try:
        request_id = client.submit(model, **params)
        err_console.print(f"request {request_id} ({model})")
        result = _follow(client, request_id, timeout)
        assert result.output is not None
        saved = client.download(result.output, output or Path(f"{request_id}.mp4"))
    except KeyboardInterrupt:
        if request_id is not None:
            _cancel(client, request_id)
        return EXIT_INTERRUPTED
    except ClientError as error:
        hint = " (pass --api-key or set REELSERVE_API_KEY)" \
            if isinstance(error, AuthenticationFailed) else ""
        err_console.print(f"[red]error:[/red] {error.message}{hint}")
        if isinstance(error, WaitTimeout | RequestFailed) and request_id:
            err_console.print(f"request id: {request_id}")
        return exit_code_for(error)
    print(saved, flush=True)
    return EXIT_DONE


def _describe(status: JobStatus) -> str:
    if status.status is JobState.QUEUED:
        return f"queued (position {status.queue_position})" if status.queue_position \
            else "queued"
    eta = f", ~{status.eta_seconds:.0f} s left" if status.eta_seconds else ""
    return f"{status.status.value.lower()}{eta}"


def _follow(client: ReelserveClient, request_id: str, timeout: float) -> JobStatus:
    """Wait for the request with a live bar on a terminal, one line per change elsewhere."""
    if not err_console.is_terminal:
        def log_line(status: JobStatus) -> None:
            err_console.print(f"{_describe(status)} {status.progress:.0%}")

        return client.wait(request_id, timeout=timeout, on_update=log_line)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task("submitted", total=1.0)

        def show(status: JobStatus) -> None:
            progress.update(task, description=_describe(status), completed=status.progress)

        return client.wait(request_id, timeout=timeout, on_update=show)


def _cancel(client: ReelserveClient, request_id: str) -> None:
    try:
        client.cancel(request_id)
        err_console.print(f"canceled request {request_id}")
    except ClientError as error:
        err_console.print(f"could not cancel {request_id}: {error.message}")


def _fail(message: str, code: int) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
