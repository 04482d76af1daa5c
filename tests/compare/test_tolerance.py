"""Tolerances of `bigganctl compare`: parsing of absolute and relative tolerances per metric,
the direction of each metric."""

from __future__ import annotations

import pytest

from bigganctl.compare import parse_tolerance, tolerances
from bigganctl.compare.tolerance import HIGHER, LOWER, verdict
from bigganctl.errors import UsageError


def test_tolerance_parsing():
    assert parse_tolerance("images_per_s=-10%")[1].direction == HIGHER
    name, tol = parse_tolerance("is=2%")
    assert name == "is_mean" and tol.direction == HIGHER and tol.value == pytest.approx(0.02)
    name, tol = parse_tolerance("fid=+0.5")
    assert tol.direction == LOWER and tol.value == 0.5 and not tol.relative
    assert parse_tolerance("seconds=off")[1].value is None
    assert tolerances(["fid=1%,kid=+0.001"])["kid_mean"].value == 0.001
    with pytest.raises(UsageError):
        parse_tolerance("fid=2%%")
    fid = tolerances(None)["fid"]
    assert verdict(fid, 10.0, 10.5) == "ok" and verdict(fid, 10.0, 10.51) == "regressed"
    assert verdict(fid, 10.0, 9.0) == "improved"
