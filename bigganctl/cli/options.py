"""Shared options, declared once so every command spells and checks them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

MODEL_PANEL = "Model"
SAMPLING_PANEL = "Sampling"
OUTPUT_PANEL = "Output"

DEFAULT_MODEL = "biggan-deep-128"

ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", metavar="NAME|DIR", rich_help_panel=MODEL_PANEL,
    help="Registered model name (see `bigganctl models list`) or a Hugging Face-style folder.")]
ModelsOpt = Annotated[Optional[list[str]], typer.Option(
    "--model", "-m", metavar="NAME|DIR", rich_help_panel=MODEL_PANEL,
    help="Model name or folder; repeat to compare several. Default biggan-deep-128.")]
WeightsOpt = Annotated[Optional[str], typer.Option(
    "--weights", "-w", metavar="PATH|random", rich_help_panel=MODEL_PANEL,
    help="Weights from a local file or folder in the model's format, or `random` "
         "(deterministic random init, for smoke tests and benchmarks). Default: cache/download.")]
DeviceOpt = Annotated[str, typer.Option(
    "--device", metavar="auto|cpu|cuda|cuda:N|mps", rich_help_panel=MODEL_PANEL,
    help="Where the generator runs: auto = CUDA if present, else MPS, else CPU.")]
ExtractorDeviceOpt = Annotated[str, typer.Option(
    "--device", metavar="auto|cpu|cuda|cuda:N|mps", rich_help_panel=MODEL_PANEL,
    help="Where the Inception extractor runs: auto = CUDA if present, else MPS, else CPU.")]
DtypeOpt = Annotated[str, typer.Option(
    "--dtype", metavar="fp32|bf16|fp16", rich_help_panel=MODEL_PANEL,
    help="Generator precision (metric features are always computed in fp32).")]
BatchSizeOpt = Annotated[Optional[int], typer.Option(
    "--batch-size", "-b", min=1, metavar="N", rich_help_panel=SAMPLING_PANEL,
    help="Upper bound on the batch; results do not depend on it (beyond float rounding: docs/cli.md). Default: by device.")]
TruncOpt = Annotated[str, typer.Option(
    "--trunc", "-t", metavar="PSI", rich_help_panel=SAMPLING_PANEL,
    help="Truncation psi. DeepMind models: psi in (0, 1], z = psi*TruncNorm(-2, 2) plus "
         "matching BN statistics; other models: N(0,1) re-drawn beyond +-psi.")]
SeedOpt = Annotated[int, typer.Option(
    "--seed", "-s", min=0, metavar="S", rich_help_panel=SAMPLING_PANEL,
    help="First per-sample seed (samples use S, S+1, ...).")]
SeedsOpt = Annotated[Optional[str], typer.Option(
    "--seeds", metavar="RANGE", rich_help_panel=SAMPLING_PANEL,
    help="Explicit per-sample seeds, e.g. 0-15,20.")]
ClassOpt = Annotated[Optional[list[str]], typer.Option(
    "--class", "-c", metavar="C", rich_help_panel=SAMPLING_PANEL,
    help="ImageNet class: index (207), WordNet id (n02099601) or name ('golden retriever'); "
         "repeatable and comma-separated.")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", rich_help_panel=OUTPUT_PANEL, help="Print exactly one JSON document on stdout.")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", rich_help_panel=OUTPUT_PANEL, help="No progress output on stderr.")]
SummaryOpt = Annotated[Optional[Path], typer.Option(
    "--summary", metavar="FILE", rich_help_panel=OUTPUT_PANEL,
    help="Append a Markdown section (the numbers, gate verdicts, key protocol fields) to FILE; "
         "--summary \"$GITHUB_STEP_SUMMARY\" shows it on the GitHub Actions run page (docs/ci.md).")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", rich_help_panel=OUTPUT_PANEL, help="Replace existing output files.")]
CompileOpt = Annotated[bool, typer.Option(
    "--compile", rich_help_panel=MODEL_PANEL,
    help="Run the networks through torch.compile: slower start (warm-up, cached under "
         "$BIGGANCTL_HOME/compile for the next run), faster batches; pixels equal eager's within "
         "one 8-bit level.")]
CompileModeOpt = Annotated[Optional[str], typer.Option(
    "--compile-mode", metavar="default|reduce-overhead|max-autotune", rich_help_panel=MODEL_PANEL,
    help="torch.compile mode (implies --compile); reduce-overhead and max-autotune use CUDA graphs on GPUs.")]


def compile_value(flag: bool, mode: str | None) -> bool | str:
    """``--compile`` and ``--compile-mode`` as the API's ``compile=`` argument."""
    return mode if mode is not None else flag


InceptionWeightsOpt = Annotated[Optional[Path], typer.Option(
    "--inception-weights", metavar="PATH", rich_help_panel=MODEL_PANEL,
    help="torch-fidelity inception-v3-compat weights file (default: cache, then download).")]
#: The sample count's spellings: ``--num-samples`` is the one to use under torchrun, whose own
#: parser refuses ``--n`` as an ambiguous prefix of ``--nnodes`` / ``--nproc-per-node``.
N_FLAGS = ("--n", "--num-samples", "-n")
NOpt = Annotated[Optional[int], typer.Option(
    *N_FLAGS, metavar="N", rich_help_panel=SAMPLING_PANEL,
    help="Number of samples (per class where classes are given); seeds S..S+N-1 from --seed. "
         "Under torchrun spell it --num-samples (or -n).")]

# --- metrics options shared by `eval` and `sweep`
METRIC_PANEL = "Metrics"
SOURCE_PANEL = "What is evaluated"

RefOpt = Annotated[Optional[str], typer.Option(
    "--ref", metavar="NAME|FILE", rich_help_panel=METRIC_PANEL,
    help="Reference statistics for FID/KID: imagenet-64|128|256|512 (ADM batches, see `bigganctl "
         "stats list`) or an .npz with mu/sigma (`bigganctl stats compute`; --keep-features for KID).")]
ClassesOpt = Annotated[str, typer.Option(
    "--classes", metavar="balanced|random|C,...", rich_help_panel=SOURCE_PANEL,
    help="Class of each sample: balanced (sample i gets class i mod 1000), random (seeded by --seed) "
         "or a list of classes cycled through (207,goldfish,n01443537).")]
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


# ----------------------------------------------------------------------------- parameter -> flag

#: The core names the Python parameter in a UsageError (``psi``); the CLI shows the flag
#: that sets it. Listed: every parameter whose flag is not ``--`` + the name with ``-`` for
#: ``_`` (``batch_size`` -> ``--batch-size`` needs no entry).
PARAM_FLAGS = {
    "psi": "--trunc", "psis": "--trunc", "models": "--model", "out_dir": "--out",
    "images_dir": "--images", "is_splits": "--splits", "compile": "--compile-mode",
    "source": "SRC", "classes": "--classes",
}
#: Commands that spell a parameter differently from PARAM_FLAGS.
COMMAND_FLAGS = {"sample": {"classes": "--class"}, "interp": {"classes": "--class"}}


def cli_flag(param: str, command: str | None = None) -> str:
    """The flag (or argument) of the CLI that sets the Python parameter ``param``; a name that
    already is a flag (``--no-grid``) or an argument (``SRC``) is returned as it is."""
    if param.startswith("-") or param.isupper():
        return param
    return COMMAND_FLAGS.get(command or "", {}).get(param) or PARAM_FLAGS.get(param) or "--" + param.replace("_", "-")

