"""What a reference can give: KID and precision/recall need its features, sFID its
``mu_s``/``sigma_s``. A metric asked for by name that the reference cannot give is refused
(exit 2); one that came with ``all`` is dropped with one note and stays null in the result.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING
from collections.abc import Callable

from ..errors import UsageError
from . import maths as S
from .features import SPATIAL_CHANNELS, SPATIAL_DIM, SPATIAL_LAYER
from .ref_features import NO_FEATURES_HINT, can_give_features
from .reference import Stats

if TYPE_CHECKING:
    from .evaluation import Protocol

Note = Callable[[str], None]


SPATIAL_HINT = ("use an ADM reference batch (imagenet-64|128|256|512, or an .npz with mu_s/sigma_s), or "
                "recompute the reference with `bigganctl stats compute SRC --out FILE.npz` (it records mu_s/sigma_s)")


def kid_plan(ref: Stats | None, protocol: Protocol, note: Note) -> Protocol:
    """What the reference can give. KID and precision/recall need reference features: stored,
    or computable from an ADM batch's images (:mod:`.ref_features`); sFID needs ``mu_s`` /
    ``sigma_s``. A metric asked for by name that the reference cannot give is refused; one
    that came with ``all`` is dropped with one note (its result keys stay, null)."""
    if ref is None:
        return protocol
    lacking: list[tuple[tuple[str, ...], str, str]] = []
    if not can_give_features(ref):
        lacking.append((("kid",), "KID", f"{ref.label} holds no features"))
        lacking.append((("precision", "recall"), "precision/recall",
                        f"{ref.label} holds no features (nor reference images)"))
    if not ref.has_spatial:
        lacking.append((("sfid",), "sFID", f"{ref.label} holds no spatial statistics (mu_s/sigma_s)"))
    elif ref.mu_s.shape[0] != SPATIAL_DIM:
        lacking.append((("sfid",), "sFID", f"{ref.label}'s mu_s has {ref.mu_s.shape[0]} dimensions, sFID's "
                        f"{SPATIAL_LAYER} (first {SPATIAL_CHANNELS} channels, NHWC) {SPATIAL_DIM}"))
    drop: set[str] = set()
    for names, label, why in lacking:
        asked = [m for m in names if m in protocol.metrics]
        if not asked:
            continue
        hint = SPATIAL_HINT if names == ("sfid",) else NO_FEATURES_HINT
        if not all(protocol.is_optional(m) for m in asked):
            raise UsageError(f"{why}; {label} needs them", option="--ref", hint=hint)
        note(f"{label} not computed: {why}; for {label}, {hint}")
        drop.update(asked)
    return replace(protocol, metrics=tuple(m for m in protocol.metrics if m not in drop)) if drop else protocol


def kid_subset(requested: int | None, n: int, n_ref: int, note: Note) -> int:
    limit = min(n, n_ref)
    if requested is not None:
        if requested > limit:
            which = f"--n {n}" if n <= n_ref else f"the reference's {n_ref} features"
            raise UsageError(f"{requested} is larger than {which}; KID draws subsets without replacement",
                             option="--kid-subset-size", hint=f"use --kid-subset-size {limit} or more samples")
        return requested
    if limit < S.KID_SUBSET_SIZE:
        if limit < 2:
            raise UsageError(f"KID needs at least 2 samples on each side, have {n} and {n_ref}", option="--n")
        note(f"KID subset size reduced from {S.KID_SUBSET_SIZE} to {limit} (only {n} samples, "
             f"{n_ref} reference features); values are not comparable with subset size {S.KID_SUBSET_SIZE}")
        return limit
    return S.KID_SUBSET_SIZE
