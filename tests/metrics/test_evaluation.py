"""Metric names of the evaluation driver (bigganctl.metrics.evaluation): aliases, order,
"all" and the optional metrics, an unknown name refused."""

from __future__ import annotations

import pytest

from bigganctl.errors import UsageError
from bigganctl.metrics.evaluation import normalize_metrics, optional_metrics


def test_metric_names():
    assert normalize_metrics("all") == ("fid", "is", "kid", "sfid", "precision", "recall")
    assert normalize_metrics(["is", "fid"]) == ("fid", "is")
    assert normalize_metrics("kid,isc") == ("is", "kid")
    assert normalize_metrics("pr,sfid") == ("sfid", "precision", "recall")
    assert normalize_metrics("recall") == ("recall",)
    assert optional_metrics("all") == ("kid", "sfid", "precision", "recall")
    assert optional_metrics("all,pr") == ("kid", "sfid") and optional_metrics("fid,sfid") == ()
    with pytest.raises(UsageError):
        normalize_metrics("vgg")
