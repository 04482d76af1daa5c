"""``bigganctl stats compute | pull | list | info``: reference statistics for FID / KID."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from .options import (N_FLAGS, BatchSizeOpt, CompileModeOpt, CompileOpt, ExtractorDeviceOpt, InceptionWeightsOpt, JsonOpt,
                      OverwriteOpt, QuietOpt, ResumeOpt, compile_value)
from .render import emit_json, note, out, rich_reporter

stats_app = typer.Typer(
    help="Reference statistics (Inception pool_3 mean/covariance, optionally features) for FID/KID.\n\n"
         "Examples:\n\n"
         "  bigganctl stats list\n\n"
         "  bigganctl stats pull imagenet-128\n\n"
         "  bigganctl stats compute imagenet_val/ --center-crop 128 --out val128.npz --keep-features\n\n"
         "  bigganctl stats info val128.npz",
    no_args_is_help=True,
)


def compute_cmd(
    src: Annotated[Path, typer.Argument(metavar="SRC", show_default=False,
                                        help="Image folder (recursive png/jpg/jpeg/webp) or .npz (arr_0 uint8 NHWC).")],
    out_path: Annotated[Path, typer.Option("--out", "-o", metavar="FILE.npz", show_default=False,
                                           help="Where to write the statistics (.npz with metadata).")],
    resize: Annotated[Optional[int], typer.Option(
        "--resize", metavar="R",
        help="Resize the short side to R (bilinear) and centre-crop RxR (torch-fidelity's "
             "samples_resize_and_crop). Needed when images have mixed sizes.")] = None,
    center_crop: Annotated[Optional[int], typer.Option(
        "--center-crop", metavar="R",
        help="ImageNet style, as ADM prepared its reference batches: box-halve while the short side "
             ">= 2R, bicubic resize of the short side to R, centre crop RxR.")] = None,
    n: Annotated[Optional[int], typer.Option(
        *N_FLAGS, metavar="N", help="Use the first N images (default: all). Under torchrun spell it "
                                    "--num-samples (or -n).")] = None,
    keep_features: Annotated[bool, typer.Option(
        "--keep-features", help="Also store the [N, 2048] features (needed for KID; 8 kB per image).")] = False,
    adm_batch: Annotated[bool, typer.Option(
        "--adm-batch", help="Write an ADM-format reference batch (mu, sigma, mu_s, sigma_s and arr_0: a seeded "
                            "subset of the images, uint8 NHWC), as guided-diffusion's evaluator reads it.")] = False,
    adm_images: Annotated[int, typer.Option(
        "--adm-images", metavar="K", help="--adm-batch: images in arr_0 (all when fewer).")] = 10000,
    adm_seed: Annotated[int, typer.Option(
        "--adm-seed", metavar="S", help="--adm-batch: seed of the subset (RandomState(S).permutation).")] = 0,
    workers: Annotated[int, typer.Option(
        "--workers", metavar="K", min=0,
        help="Processes that decode and resize a folder's images (DataLoader workers); 0 decodes in "
             "this process. About the number of free CPU cores per process is a good start.")] = 0,
    inception_weights: InceptionWeightsOpt = None,
    device: ExtractorDeviceOpt = "auto",
    batch_size: BatchSizeOpt = None,
    resume: ResumeOpt = True,
    compile_: CompileOpt = False,
    compile_mode: CompileModeOpt = None,
    overwrite: OverwriteOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Compute reference statistics of an image folder or an image .npz.

    The file holds mu, sigma (float64), sFID's mu_s/sigma_s (Mixed_6d.branch1x1 = TF mixed_6/conv, first 7 channels NHWC, 2023 dims), optionally features, and metadata (extractor and its weights, layer, count, resolution, preprocessing, source, versions), so later comparisons can refuse mismatched statistics.

    Streams in constant memory (features kept only with --keep-features); saves a checkpoint every 5 minutes and on Ctrl-C, and the same command resumes from it. Under torchrun each process reads its contiguous share and rank 0 writes the file (docs/scale.md).

    Examples:

      bigganctl stats compute real_images/ --out ref.npz --keep-features

      bigganctl stats compute imagenet/val --center-crop 256 --workers 8 --out val256.npz

      bigganctl stats compute my_dataset/ --center-crop 128 --adm-batch --out VIRTUAL_mine128.npz

      torchrun --nproc_per_node 4 -m bigganctl stats compute imagenet/train --center-crop 128 --workers 6 --out train128.npz
    """
    from ..api.stats import compute_stats
    from ..runtime.distributed import is_main

    st = compute_stats(src, out_path, resize=resize, center_crop=center_crop, n=n, keep_features=keep_features,
                       inception_weights=inception_weights, device=device, batch_size=batch_size,
                       overwrite=overwrite, workers=workers, resume=resume,
                       progress=rich_reporter(quiet=quiet) or False, compile=compile_value(compile_, compile_mode),
                       adm_batch=adm_batch, adm_images=adm_images, adm_seed=adm_seed)
    if not is_main():
        return
    if json_:
        emit_json({"out": str(out_path), **st.meta})
    elif not quiet:
        note(f"wrote {out_path}: {st.meta['count']} images, {st.meta['resolution']} px, "
             f"extractor {st.meta['extractor_id']}{', with features' if keep_features else ''}"
             + (f", ADM reference batch with {st.meta['image_count']} images" if adm_batch else ""))


def pull_cmd(
    names: Annotated[list[str], typer.Argument(metavar="NAME...", show_default=False,
                                               help="Registered reference names (see `bigganctl stats list`).")],
    features: Annotated[bool, typer.Option(
        "--features", help="Also compute KID's features of the batch's 10k images with these Inception "
                           "weights and cache them (otherwise done on first use by `eval kid|all`).")] = False,
    inception_weights: InceptionWeightsOpt = None,
    device: ExtractorDeviceOpt = "auto",
    batch_size: BatchSizeOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download registered reference statistics (the ADM ImageNet batches) into the cache.

    With --features, also compute the Inception features of each batch's images (for KID: 10k Inception forward passes, hours on a CPU; use --device cuda where there is one) into $BIGGANCTL_HOME/stats/features/, so an offline cluster never needs to.

    Examples:

      bigganctl stats pull imagenet-128 imagenet-256

      bigganctl stats pull imagenet-128 --features --inception-weights weights-inception-2015-12-05-6726825d.pth
    """
    from ..api.stats import reference_features
    from ..errors import UsageError
    from ..metrics.reference import REFERENCES, reference_path

    for name in names:
        if name not in REFERENCES:
            raise UsageError(f"unknown reference {name!r} (known: {', '.join(REFERENCES)})", option="NAME")
    progress = rich_reporter(quiet=quiet)
    paths = {name: str(reference_path(name, progress=progress)) for name in names}
    feats = {name: reference_features(name, inception_weights=inception_weights, device=device,
                                      batch_size=batch_size, progress=progress)["features"]
             for name in names} if features else {}
    if json_:
        emit_json({"pulled": paths, **({"features": feats} if features else {})})
    else:
        for name, p in paths.items():
            out.print(f"{name}: {p}" + (f"\n{name} features: {feats[name]}" if name in feats else ""))


def list_cmd(json_: JsonOpt = False) -> None:
    """List the registered reference statistics and whether they are cached.

    Examples:

      bigganctl stats list
    """
    from ..metrics.reference import list_references

    rows = list_references()
    if json_:
        emit_json({"references": rows})
        return
    table = Table(box=None, pad_edge=False)
    for col in ("name", "res", "cached", "description"):
        table.add_column(col, no_wrap=col != "description")
    for r in rows:
        table.add_row(r["name"], str(r["resolution"]), "[green]yes[/green]" if r["cached"] else "[dim]no[/dim]",
                      r["description"])
    out.print(table)
    note("any .npz with mu/sigma also works as --ref; make one with `bigganctl stats compute`")


def info_cmd(
    ref: Annotated[str, typer.Argument(metavar="NAME|FILE", show_default=False,
                                       help="A registered name or a statistics file (.npz, torch-fidelity .pt).")],
    json_: JsonOpt = False,
) -> None:
    """Show what a statistics file holds and how it was made.

    Examples:

      bigganctl stats info imagenet-128

      bigganctl stats info ref.npz --json
    """
    from ..metrics.reference import stats_info

    info = stats_info(ref)
    if json_:
        emit_json(info)
        return
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value")
    for k, v in info.items():
        table.add_row(k, _show(v))
    out.print(table)


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "-" if v is None else str(v)


def register(app: typer.Typer) -> None:
    stats_app.command("compute")(compute_cmd)
    stats_app.command("pull")(pull_cmd)
    stats_app.command("list")(list_cmd)
    stats_app.command("info")(info_cmd)
    app.add_typer(stats_app, name="stats")
