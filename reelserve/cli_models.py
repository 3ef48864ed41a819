"""``reelserve models``: download model weights and list what is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from reelserve.errors import ReelserveError
from reelserve.model_store import (
    MODEL_NAMES,
    VARIANT_FLAVOURS,
    list_installed,
    models_dir,
    pull,
    variant_for,
)
from reelserve.settings import settings_from_env

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
    data_dir: DataDir = None,
) -> None:
    """Download MODEL's diffusers weights (tens of GB) and its sampling profile."""
    settings = settings_from_env().with_overrides(data_dir=data_dir)
    try:
        chosen = variant_for(model, variant)
        where = target or models_dir(settings) / chosen.name
        console.print(f"Downloading {chosen.repo_id} ({chosen.about}) to {where} ...")
        path = pull(chosen, where)
    except ReelserveError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(1) from None
    console.print("Done. Serve it with:")
    print(f"reelserve serve --engine ltx2 --model-path {path}", flush=True)


@models_app.command("list")
def models_list(data_dir: DataDir = None) -> None:
    """Model directories under DATA_DIR/models (and REELSERVE_MODEL_PATH)."""
    settings = settings_from_env().with_overrides(data_dir=data_dir)
    found = list_installed(settings)
    if not found:
        console.print(f"No models in {models_dir(settings)}; "
                      "download one with `reelserve models pull ltx-2`.")
        return
    table = Table("path", "variant", "pipeline", "size", "steps")
    for model in found:
        steps = model.sampling.get("num_inference_steps", "?")
        table.add_row(str(model.path), model.variant, model.pipeline,
                      f"{model.size_bytes / 1024**3:.2f} GiB", str(steps))
    console.print(table)
