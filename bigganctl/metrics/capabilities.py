"""The evaluation protocol (which metrics, how) and what a reference can give: KID and precision/recall need its features, sFID its
``mu_s``/``sigma_s``. A metric asked for by name that the reference cannot give is refused
(exit 2); one that came with ``all`` is dropped with one note and stays null in the result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from collections.abc import Callable

from ..checks import check_int
from ..errors import UsageError
from . import maths as S
from .manifold import DISTANCES
from .features import SPATIAL_CHANNELS, SPATIAL_DIM, SPATIAL_LAYER
from .ref_features import NO_FEATURES_HINT, can_give_features
from .reference import Stats

Note = Callable[[str], None]


@dataclass(frozen=True)
class Protocol:
    """Which metrics and how: IS splits (torch-fidelity's seeded shuffle into ``is_splits``,
    contiguous without the shuffle, or ``is_adm``: ADM's consecutive blocks of 5000), KID
    subsets and subset size (None: ``min(1000, n, reference count)``); ``kid_optional``: KID
    only if the reference can give features (``all``); ``optional``: likewise for any of
    ``REF_OPTIONAL``; ``pr_distances``: ``fp32`` or ADM's ``fp16`` (:mod:`.manifold`)."""

    metrics: tuple[str, ...]
    is_splits: int = S.IS_SPLITS
    is_shuffle: bool = True
    kid_subsets: int = S.KID_SUBSETS
    kid_subset_size: int | None = None
    kid_optional: bool = False
    optional: tuple[str, ...] = ()
    is_adm: bool = False
    pr_distances: str = "fp32"

    def check(self) -> Protocol:
        check_int(self.is_splits, "is_splits")
        check_int(self.kid_subsets, "kid_subsets")
        check_int(self.kid_subset_size, "kid_subset_size", minimum=2, optional=True)
        if self.pr_distances not in DISTANCES:
            raise UsageError(f"must be one of {', '.join(DISTANCES)}, got {self.pr_distances!r}",
                             param="pr_distances")
        return self

    @property
    def needs_ref(self) -> list[str]:
        return [m for m in self.metrics if m != "is"]

    @property
    def splits(self) -> int | None:
        return self.is_splits if "is" in self.metrics else None

    @property
    def is_rule(self) -> str | None:
        """``adm`` (consecutive blocks of 5000), ``torch-fidelity`` (seeded shuffle) or
        ``contiguous`` (``is_splits`` unshuffled splits); None without IS."""
        if "is" not in self.metrics:
            return None
        return "adm" if self.is_adm else "torch-fidelity" if self.is_shuffle else "contiguous"

    def is_block(self) -> int | None:
        return S.ADM_IS_BLOCK if self.is_adm and "is" in self.metrics else None

    def is_optional(self, metric: str) -> bool:
        return metric in self.optional or (metric == "kid" and self.kid_optional)

    @property
    def keeps_features(self) -> bool:
        return any(m in self.metrics for m in ("kid", "precision", "recall"))


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
            raise UsageError(f"{why}; {label} needs them", param="ref", hint=hint)
        note(f"{label} not computed: {why}; for {label}, {hint}")
        drop.update(asked)
    return replace(protocol, metrics=tuple(m for m in protocol.metrics if m not in drop)) if drop else protocol


def kid_subset(requested: int | None, n: int, n_ref: int, note: Note) -> int:
    limit = min(n, n_ref)
    if requested is not None:
        if requested > limit:
            which = f"--n {n}" if n <= n_ref else f"the reference's {n_ref} features"
            raise UsageError(f"{requested} is larger than {which}; KID draws subsets without replacement",
                             param="kid_subset_size", hint=f"use --kid-subset-size {limit} or more samples")
        return requested
    if limit < S.KID_SUBSET_SIZE:
        if limit < 2:
            raise UsageError(f"KID needs at least 2 samples on each side, have {n} and {n_ref}", param="n")
        note(f"KID subset size reduced from {S.KID_SUBSET_SIZE} to {limit} (only {n} samples, "
             f"{n_ref} reference features); values are not comparable with subset size {S.KID_SUBSET_SIZE}")
        return limit
    return S.KID_SUBSET_SIZE
