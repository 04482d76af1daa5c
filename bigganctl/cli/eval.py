"""``bigganctl eval fid | is | kid | all``: IS / FID / KID of a generator or of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional
from collections.abc import Callable

import typer
from rich.console import Console
from rich.table import Table

from ..parsing import parse_float
from .options import (
    BatchSizeOpt,
    DeviceOpt,
    DtypeOpt,
    InceptionWeightsOpt,
    JsonOpt,
    QuietOpt,
    SeedOpt,
    TruncOpt,
    WeightsOpt,
)
from .render import emit_json, warn, fmt_number

METRIC_PANEL = "Metrics"
SOURCE_PANEL = "What is evaluated"

eval_app = typer.Typer(
    help="Inception Score, FID and KID of a generator (samples go straight into the feature "
         "extractor, no image files) or of an image folder / .npz batch.\n\n"
         "Examples:\n\n"
         "  bigganctl eval fid --model biggan-deep-128 --ref imagenet-128 --trunc 1.0\n\n"
         "  bigganctl eval all --images samples/ --ref val128.npz --json\n\n"
         "  bigganctl eval is --weights random --n 1000 --min-is 1.5   # exit 3 if missed\n\n"
         "  torchrun --nproc_per_node 8 -m bigganctl eval fid --ref imagenet-256 --model biggan-deep-256",
    no_args_is_help=True,
)

out = Console(highlight=False, soft_wrap=True)

EvalModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", metavar="NAME|DIR", rich_help_panel=SOURCE_PANEL,
    help="Generator to evaluate: a registered name or a Hugging Face-style folder. "
         "Default biggan-deep-128 (unless --images).")]
ImagesOpt = Annotated[Optional[Path], typer.Option(
    "--images", metavar="DIR|FILE.npz", rich_help_panel=SOURCE_PANEL,
    help="Evaluate these images instead of a generator: a folder (recursive png/jpg/jpeg/webp, "
         "sorted by path) or an .npz batch (arr_0 uint8 NHWC, as ADM and `sample --npz` write).")]
RefOpt = Annotated[Optional[str], typer.Option(
    "--ref", metavar="NAME|FILE", rich_help_panel=METRIC_PANEL,
    help="Reference statistics for FID/KID: imagenet-64|128|256|512 (ADM batches, see `bigganctl "
         "stats list`) or an .npz with mu/sigma (`bigganctl stats compute`; --keep-features for KID).")]
NOpt = Annotated[Optional[int], typer.Option(
    "--n", "-n", metavar="N", rich_help_panel=SOURCE_PANEL,
    help="Number of samples. Default 50000 for a generator, every image for --images.")]
ClassesOpt = Annotated[str, typer.Option(
    "--classes", metavar="balanced|random|C,...", rich_help_panel=SOURCE_PANEL,
    help="Class of each sample: balanced (sample i gets class i mod 1000), random (seeded by --seed) "
         "or a list of classes cycled through (207,goldfish,n01443537).")]
ResizeOpt = Annotated[Optional[int], typer.Option(
    "--resize", metavar="R", rich_help_panel=SOURCE_PANEL,
    help="--images of mixed sizes: resize the short side to R (bilinear) and centre-crop RxR "
         "(torch-fidelity's samples_resize_and_crop).")]
CenterCropOpt = Annotated[Optional[int], typer.Option(
    "--center-crop", metavar="R", rich_help_panel=SOURCE_PANEL,
    help="--images: ADM's ImageNet preparation (box-halve, bicubic short side to R, centre crop RxR).")]
SplitsOpt = Annotated[int, typer.Option(
    "--splits", metavar="K", rich_help_panel=METRIC_PANEL,
    help="Inception Score splits (torch-fidelity protocol: seeded shuffle, K contiguous splits).")]
IsShuffleOpt = Annotated[bool, typer.Option(
    "--is-shuffle/--no-is-shuffle", rich_help_panel=METRIC_PANEL,
    help="IS splits after torch-fidelity's seeded shuffle (default), or contiguous as ADM's evaluator "
         "(the same splits as ADM's at N=50000).")]
KidSubsetsOpt = Annotated[int, typer.Option(
    "--kid-subsets", metavar="K", rich_help_panel=METRIC_PANEL, help="KID: number of random subsets.")]
KidSubsetSizeOpt = Annotated[Optional[int], typer.Option(
    "--kid-subset-size", metavar="M", rich_help_panel=METRIC_PANEL,
    help="KID: samples per subset. Default min(1000, N, reference features), with a warning when "
         "below 1000; a larger explicit value than either set is refused.")]
MaxFidOpt = Annotated[Optional[str], typer.Option(
    "--max-fid", metavar="X", rich_help_panel=METRIC_PANEL,
    help="Quality gate: exit 3 (after printing the result) if FID > X.")]
MinIsOpt = Annotated[Optional[str], typer.Option(
    "--min-is", metavar="Y", rich_help_panel=METRIC_PANEL,
    help="Quality gate: exit 3 (after printing the result) if IS < Y.")]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume/--no-resume", rich_help_panel=METRIC_PANEL,
    help="Continue an interrupted run with the same settings from its checkpoint "
         "($BIGGANCTL_HOME/runs); the numbers are the same as an uninterrupted run's.")]
CheckpointEveryOpt = Annotated[Optional[int], typer.Option(
    "--checkpoint-every", metavar="N", hidden=True,
    help="Also checkpoint every N samples (default: every 5 minutes and on Ctrl-C).")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", rich_help_panel=METRIC_PANEL,
    help="Compare with reference statistics of another extractor or resolution anyway (warned).")]


def render_result(res: dict[str, Any]) -> None:
    table = Table(box=None, pad_edge=False, show_header=True)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("± std", justify="right", no_wrap=True)
    if "fid" in res["metrics"]:
        table.add_row("FID", fmt_number(res["fid"]), "")
    if "is" in res["metrics"]:
        table.add_row("IS", fmt_number(res["is_mean"]), fmt_number(res["is_std"]))
    if "kid" in res["metrics"]:
        table.add_row("KID", fmt_number(res["kid_mean"], 6), fmt_number(res["kid_std"], 6))
    out.print(table)
    if res.get("images"):
        what = f"images {res['images']}"
    else:
        what = (f"{res['model']} psi={res['trunc']:g} ({res['trunc_convention']}) seed={res['seed']} "
                f"classes={res['classes'] if isinstance(res['classes'], str) else 'list'} {res['dtype']}")
    out.print(f"n={res['n']}  {what}")
    ref = f"ref={res['ref']}  " if res.get("ref") else ""
    rate = f" ({res['samples_per_second']:.1f} img/s)" if res.get("samples_per_second") else ""
    out.print(f"{ref}extractor={res['extractor_id']}  {res['seconds']:.1f} s{rate}")


def _run(metrics: tuple[str, ...], **kw: Any) -> None:
    from ..errors import UsageError
    from ..metrics.evaluate import check_gates, distributed_env, evaluate

    json_, quiet = kw.pop("json_"), kw.pop("quiet")
    max_fid = None if kw["max_fid"] is None else parse_float(kw["max_fid"], option="--max-fid")
    min_is = None if kw["min_is"] is None else parse_float(kw["min_is"], option="--min-is")
    if max_fid is not None and "fid" not in metrics:
        raise UsageError("needs FID (eval fid or eval all)", option="--max-fid")
    if min_is is not None and "is" not in metrics:
        raise UsageError("needs the Inception Score (eval is or eval all)", option="--min-is")
    psi = parse_float(kw["trunc"], option="--trunc")
    res = evaluate(
        model=kw["model"], weights=kw["weights"], images=kw["images"], metrics=metrics, n=kw["n"], psi=psi,
        seed=kw["seed"], classes=kw["classes"], ref=kw["ref"], inception_weights=kw["inception_weights"],
        device=kw["device"], dtype=kw["dtype"], batch_size=kw["batch_size"], resume=kw["resume"],
        progress=not quiet, force=kw["force"], resize=kw["resize"], center_crop=kw["center_crop"],
        is_splits=kw["splits"], is_shuffle=kw["is_shuffle"], kid_subsets=kw["kid_subsets"],
        kid_subset_size=kw["kid_subset_size"],
        checkpoint_every=kw["checkpoint_every"], warn=warn)
    if distributed_env().rank != 0:
        return
    if json_:
        emit_json(res)
    else:
        render_result(res)
    check_gates(res, max_fid=max_fid, min_is=min_is)


def _command(metrics: tuple[str, ...], doc: str) -> Callable[..., None]:
    def command(
        model: EvalModelOpt = None,
        weights: WeightsOpt = None,
        images: ImagesOpt = None,
        ref: RefOpt = None,
        n: NOpt = None,
        trunc: TruncOpt = "1.0",
        seed: SeedOpt = 0,
        classes: ClassesOpt = "balanced",
        resize: ResizeOpt = None,
        center_crop: CenterCropOpt = None,
        inception_weights: InceptionWeightsOpt = None,
        device: DeviceOpt = "auto",
        dtype: DtypeOpt = "fp32",
        batch_size: BatchSizeOpt = None,
        splits: SplitsOpt = 10,
        is_shuffle: IsShuffleOpt = True,
        kid_subsets: KidSubsetsOpt = 100,
        kid_subset_size: KidSubsetSizeOpt = None,
        max_fid: MaxFidOpt = None,
        min_is: MinIsOpt = None,
        resume: ResumeOpt = True,
        checkpoint_every: CheckpointEveryOpt = None,
        force: ForceOpt = False,
        json_: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        _run(metrics, **{k: v for k, v in locals().items() if k != "metrics"})

    command.__doc__ = doc
    return command


_COMMON_DOC = """

    Protocol: torch-fidelity's inception-v3-compat (the TF Inception graph behind the published numbers) on uint8 pixels round((x+1)*127.5); sample i uses seed S+i; details in docs/evaluation.md.

    Exit codes: 0 ok; 1 runtime failure (e.g. Inception weights unavailable offline); 2 bad input; 3 quality gate missed (the result is still printed).
"""

FID_DOC = """Fréchet Inception Distance against reference statistics (--ref).

    Examples:

      bigganctl eval fid --model biggan-deep-128 --ref imagenet-128 --n 50000

      bigganctl eval fid --images samples.npz --ref imagenet-256 --max-fid 10 --json
""" + _COMMON_DOC

IS_DOC = """Inception Score (10 splits, torch-fidelity's protocol).

    Examples:

      bigganctl eval is --model biggan-deep-256 --trunc 0.5 --n 50000

      bigganctl eval is --images samples/ --min-is 100
""" + _COMMON_DOC

KID_DOC = """Kernel Inception Distance against reference features (--ref FILE.npz from `stats compute --keep-features`).

    Examples:

      bigganctl eval kid --images samples/ --ref val128.npz --kid-subset-size 1000
""" + _COMMON_DOC

ALL_DOC = """FID, Inception Score and KID in one pass over the samples.

    Examples:

      bigganctl eval all --images A/ --ref B.npz --json

      bigganctl eval all --model biggan-deep-128 --weights random --n 64 --ref ref.npz
""" + _COMMON_DOC


def register(app: typer.Typer) -> None:
    eval_app.command("fid")(_command(("fid",), FID_DOC))
    eval_app.command("is")(_command(("is",), IS_DOC))
    eval_app.command("kid")(_command(("kid",), KID_DOC))
    eval_app.command("all")(_command(("fid", "is", "kid"), ALL_DOC))
    app.add_typer(eval_app, name="eval")
