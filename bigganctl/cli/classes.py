"""``bigganctl classes [QUERY]``: search the bundled ImageNet class table."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Optional

import typer

from ..classes import search
from .options import JsonOpt
from .render import emit_json, err

HELP = (
    "Search the 1000 ImageNet classes by index, WordNet id, name or synonym.\n\n"
    "Matches, best first: an index or WordNet id; an exact name; whole words; substrings; close "
    "spellings. Without QUERY, lists all classes. Classes sharing a name show their WordNet "
    "definition. Text mode exits 1 when nothing matches; --json always exits 0.\n\n"
    "Examples:\n\n"
    "  bigganctl classes retriever\n\n"
    "  bigganctl classes crane            (two classes: 134 the bird, 517 the machine)\n\n"
    "  bigganctl classes n02099601 --json\n"
)


def classes_cmd(
    query: Annotated[Optional[str], typer.Argument(metavar="[QUERY]", help="Text to look for.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, metavar="K",
                                                 help="Show at most K matches.")] = None,
    json_out: JsonOpt = False,
) -> None:
    found = search(query or "", limit=limit)
    if json_out:
        emit_json({"query": query or "", "count": len(found),
                   "classes": [c.to_dict(full=True) for c in found]})
        return
    if not found:
        err.print(f"no class matches {query!r}")
        raise typer.Exit(1)
    names = Counter(c.name.casefold() for c in found)
    for c in found:
        others = [s for s in c.synonyms if s != c.name]
        line = f"{c.index:>3}  {c.wnid}  {c.name}" + (f"  ({', '.join(others)})" if others else "")
        typer.echo(line + (f"  - {c.gloss}" if names[c.name.casefold()] > 1 else ""))


def register(app: typer.Typer) -> None:
    app.command("classes", help=HELP)(classes_cmd)
