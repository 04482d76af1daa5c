"""Every ``bigganctl`` command in the docs, collected from their fenced shell blocks.

A *doc command* is a line of a ```bash / ```sh / ```shell / ```console block of
``README.md`` or ``docs/*.md`` that runs ``bigganctl``, ``python -m bigganctl`` or
``torchrun ... -m bigganctl`` (``\\`` continuations joined, ``# comments`` dropped, shell
operators ``| > && ;`` ending the command). Other lines (``pip``, ``make``, ``cd``,
``export``, ``cp``, ``python script.py``) are not commands of ours and are skipped.

Markers (docs/development.md): an HTML comment right before a block, invisible on the
rendered page, tells the harness what a command needs that a test cannot have::

    <!-- doc-test: parse-only `bigganctl bench --device cuda`: needs a CUDA GPU -->
    <!-- doc-test: exit 3 `bigganctl eval is`: the quality gate fails on random weights -->

``parse-only`` checks the command up to argument parsing; ``exit N`` expects that exit
code instead of 0. The part in backticks selects the commands of the block that start with
it (without it: every command of the block); the text after the colon is the reason and
is required. A marker that selects no command is an error, so markers cannot go stale.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh"}
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
_MARKER = re.compile(r"<!--\s*doc-test:(.*?)-->")
_DIRECTIVE = re.compile(r"^\s*(?P<kind>parse-only|exit\s+(?P<code>\d+))\s*(?:`(?P<prefix>[^`]+)`)?\s*:\s*(?P<reason>\S.*?)\s*$")
_ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OPERATORS = {"|", "||", "&&", ";", "&"}
_REDIRECTS = {">", ">>", "<", ">&", "&>"}


class DocError(ValueError):
    """A doc block the harness cannot read (a malformed or stale marker)."""


@dataclass(frozen=True)
class Directive:
    kind: str                  # "parse-only" | "exit"
    reason: str
    prefix: str | None = None
    exit_code: int = 0
    where: str = ""

    def selects(self, text: str) -> bool:
        return self.prefix is None or text.startswith(self.prefix)


@dataclass(frozen=True)
class DocCommand:
    """One documented command. ``argv``: the arguments after ``bigganctl``; ``launcher``:
    torchrun's own arguments (``None`` when not launched by torchrun)."""

    source: str                # "docs/evaluation.md:157"
    text: str                  # as written, continuations joined, comment dropped
    argv: tuple[str, ...]
    launcher: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    block: str = ""            # "docs/evaluation.md:151": commands of one block run in one folder
    parse_only: str | None = None
    exit_code: int = 0
    directives: tuple[Directive, ...] = field(default=(), compare=False)

    @property
    def id(self) -> str:
        return f"{self.source} {' '.join(self.argv[:2])}"


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def collect_all(root: Path = ROOT) -> list[DocCommand]:
    out: list[DocCommand] = []
    for p in doc_files(root):
        out += collect(p.read_text(encoding="utf-8"), str(p.relative_to(root)))
    return out


def collect(text: str, source: str) -> list[DocCommand]:
    """The doc commands of one markdown text (``source`` names it in ids and errors)."""
    lines = text.splitlines()
    pending: list[Directive] = []
    out: list[DocCommand] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            found = _MARKER.findall(lines[i])
            pending += [_directive(body, f"{source}:{i + 1}") for body in found]
            if lines[i].strip() and not found and pending:
                raise DocError(f"{pending[0].where}: doc-test marker not directly before a code block")
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence)), len(lines))
        block = f"{source}:{i + 1}"
        cmds = _block_commands(lines[i + 1:end], source, i + 2, block, lang) if lang in SHELL_LANGS else []
        out += _apply(pending, cmds, block)
        pending = []
        i = end + 1
    if pending:
        raise DocError(f"{pending[0].where}: doc-test marker at the end of the file")
    return out


def _directive(body: str, where: str) -> Directive:
    m = _DIRECTIVE.match(body)
    if not m:
        raise DocError(f"{where}: malformed marker <!-- doc-test:{body}--> (expected "
                       "'parse-only [`PREFIX`]: REASON' or 'exit N [`PREFIX`]: REASON')")
    kind = "exit" if m.group("code") else "parse-only"
    return Directive(kind, m.group("reason"), m.group("prefix"), int(m.group("code") or 0), where)


def _apply(directives: list[Directive], cmds: list[DocCommand], block: str) -> list[DocCommand]:
    out = []
    for c in cmds:
        mine = tuple(d for d in directives if d.selects(c.text))
        parse_only = next((d.reason for d in mine if d.kind == "parse-only"), None)
        code = next((d.exit_code for d in mine if d.kind == "exit"), 0)
        out.append(DocCommand(c.source, c.text, c.argv, c.launcher, c.env, block, parse_only, code, mine))
    for d in directives:
        if not any(d in c.directives for c in out):
            raise DocError(f"{d.where}: marker selects no command of the block at {block} "
                           f"(prefix {d.prefix!r})")
    return out


def _logical_lines(body: list[str], first_line: int, console: bool) -> list[tuple[int, str]]:
    """``(line number, text)`` with ``\\`` continuations joined; console: ``$ `` lines only."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for k, raw in enumerate(body):
        line = raw.rstrip()
        if not buf:
            if console:
                if not line.lstrip().startswith("$ "):
                    continue
                line = line.lstrip()[2:]
            start = first_line + k
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


def _block_commands(body: list[str], source: str, first_line: int, block: str, lang: str) -> list[DocCommand]:
    out = []
    for lineno, line in _logical_lines(body, first_line, console=lang == "console"):
        for tokens in _segments(line):
            cmd = _command(tokens, f"{source}:{lineno}", block)
            if cmd is not None:
                out.append(cmd)
    return out


def _segments(line: str) -> list[list[str]]:
    """Shell words of each simple command of ``line`` (comments and redirections dropped)."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    segs: list[list[str]] = [[]]
    skip = False
    for tok in lex:
        if skip:
            skip = False
        elif tok in _OPERATORS:
            segs.append([])
        elif tok in _REDIRECTS:
            skip = True                               # the redirection's target
            if segs[-1] and segs[-1][-1].isdigit():  # 2> file
                segs[-1].pop()
        else:
            segs[-1].append(tok)
    return [s for s in segs if s]


def _command(tokens: list[str], source: str, block: str) -> DocCommand | None:
    env = []
    while tokens and _ENV_ASSIGN.match(tokens[0]):
        k, _, v = tokens[0].partition("=")
        env.append((k, v))
        tokens = tokens[1:]
    if not tokens:
        return None
    prog = Path(tokens[0]).name
    launcher: tuple[str, ...] | None = None
    if prog == "bigganctl":
        argv = tokens[1:]
    elif re.fullmatch(r"python[\d.]*", prog) and tokens[1:3] == ["-m", "bigganctl"]:
        argv = tokens[3:]
    elif prog == "torchrun":
        idx = next((k for k, t in enumerate(tokens) if Path(t).name == "bigganctl"), None)
        if idx is None:
            return None
        launcher, argv = tuple(tokens[1:idx]), tokens[idx + 1:]
    else:
        return None
    text = shlex.join(tokens)
    return DocCommand(source, text, tuple(argv), launcher, tuple(env), block)


# ----------------------------------------------------------------------------- lowering

N_MAX = 10          # IS needs at least 10 samples (10 splits)
STEPS_MAX = 3
BENCH_N = 2
SWEEP_GRID = "0.5,1.0"


def lowered(argv: tuple[str, ...], n_flag: str = "--n") -> list[str]:
    """``argv`` with its sample counts lowered to what a test can afford: ``--n``/``-n``
    above :data:`N_MAX` (and eval/sweep without ``--n``, whose default is 50000/10000),
    ``--steps`` above :data:`STEPS_MAX` (interp without ``--steps``: 24 per segment),
    ``bench --n``, sweep's default psi grid. ``n_flag``: the spelling added (torchrun's own parser takes ``--n`` for
    an ambiguous abbreviation of its options, ``-n`` passes through)."""
    out = list(argv)
    cap = BENCH_N if out[:1] == ["bench"] else N_MAX
    has_n = False
    for k, tok in enumerate(out):
        if tok in ("--n", "-n", "--steps") and k + 1 < len(out):
            has_n |= tok != "--steps"
            limit = STEPS_MAX if tok == "--steps" else cap
            if out[k + 1].isdigit() and int(out[k + 1]) > limit:
                out[k + 1] = str(limit)
    generates = out[:1] in (["sweep"], ["bench"]) or (out[:1] == ["eval"] and "--images" not in out)
    if generates and not has_n:
        out += [n_flag, str(cap)]
    if out[:1] == ["interp"] and "--steps" not in out:
        out += ["--steps", str(STEPS_MAX)]
    if out[:1] == ["sweep"] and not {"--trunc", "-t"} & set(out):
        out += ["--trunc", SWEEP_GRID]                # the default grid has 10 values
    return out


# ----------------------------------------------------------------------------- checking

def parse_check(cmd: DocCommand) -> tuple[int, str]:
    """``(exit code, message)`` of parsing ``cmd`` as written, nothing run: torchrun's own
    parser for its part, then the real Typer app with every command body replaced by a
    no-op (so an unknown option, a bad value type or a missing argument fails as it would
    for a user). Exit 0 also requires that parsing reached a command."""
    if cmd.launcher is not None:
        code, msg = _torchrun_parse(cmd)
        if code:
            return code, msg
    import pytest
    from typer.testing import CliRunner

    from bigganctl.cli.app import app

    reached: list[str] = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        _stub_commands(app, reached, monkeypatch)
        r = CliRunner().invoke(app, list(cmd.argv), catch_exceptions=False)
    if r.exit_code == 0 and not reached:
        return 2, f"`{cmd.text}` names no command (help or a group only)"
    return r.exit_code, r.stderr or r.stdout


def _stub_commands(typer_app, reached: list[str], monkeypatch) -> None:
    import functools

    for info in typer_app.registered_commands:
        fn = info.callback

        @functools.wraps(fn)
        def parsed(*args, _name=fn.__name__, **kwargs):
            reached.append(_name)

        monkeypatch.setattr(info, "callback", parsed)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _stub_commands(group.typer_instance, reached, monkeypatch)


def _torchrun_parse(cmd: DocCommand) -> tuple[int, str]:
    import contextlib
    import io

    from torch.distributed.run import get_args_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            get_args_parser().parse_args([*cmd.launcher, "bigganctl", *cmd.argv])
    except SystemExit as e:
        return int(e.code or 0) or 2, f"torchrun: {err.getvalue().strip().splitlines()[-1]}"
    return 0, ""
