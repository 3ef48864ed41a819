"""``reelserve generate``: one video from a running server, with a live progress bar."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from reelserve.catalog.models import IMAGE2VIDEO, TEXT2VIDEO
from reelserve.catalog.params import DEFAULT_NEGATIVE_PROMPT
from reelserve.cli_help import ReadableCommand
from reelserve.cli_inputs import BadInput, image_url, multi_prompt
from reelserve.cli_inputs import element as parse_element
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


class GenerateCommand(ReadableCommand):
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


class Aspect(StrEnum):
    landscape = "16:9"
    portrait = "9:16"
    square = "1:1"


class ShotType(StrEnum):
    customize = "customize"
    intelligent = "intelligent"


Server = Annotated[str, typer.Option(envvar="REELSERVE_SERVER", help="The server's base URL.")]
ApiKey = Annotated[str | None, typer.Option(
    envvar="REELSERVE_API_KEY", help="The API key (rs_...).", show_default=False)]
DEFAULT_SERVER = "http://127.0.0.1:8000"


def generate(
    prompt: Annotated[str, typer.Argument(help="What the video shows.", metavar="PROMPT",
                                          show_default=False)],
    image: Annotated[str | None, typer.Option(
        "--image", help="Start image: a local file or an http(s) URL; makes it image2video.",
        show_default=False)] = None,
    end_image: Annotated[str | None, typer.Option(
        "--end-image", help="End image (with --image): a local file or a URL.",
        show_default=False)] = None,
    element: Annotated[list[str] | None, typer.Option(
        "--element", metavar="FRONT[,REF...]", show_default=False,
        help="An element to keep consistent (with --image): a frontal image, then up to 3 "
             "reference images, comma separated; repeat for up to 3.")] = None,
    duration: Annotated[int | None, typer.Option(
        min=3, max=15, show_default=False,
        help="Seconds, 3 to 15.  \\[default: 5, or the sum of the shots]")] = None,
    shot: Annotated[list[str] | None, typer.Option(
        "--shot", metavar="SECONDS:PROMPT", show_default=False,
        help='One shot of a multi-prompt video, e.g. --shot "3:a lighthouse at dusk"; '
             "repeat for up to 5.")] = None,
    shots_file: Annotated[Path | None, typer.Option(
        "--shots-file", show_default=False,
        help='The shots as a JSON list of {"prompt", "duration"} (instead of --shot).')] = None,
    shot_type: Annotated[ShotType, typer.Option(
        "--shot-type", help="How the shots are cut.")] = ShotType.customize,
    aspect: Annotated[Aspect, typer.Option(help="Aspect ratio.")] = Aspect.landscape,
    negative_prompt: Annotated[str, typer.Option(
        "--negative-prompt", help="What the video should not show.")] = DEFAULT_NEGATIVE_PROMPT,
    cfg_scale: Annotated[float, typer.Option(
        "--cfg-scale", min=0.0, max=1.0,
        help="How closely to follow the prompt, 0 to 1.")] = 0.5,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="No audio track.")] = False,
    voice: Annotated[list[str] | None, typer.Option(
        "--voice", metavar="VOICE_ID", show_default=False,
        help="A voice id from kling-create-voice; repeat for up to 2.")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Same inputs and seed, same video.  \\[default: random]", show_default=False)] = None,
    webhook_url: Annotated[str | None, typer.Option(
        "--webhook-url", help="POSTed to when the request ends.", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where the MP4 goes.  \\[default: REQUEST_ID.mp4]",
        show_default=False)] = None,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the video.")] = 900.0,
) -> None:
    """Generate one video on a reelserve server and save it as an MP4.

    With --image the model is image2video, else text2video.
    Images are local files (checked here, then sent as data: URLs) or http(s) URLs.
    Ctrl-C cancels the request.

    Exit codes:
      0  the video is saved
      1  bad input: usage, a file that is not an image, or a 400 from the server
      2  the key is missing or wrong (401) or may not use the model (403)
      3  the request FAILED (the server's error is printed)
      4  not done within --timeout (it keeps running; its id is printed)
      5  the server cannot be reached, or answers 5xx
      6  not enough credits (406)
      7  rate limited (429)
      130  interrupted with Ctrl-C (the request is canceled)
    """
    params: dict[str, Any] = {
        "prompt": prompt, "negative_prompt": negative_prompt, "aspect_ratio": aspect.value,
        "cfg_scale": cfg_scale, "generate_audio": not no_audio, "shot_type": shot_type.value,
        "seed": seed, "voice_ids": voice or None, "webhook_url": webhook_url,
        "duration": None if duration is None else str(duration)}
    if (end_image is not None or element) and image is None:
        _fail("--end-image and --element need --image (the start image)", EXIT_BAD_INPUT)
    try:
        params["multi_prompt"] = multi_prompt(shot or [], shots_file)
        if params["multi_prompt"] is None and duration is None:
            params["duration"] = "5"
        if image is not None:
            params["start_image_url"] = image_url(image, "--image")
            params["end_image_url"] = None if end_image is None else \
                image_url(end_image, "--end-image")
            params["elements"] = [parse_element(value) for value in element or []] or None
    except BadInput as error:
        _fail(error.message, EXIT_BAD_INPUT)
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
        result = follow(client, request_id, timeout)
        assert result.output is not None
        saved = client.download(result.output, output or Path(f"{request_id}.mp4"))
    except KeyboardInterrupt:
        if request_id is not None:
            _cancel(client, request_id)
        return EXIT_INTERRUPTED
    except ClientError as error:
        report_error(error)
        if request_id:
            # It may still run or be done: the id lets `reelserve get/download` pick it up.
            err_console.print(f"request id: {request_id}")
            if not isinstance(error, RequestFailed):
                err_console.print(f"pick it up with: reelserve download {request_id}")
        return exit_code_for(error)
    print(saved, flush=True)
    return EXIT_DONE


def report_error(error: ClientError) -> None:
    hint = " (pass --api-key or set REELSERVE_API_KEY)" \
        if isinstance(error, AuthenticationFailed) else ""
    err_console.print(f"[red]error:[/red] {escape(error.message)}{hint}", soft_wrap=True)


def _describe(status: JobStatus) -> str:
    if status.status is JobState.QUEUED:
        return f"queued (position {status.queue_position})" if status.queue_position \
            else "queued"
    eta = f", ~{status.eta_seconds:.0f} s left" if status.eta_seconds else ""
    return f"{status.status.value.lower()}{eta}"


def follow(client: ReelserveClient, request_id: str, timeout: float) -> JobStatus:
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
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)
