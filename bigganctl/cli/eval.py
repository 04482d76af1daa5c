"""``bigganctl eval fid | is | kid | all``: IS / FID / KID of a generator or of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional
from collections.abc import Callable

import typer

from ..parsing import parse_float
from .options import (
    N_FLAGS,
    METRIC_PANEL,
    SOURCE_PANEL,
    BatchSizeOpt,
    CheckpointEveryOpt,
    ClassesOpt,
    CompileModeOpt,
    CompileOpt,
    DeviceOpt,
    DtypeOpt,
    ForceOpt,
    InceptionWeightsOpt,
    JsonOpt,
    QuietOpt,
    RefOpt,
    ResumeOpt,
    SeedOpt,
    SummaryOpt,
    TruncOpt,
    WeightsOpt,
    compile_value,
)
from .render import emit_json, render_eval, rich_reporter, warn

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

EvalModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", metavar="NAME|DIR", rich_help_panel=SOURCE_PANEL,
    help="Generator to evaluate: a registered name or a Hugging Face-style folder. "
         "Default biggan-deep-128 (unless --images).")]
ImagesOpt = Annotated[Optional[Path], typer.Option(
    "--images", metavar="DIR|FILE.npz", rich_help_panel=SOURCE_PANEL,
    help="Evaluate these images instead of a generator: a folder (recursive png/jpg/jpeg/webp, "
         "sorted by path) or an .npz batch (arr_0 uint8 NHWC, as ADM and `sample --npz` write).")]
NOpt = Annotated[Optional[int], typer.Option(
    *N_FLAGS, metavar="N", rich_help_panel=SOURCE_PANEL,
    help="Number of samples. Default 50000 for a generator, every image for --images. "
         "Under torchrun spell it --num-samples (or -n).")]
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


def _command(metrics: tuple[str, ...], doc: str, kid_optional: bool = False) -> Callable[..., None]:
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
        compile_: CompileOpt = False,
        compile_mode: CompileModeOpt = None,
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
        summary: SummaryOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        from ..api.evaluate import evaluate
        from ..errors import UsageError
        from ..metrics.evaluation import check_gates
        from ..distributed import is_main

        gate_fid = None if max_fid is None else parse_float(max_fid, option="--max-fid")
        gate_is = None if min_is is None else parse_float(min_is, option="--min-is")
        if gate_fid is not None and "fid" not in metrics:
            raise UsageError("needs FID (eval fid or eval all)", option="--max-fid")
        if gate_is is not None and "is" not in metrics:
            raise UsageError("needs the Inception Score (eval is or eval all)", option="--min-is")
        res = evaluate(
            model=model, weights=weights, images=images, metrics="all" if kid_optional else metrics, n=n,
            psi=parse_float(trunc, option="--trunc"), seed=seed, classes=classes, ref=ref,
            inception_weights=inception_weights, device=device, dtype=dtype, batch_size=batch_size,
            resume=resume, progress=rich_reporter(quiet=quiet) or False, force=force, resize=resize,
            center_crop=center_crop, is_splits=splits, is_shuffle=is_shuffle, kid_subsets=kid_subsets,
            kid_subset_size=kid_subset_size, checkpoint_every=checkpoint_every, warn=warn,
            compile=compile_value(compile_, compile_mode))
        if not is_main():
            return
        if json_:
            emit_json(res)
        else:
            render_eval(res)
        if summary is not None:
            from .. import summary as md

            name = "all" if len(metrics) == 3 else metrics[0]
            md.append(summary, md.eval_section(res, md.eval_gates(res, max_fid=gate_fid, min_is=gate_is),
                                               f"bigganctl eval {name}"))
        check_gates(res, max_fid=gate_fid, min_is=gate_is)

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

KID_DOC = """Kernel Inception Distance against reference features.

    The reference must give features: a FILE.npz from `stats compute --keep-features`, or an ADM reference batch (imagenet-64|128|256|512, or an .npz with arr_0 and mu/sigma) whose images are run through the Inception network once and cached under $BIGGANCTL_HOME/stats/features/ (`stats pull NAME --features` does it ahead of time). Other statistics: exit 2.

    Examples:

      bigganctl eval kid --images samples/ --ref val128.npz --kid-subset-size 1000

      bigganctl eval kid --model biggan-deep-128 --ref imagenet-128 --n 10000
""" + _COMMON_DOC

ALL_DOC = """FID, Inception Score and KID in one pass over the samples.

    KID is computed when the reference can give features (see `eval kid --help`); otherwise FID and IS only, KID null in --json, and a note on stderr saying how to get it.

    Examples:

      bigganctl eval all --images A/ --ref B.npz --json

      bigganctl eval all --model biggan-deep-128 --weights random --n 64 --ref ref.npz
""" + _COMMON_DOC


def register(app: typer.Typer) -> None:
    eval_app.command("fid")(_command(("fid",), FID_DOC))
    eval_app.command("is")(_command(("is",), IS_DOC))
    eval_app.command("kid")(_command(("kid",), KID_DOC))
    eval_app.command("all")(_command(("fid", "is", "kid"), ALL_DOC, kid_optional=True))
    app.add_typer(eval_app, name="eval")
