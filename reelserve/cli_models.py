"""``reelserve models``: download weights, list them, and plan a clip on a GPU size."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from reelserve.cli_store import settings_with
from reelserve.errors import ReelserveError
from reelserve.model_store import (
    MODEL_NAMES,
    VARIANT_FLAVOURS,
    list_installed,
    plan_pull,
    pull,
    variant_for,
)

models_app = typer.Typer(help="Download model weights (huggingface_hub) and list them.",
                         no_args_is_help=True)
console = Console()

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Models go to DATA_DIR/models.")]


@models_app.command("pull")
def models_pull(
    model: Annotated[str, typer.Argument(help=f"One of: {', '.join(MODEL_NAMES)}.")],
    variant: Annotated[str, typer.Option(
        help=f"One of: {', '.join(VARIANT_FLAVOURS)}.")] = "full",
    target: Annotated[Path | None, typer.Option(
        "--dir", help="Where to put it; DATA_DIR/models/<variant> if absent.")] = None,
    revision: Annotated[str | None, typer.Option(
        help="A commit (or branch) of the repository; its pinned revision if absent.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Download exactly the diffusers components MODEL uses, at a pinned commit."""
    settings = settings_with(data_dir=data_dir)
    try:
        chosen = variant_for(model, variant)
        where = target or settings.models.models_dir / chosen.name
        console.print(f"Resolving {chosen.repo_id} at {revision or chosen.revision} ...")
        planned = plan_pull(chosen, revision)
        origin = "official" if chosen.official else "community conversion"
        console.print(f"{chosen.repo_id} ({origin}) commit {planned.commit}: "
                      f"{len(planned.files)} files, {planned.size_bytes / 1024**3:.1f} GiB")
        for name, size in sorted(planned.files.items()):
            console.print(f"  {size / 1024**3:8.2f} GiB  {name}", markup=False)
        console.print(f"Downloading to {where} ({chosen.about}) ...")
        path = pull(planned, where)
    except ReelserveError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(1) from None
    console.print("Done. Serve it with:")
    print(f"reelserve serve --engine ltx2 --model-path {path}", flush=True)


@models_app.command("list")
def models_list(data_dir: DataDir = None) -> None:
    """Model directories under DATA_DIR/models (and REELSERVE_MODEL_PATH)."""
    settings = settings_with(data_dir=data_dir)
    found = list_installed(settings.models)
    if not found:
        console.print(f"No models in {settings.models.models_dir}; "
                      "download one with `reelserve models pull ltx-2`.")
        return
    table = Table("path", "variant", "pipeline", "size", "steps")  # base+refine
    for model in found:
        table.add_row(str(model.path), model.variant, model.pipeline,
                      f"{model.size_bytes / 1024**3:.2f} GiB", model.steps)
    console.print(table)


@models_app.command("plan")
def models_plan(
    variant: Annotated[str, typer.Option(help="distilled or full.")] = "distilled",
    gpu_memory: Annotated[float | None, typer.Option(
        "--gpu-memory", help="GiB of GPU memory; the local GPU's free memory if absent.")] = None,
    duration: Annotated[int, typer.Option(help="Seconds of video.")] = 5,
    aspect: Annotated[str, typer.Option(help="16:9, 9:16 or 1:1.")] = "16:9",
    profile: Annotated[str, typer.Option(help="two-stage or fast.")] = "two-stage",
    version: Annotated[str, typer.Option(
        help="LTX-2 generation: 2.0 or 2.3 (2.5 is not packaged).")] = "2.0",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Will a clip fit, and how much compute: stages, sizes, placement, peak, TFLOPs.

    Needs no weights and no GPU: sizes come from the full-size configs kept in the
    package, counted on torch's meta device.
    """
    from reelserve.engines.ltx2.plan_report import run_plan_command

    code = run_plan_command(variant=variant, gpu_memory=gpu_memory, duration=duration,
                            aspect=aspect, profile=profile, version=version, as_json=as_json)
    if code:
        raise typer.Exit(code)
