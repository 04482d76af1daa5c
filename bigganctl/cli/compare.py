"""``bigganctl compare BASELINE CURRENT``: did anything get worse?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .options import JsonOpt, SummaryOpt
from .render import emit_json, err, fmt_number, out

HELP = """Compare a result against a baseline: a table of baseline, current, change and verdict per metric.

BASELINE and CURRENT: the --json output of `eval`, `sweep`, `bench` or `stats info`, or the files `sweep` writes (sweep.json, sweep.csv, or its --out folder). Every numeric metric present in both is compared.

Default tolerances (relative to the baseline, in the metric's direction): fid, sfid +5%; kid_mean +10%; is_mean -5%; precision, recall -0.02 (absolute); images_per_s, features_per_s -10%; fid50k_s +10%. Timings of whole runs, load time and memory are shown without a verdict unless --tol names them; so is any metric bigganctl does not know.

The protocols must agree: N, reference, extractor weights, psi, class plan, resolution, IS/KID settings, metric version; for bench the workload and the machine (CPU, ISA, device name, torch). Otherwise exit 2 naming the fields, unless --force. Generator weights may differ (a new checkpoint against the old one): both hashes are shown.

Noise: where both runs carry a spread (IS std over splits, KID std over subsets) or --noise gives a metric's seed-to-seed std, the change is also shown in units of it (Δ/noise).

Exit codes: 0 no regression; 2 bad input or different protocols; 3 a metric regressed beyond its tolerance.

Examples:

  bigganctl compare baseline/eval.json eval.json

  bigganctl compare baseline/bench.json bench.json --tol images_per_s=-20% --summary "$GITHUB_STEP_SUMMARY"

  bigganctl compare old-sweep/ new-sweep/sweep.csv --tol fid=+1.0 --noise fid=0.8 --json
"""

TolOpt = Annotated[Optional[list[str]], typer.Option(
    "--tol", metavar="METRIC=VALUE",
    help="Tolerance, repeatable or comma-separated: fid=2% (relative), fid=+0.5 (absolute), "
         "images_per_s=-10%, seconds=off. A leading + means a rise is worse, - a drop; without a sign "
         "the metric's direction (unknown metrics: either way).")]
NoiseOpt = Annotated[Optional[list[str]], typer.Option(
    "--noise", metavar="METRIC=STD",
    help="The metric's seed-to-seed standard deviation at this protocol (measured, e.g. by the recipe "
         "in docs/ci.md): the change is also shown in units of it.")]
ForceCmpOpt = Annotated[bool, typer.Option(
    "--force", help="Compare results of different protocols anyway (the differences are listed).")]

_STYLE = {"regressed": "bold red", "improved": "green", "ok": "", "info": "dim"}


def compare(
    baseline: Annotated[Path, typer.Argument(metavar="BASELINE", help="The reference result (file or sweep folder).")],
    current: Annotated[Path, typer.Argument(metavar="CURRENT", help="The result to judge (file or sweep folder).")],
    tol: TolOpt = None,
    noise: NoiseOpt = None,
    force: ForceCmpOpt = False,
    json_: JsonOpt = False,
    summary: SummaryOpt = None,
) -> None:
    from ..compare import compare as run, load, parse_noise, tolerances
    from ..errors import GateFailed

    from ..compare import ProtocolMismatch

    tols, sigma = tolerances(tol), parse_noise(noise)
    try:
        report = run(load(baseline, option="BASELINE"), load(current, option="CURRENT"), tols, force=force,
                     noise=sigma)
    except ProtocolMismatch as e:
        if summary is not None:             # the CI page says why nothing was compared
            from .. import summary as md

            md.append(summary, md.refusal_section(e.differences, str(baseline), str(current)))
        raise
    if report["protocol"]["forced"]:
        diffs = "; ".join(f"{d['field']} ({d['baseline']} vs {d['current']})"
                          for d in report["protocol"]["differences"])
        err.print(f"[yellow]warning:[/yellow] protocols differ, compared because of --force: {escape(diffs)}")
    if json_:
        emit_json(report)
    else:
        render(report)
    if summary is not None:
        from .. import summary as md

        md.append(summary, md.compare_section(report, f"bigganctl compare: {report['result_kind']}"))
    if report["verdict"] == "regressed":
        names = ", ".join(f"{r['entry']} {r['metric']}".strip() for r in report["rows"]
                          if r["verdict"] == "regressed")
        raise GateFailed(f"regression against {baseline}: {names}")


def render(report: dict) -> None:
    """The table on stdout; protocol notes on stderr."""
    table = Table(box=None, pad_edge=False)
    for name in ("metric", "baseline", "current", "change", "tolerance", "Δ/noise", "verdict"):
        table.add_column(name, justify="left" if name in ("metric", "verdict") else "right", no_wrap=True)
    for r in report["rows"]:
        rel = f" ({r['change_rel'] * 100:+.1f}%)" if r["change_rel"] is not None else ""
        sig = f"{r['sigmas']:+.1f}σ" if r["sigmas"] is not None else ""
        style = _STYLE.get(r["verdict"], "")
        table.add_row(escape(f"{r['entry']} {r['metric']}".strip()), fmt_number(r["baseline"]),
                      fmt_number(r["current"]), f"{r['change']:+.4g}{rel}", r["tolerance"], sig,
                      f"[{style}]{r['verdict']}[/{style}]" if style else r["verdict"])
    _print_wide(table)
    for i in report["identity"]:
        if not i["same"]:
            out.print(escape(f"{i['field']}: baseline {i['baseline']}  current {i['current']}"))
    for what, names in (("only in the baseline", report["only_baseline"]),
                        ("only in the current run", report["only_current"])):
        if names:
            err.print(f"note: {what}: {escape(', '.join(names))}")
    n_bad = report["regressions"]
    out.print(f"[bold red]{n_bad} regression{'s' if n_bad != 1 else ''}[/bold red]" if n_bad
              else "no regression")


def _print_wide(table: Table) -> None:
    """Print whole numbers, never ``1.23…``: wider than the terminal if need be (CI logs are 80)."""
    from rich.console import Console
    from rich.measure import Measurement

    need = Measurement.get(out, out.options.update(max_width=1000), table).maximum
    console = out if need <= out.width else Console(highlight=False, soft_wrap=True, width=need)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("compare", help=HELP)(compare)
