"""``bigganctl models list | info NAME | pull NAME... | verify NAME...``: the model zoo and
the weights cache."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..weights import hub
from ..errors import ChecksumError, UsageError, WeightsUnavailable
from ..weights.registry import REGISTRY, ModelSpec
from .options import JsonOpt, QuietOpt
from .render import emit_json, err, note, out, rich_reporter

models_app = typer.Typer(
    help="The model zoo and the weights cache (BIGGANCTL_HOME, default ~/.cache/bigganctl).\n\n"
         "Examples:\n\n"
         "  bigganctl models list\n\n"
         "  bigganctl models info biggan-deep-256\n\n"
         "  bigganctl models pull biggan-deep-128 inception   # then copy BIGGANCTL_HOME to offline nodes\n\n"
         "  bigganctl models verify biggan-deep-128",
    no_args_is_help=True,
)

NamesArg = Annotated[list[str], typer.Argument(
    metavar="NAME...", help="Model names (see `bigganctl models list`) or `inception`.", show_default=False)]
NameArg = Annotated[str, typer.Argument(
    help="A model name (see `bigganctl models list`), `inception`, or a model folder.",
    show_default=False)]


def _lookup(name: str) -> ModelSpec | hub.Asset:
    asset = hub.get_asset(name)
    if asset is not None:
        return asset
    from ..weights.loader import resolve_spec

    try:
        return resolve_spec(name)
    except UsageError as e:
        msg = e.message.replace("`bigganctl models list`", "`bigganctl models list` (or `inception`)")
        raise UsageError(msg, option="NAME") from None


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def _total_size(spec: ModelSpec | hub.Asset, status: dict[str, Any] | None = None) -> int | None:
    """Bytes of the weights: the registry's sizes, else the sizes recorded at first download."""
    files = (status or hub.cache_status(spec))["files"]
    sizes = [f["expected_size"] if f["expected_size"] is not None else f["recorded_size"]
             for f in files if f["filename"] != "config.json"]
    return sum(sizes) if sizes and all(s is not None for s in sizes) else None


def _checksum_summary(status: dict[str, Any]) -> str:
    """The weakest per-file checksum state: ``unknown`` < ``tofu`` < ``pinned``."""
    kinds = {f["checksum"] for f in status["files"]}
    return next((k for k in ("unknown", "tofu", "pinned") if k in kinds), "")


def _config_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}
    return dict(config or {})


def _checksums(st: dict[str, Any]) -> dict[str, str]:
    return {f["filename"]: f["checksum"] for f in st["files"]}


def _model_row(spec: ModelSpec) -> dict[str, Any]:
    st = hub.cache_status(spec)
    return {"name": spec.name, "arch": spec.arch, "resolution": spec.resolution,
            "truncation": spec.truncation, "format": spec.format, "size": _total_size(spec, st),
            "cache": st["state"], "checksum": _checksum_summary(st), "checksums": _checksums(st),
            "downloadable": spec.downloadable, "description": spec.description}


def _asset_row(asset: hub.Asset) -> dict[str, Any]:
    st = hub.cache_status(asset)
    return {"name": asset.name, "size": _total_size(asset, st), "cache": st["state"],
            "checksum": _checksum_summary(st), "checksums": _checksums(st), "description": asset.description}


_SHA_WORD = {"pinned": "pinned", "tofu": "tofu", "unknown": "?", "": ""}
_STATE_STYLE = {"cached": "green", "partial": "yellow", "missing": "dim", "manual": "magenta"}


def list_cmd(json_: JsonOpt = False) -> None:
    """List the registered models and whether their weights are cached.

    Cache states: cached, partial, missing (`models pull` fetches it), manual (no public
    URL: download by hand and pass --weights PATH). sha256: pinned (the registry states
    every file's sha256), tofu (some recorded at the first download: trust on first use),
    ? (some not yet known: recorded when first downloaded; `--json` says `unknown`).

    Examples:

      bigganctl models list

      bigganctl models list --json | jq '.models[] | select(.cache == "cached") | .name'
    """
    rows = [_model_row(s) for s in REGISTRY.values()]
    assets = [_asset_row(a) for a in hub.ASSETS.values()]
    if json_:
        emit_json({"home": str(hub.home()), "offline": hub.offline(), "models": rows, "assets": assets})
        return
    table = Table(title=f"models (cache: {hub.home()})", title_justify="left", box=None, pad_edge=False,
                  collapse_padding=True)
    for col in ("name", "arch", "res", "truncation", "format", "size", "sha256", "cache"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        style = _STATE_STYLE.get(r["cache"], "")
        table.add_row(r["name"], r["arch"], str(r["resolution"]), r["truncation"], r["format"],
                      _human(r["size"]), _SHA_WORD[r["checksum"]], f"[{style}]{r['cache']}[/{style}]")
    for r in assets:
        style = _STATE_STYLE.get(r["cache"], "")
        table.add_row(r["name"], "(metrics)", "", "", "", _human(r["size"]), _SHA_WORD[r["checksum"]],
                      f"[{style}]{r['cache']}[/{style}]")
    out.print(table)
    if hub.offline():
        note("offline mode (BIGGANCTL_OFFLINE / HF_HUB_OFFLINE): only cached weights are used")


def _info(spec: ModelSpec | hub.Asset) -> dict[str, Any]:
    st = hub.cache_status(spec)
    files = [{"filename": f["filename"], "urls": f["urls"], "size": f["expected_size"],
              "sha256": f["expected_sha256"], "checksum": f["checksum"],
              "recorded_sha256": f["recorded_sha256"], "recorded_size": f["recorded_size"],
              "member": f["member"], "path": f["path"],
              "cached": f["present"], "cached_size": f["size"], "verified": f["verified"]}
             for f in st["files"]]
    doc: dict[str, Any] = {"name": spec.name, "description": spec.description, "cache": st["state"],
                           "cache_dir": st["dir"], "size": _total_size(spec, st), "files": files,
                           "notes": spec.notes}
    if isinstance(spec, ModelSpec):
        from ..noise import CONVENTIONS

        doc.update({"arch": spec.arch, "format": spec.format, "resolution": spec.resolution,
                    "truncation": spec.truncation,
                    "truncation_convention": CONVENTIONS.get(spec.truncation, ""),
                    "config": _config_dict(spec.config), "paper": spec.paper})
        if spec.local_dir:
            from ..weights.formats.checkpoint import find_weights_file

            wfile = find_weights_file(Path(spec.local_dir))
            doc.update({"local_dir": spec.local_dir, "cache": "local", "cache_dir": spec.local_dir,
                        "files": [{"filename": wfile.name, "urls": [], "size": wfile.stat().st_size,
                                   "sha256": hub.cached_sha256(wfile), "checksum": "local",
                                   "recorded_sha256": None, "recorded_size": None,
                                   "member": None, "path": str(wfile),
                                   "cached": True, "cached_size": wfile.stat().st_size, "verified": None}]
                        if wfile else []})
            doc["size"] = wfile.stat().st_size if wfile else None
    return doc


_CHECKSUM_WORDS = {
    "pinned": "pinned (stated by the registry)",
    "tofu": "recorded on first use (TOFU; verified on every later use)",
    "unknown": "not yet known (recorded at the first download, then verified)",
    "local": "computed from the file (a local folder)",
}


def info_cmd(name: NameArg, json_: JsonOpt = False) -> None:
    """Show a model's config, sources, sizes, checksums, cache state and truncation convention.

    Examples:

      bigganctl models info biggan-deep-256

      bigganctl models info inception --json
    """
    doc = _info(_lookup(name))
    if json_:
        emit_json(doc)
        return
    out.print(f"[bold]{escape(doc['name'])}[/bold]  {escape(doc['description'])}")
    if "arch" in doc:
        out.print(f"  arch        {doc['arch']} ({doc['format']} checkpoint format), {doc['resolution']} px")
        out.print(f"  truncation  {doc['truncation']}: {escape(doc['truncation_convention'])}")
    out.print(f"  size        {_human(doc['size'])}")
    out.print(f"  cache       {doc['cache']}  {escape(doc['cache_dir'])}")
    for f in doc["files"]:
        out.print(f"  file        {escape(f['filename'])}" + (f" (in archive: {escape(f['member'])})" if f["member"] else ""))
        size = f["size"] if f["size"] is not None else f["recorded_size"]
        out.print(f"    size      {_human(size)}" + (f" ({size:,} bytes)" if size else ""))
        out.print(f"    sha256    {f['sha256'] or f['recorded_sha256'] or 'unknown'}")
        out.print(f"    checksum  {_CHECKSUM_WORDS.get(f['checksum'], f['checksum'])}")
        for url in f["urls"] or ["(no public URL)"]:
            out.print(f"    source    {escape(url)}")
        state = "cached" if f["cached"] else "not cached"
        if f["cached"]:
            state += {True: ", verified", False: ", CHECKSUM MISMATCH", None: ""}[f["verified"]]
        out.print(f"    cache     {state}")
    if doc.get("config"):
        out.print("  config")
        for k, v in doc["config"].items():
            out.print(f"    {k:<26} {escape(str(v))}")
    if doc.get("notes"):
        out.print(f"  notes       {escape(doc['notes'])}")


PullForceOpt = Annotated[bool, typer.Option(
    "--force", help="Delete the cached files and their recorded checksums first, then download "
                    "afresh (and trust the new files where the registry pins no sha256).")]


def pull_cmd(names: NamesArg, force: PullForceOpt = False, quiet: QuietOpt = False,
             json_: JsonOpt = False) -> None:
    """Download weights into the cache so later runs work offline.

    Sources are tried in order (the original URL first, then mirrors such as the Hugging
    Face Hub). Downloads resume after interruptions and are verified against the registry's
    size and sha256; where the registry pins none, the sha256 is recorded at the first
    download and every later use must match it (trust on first use). On an HPC cluster:
    pull on a login node, then copy (or share) BIGGANCTL_HOME and run compute jobs with
    BIGGANCTL_OFFLINE=1.

    Examples:

      bigganctl models pull biggan-deep-128

      bigganctl models pull biggan-deep-256 inception

      BIGGANCTL_HOME=/shared/bigganctl bigganctl models pull biggan-deep-512

      bigganctl models pull biggan-deep-512 --force   # re-fetch, forget the recorded sha256
    """
    specs = [_lookup(n) for n in names]       # all names checked before any download
    if hub.offline():     # cached files are still checked (and reported); nothing is fetched
        needed = [s.name for s in specs if force or hub.cache_status(s)["state"] != "cached"]
        if needed:
            why = "--force re-downloads" if force else "not cached"
            raise WeightsUnavailable(f"offline mode is on (BIGGANCTL_OFFLINE / HF_HUB_OFFLINE) and "
                                     f"{', '.join(needed)}: {why}; unset it to download, or pull on a "
                                     "machine with network access and copy BIGGANCTL_HOME here")
    results, failures = [], []
    for spec in specs:
        if force:
            hub.forget(spec)
        try:
            paths = hub.ensure_spec(spec, progress=rich_reporter(quiet=quiet))
        except (WeightsUnavailable, ChecksumError) as e:
            failures.append(e)
            if len(specs) > 1:
                err.print(f"[bold red]error:[/bold red] {spec.name}: {escape(str(e))}")
            continue
        results.append({"name": spec.name, "dir": str(hub.spec_dir(spec)), "files": [str(p) for p in paths]})
        note(f"{spec.name}: cached in {hub.spec_dir(spec)}", quiet=quiet)
    if json_:
        emit_json({"pulled": results, "failed": [str(f) for f in failures]})
    elif results:
        for r in results:
            out.print(r["dir"])
    if failures:
        if len(specs) > 1:
            raise type(failures[0])(f"{len(failures)} of {len(specs)} pulls failed")
        raise failures[0]


def verify_cmd(names: NamesArg, json_: JsonOpt = False) -> None:
    """Recompute the sha256 of cached files and compare with the registry.

    Exit code 1 when a file is missing or does not match. Files without a published
    checksum are compared with the sha256 recorded at their first download (trust on
    first use); with neither they are reported as `unknown` (their sha256 is printed).

    Examples:

      bigganctl models verify biggan-deep-256

      bigganctl models verify biggan-deep-128 inception --json
    """
    specs = [_lookup(n) for n in names]
    report = [{"name": s.name, "files": hub.verify(s)} for s in specs]
    if json_:
        emit_json({"results": report})
    else:
        style = {"ok": "green", "unknown": "yellow", "missing": "dim", "mismatch": "bold red"}
        width = max(len(f"{r['name']}/{f['filename']}") for r in report for f in r["files"])
        for r in report:
            for f in r["files"]:
                st = f["status"]
                label = f"{r['name']}/{f['filename']}"
                out.print(f"{escape(label):<{width}}  [{style[st]}]{st:<8}[/{style[st]}]  {f['sha256'] or ''}")
    bad = [(r["name"], f) for r in report for f in r["files"] if f["status"] == "mismatch"]
    missing = [(r["name"], f) for r in report for f in r["files"] if f["status"] == "missing"]
    if bad:
        name, f = bad[0]
        raise ChecksumError(f"{name}: {f['filename']} has sha256 {f['sha256']}, expected {f['expected_sha256']}"
                            + (f" (size {f['size']}, expected {f['expected_size']})" if f["expected_size"] else ""),
                            hint=f"delete {f['path']} and run `bigganctl models pull {name}`")
    if missing:
        name, f = missing[0]
        raise WeightsUnavailable(f"{name}: {f['filename']} is not cached",
                                 hint=f"run `bigganctl models pull {name}`")


def register(app: typer.Typer) -> None:
    models_app.command("list")(list_cmd)
    models_app.command("info")(info_cmd)
    models_app.command("pull")(pull_cmd)
    models_app.command("verify")(verify_cmd)
    app.add_typer(models_app, name="models")
