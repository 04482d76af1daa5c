"""``bigganctl eval fid | is | kid | sfid | pr | precision | recall | all``: the metrics of a
generator or of images."""

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
    help="Inception Score, FID, KID, sFID, precision and recall of a generator (samples go straight into the feature "
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
SplitsOpt = Annotated[str, typer.Option(
    "--splits", metavar="K|adm", rich_help_panel=METRIC_PANEL,
    help="Inception Score splits: K (torch-fidelity protocol: seeded shuffle, K contiguous splits), or "
         "adm (ADM's evaluator: consecutive blocks of 5000 samples, not shuffled, mean of their scores). "
         "The result records the rule (is_rule).")]
PrDistancesOpt = Annotated[str, typer.Option(
    "--pr-distances", metavar="fp32|fp16", rich_help_panel=METRIC_PANEL,
    help="Precision/recall distances in float32 (default) or from float16-cast features as ADM's "
         "evaluator (docs/evaluation.md: how much that moves them).")]
MaxSfidOpt = Annotated[Optional[str], typer.Option(
    "--max-sfid", metavar="X", rich_help_panel=METRIC_PANEL,
    help="Quality gate: exit 3 (after printing the result) if sFID > X.")]
MinPrecisionOpt = Annotated[Optional[str], typer.Option(
    "--min-precision", metavar="P", rich_help_panel=METRIC_PANEL,
    help="Quality gate: exit 3 (after printing the result) if precision < P.")]
MinRecallOpt = Annotated[Optional[str], typer.Option(
    "--min-recall", metavar="R", rich_help_panel=METRIC_PANEL,
    help="Quality gate: exit 3 (after printing the result) if recall < R.")]
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


_GATE_NEEDS = {"max_fid": ("fid", "FID (eval fid or eval all)"), "min_is": ("is", "the Inception Score (eval is or eval all)"),
               "max_sfid": ("sfid", "sFID (eval sfid or eval all)"),
               "min_precision": ("precision", "precision (eval pr, eval precision or eval all)"),
               "min_recall": ("recall", "recall (eval pr, eval recall or eval all)")}


def _gates(metrics: tuple[str, ...], **given: str | None) -> dict[str, float | None]:
    from ..errors import UsageError

    out: dict[str, float | None] = {}
    for gate, raw in given.items():
        flag = "--" + gate.replace("_", "-")
        out[gate] = None if raw is None else parse_float(raw, option=flag)
        if out[gate] is not None and _GATE_NEEDS[gate][0] not in metrics:
            raise UsageError(f"needs {_GATE_NEEDS[gate][1]}", option=flag)
    return out


def _command(metrics: tuple[str, ...], doc: str, optional: tuple[str, ...] = ()) -> Callable[..., None]:
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
        splits: SplitsOpt = "10",
        is_shuffle: IsShuffleOpt = True,
        kid_subsets: KidSubsetsOpt = 100,
        kid_subset_size: KidSubsetSizeOpt = None,
        pr_distances: PrDistancesOpt = "fp32",
        max_fid: MaxFidOpt = None,
        min_is: MinIsOpt = None,
        max_sfid: MaxSfidOpt = None,
        min_precision: MinPrecisionOpt = None,
        min_recall: MinRecallOpt = None,
        resume: ResumeOpt = True,
        checkpoint_every: CheckpointEveryOpt = None,
        force: ForceOpt = False,
        json_: JsonOpt = False,
        summary: SummaryOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        from ..api.evaluate import evaluate
        from ..metrics.evaluation import check_gates
        from ..runtime.distributed import is_main

        gates = _gates(metrics, max_fid=max_fid, min_is=min_is, max_sfid=max_sfid, min_precision=min_precision,
                       min_recall=min_recall)
        res = evaluate(
            model=model, weights=weights, images=images, metrics="all" if optional else metrics, n=n,
            psi=parse_float(trunc, option="--trunc"), seed=seed, classes=classes, ref=ref,
            inception_weights=inception_weights, device=device, dtype=dtype, batch_size=batch_size,
            resume=resume, progress=rich_reporter(quiet=quiet) or False, force=force, resize=resize,
            center_crop=center_crop, is_splits=splits, is_shuffle=is_shuffle, kid_subsets=kid_subsets,
            kid_subset_size=kid_subset_size, pr_distances=pr_distances, checkpoint_every=checkpoint_every,
            warn=warn, compile=compile_value(compile_, compile_mode))
        if not is_main():
            return
        if json_:
            emit_json(res)
        else:
            render_eval(res)
        if summary is not None:
            from .. import summary as md

            name = "all" if optional else "pr" if metrics == ("precision", "recall") else metrics[0]
            md.append(summary, md.eval_section(res, md.eval_gates(res, **gates), f"bigganctl eval {name}"))
        check_gates(res, **gates)

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

SFID_DOC = """Spatial FID (ADM's evaluator) against the reference's mu_s/sigma_s.

    Features: Mixed_6d.branch1x1 (TF mixed_6/conv), first 7 channels in NHWC order, 2023 dims. The reference must carry mu_s/sigma_s: an ADM reference batch (imagenet-64|128|256|512) or a FILE.npz from `stats compute`. Other statistics: exit 2.

    Examples:

      bigganctl eval sfid --images samples.npz --ref imagenet-256

      bigganctl eval sfid --model biggan-deep-128 --ref imagenet-128 --max-sfid 8
""" + _COMMON_DOC

PR_DOC = """Improved precision and recall (k=3, ADM's evaluator) against the reference's features.

    Reference side: an ADM batch's 10k images (their features computed once and cached, as for KID) or the features a `stats compute --keep-features` file stores; sample side: all N samples. Distances in float32 (--pr-distances fp16: ADM's float16 cast). Chunked on the device, never an NxM matrix.

    Examples:

      bigganctl eval pr --images samples.npz --ref imagenet-128 --json

      bigganctl eval pr --model biggan-deep-128 --ref imagenet-128 --n 50000 --min-precision 0.7
""" + _COMMON_DOC

ALL_DOC = """FID, Inception Score, KID, sFID, precision and recall in one pass over the samples.

    Each metric is computed when the reference supports it: KID and precision/recall need features (see `eval kid --help`), sFID needs mu_s/sigma_s; a metric it cannot give is null in --json, with one note on stderr saying how to get it.

    Examples:

      bigganctl eval all --images A/ --ref B.npz --json

      bigganctl eval all --model biggan-deep-128 --weights random --n 64 --ref ref.npz
""" + _COMMON_DOC


def register(app: typer.Typer) -> None:
    eval_app.command("fid")(_command(("fid",), FID_DOC))
    eval_app.command("is")(_command(("is",), IS_DOC))
    eval_app.command("kid")(_command(("kid",), KID_DOC))
    eval_app.command("sfid")(_command(("sfid",), SFID_DOC))
    eval_app.command("pr")(_command(("precision", "recall"), PR_DOC))
    eval_app.command("precision")(_command(("precision",), PR_DOC.replace("precision and recall", "precision", 1)))
    eval_app.command("recall")(_command(("recall",), PR_DOC.replace("precision and recall", "recall", 1)))
    eval_app.command("all")(_command(("fid", "is", "kid", "sfid", "precision", "recall"), ALL_DOC,
                                     optional=("kid", "sfid", "precision", "recall")))
    app.add_typer(eval_app, name="eval")
