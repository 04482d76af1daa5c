"""Quality gates (bigganctl.metrics.gates, through check_gates): a bound met passes, a missed
one raises GateFailed naming the metric, value, option and bound (all missed gates in one
message), a metric that was not computed is not judged."""

from __future__ import annotations

import pytest

from bigganctl.errors import GateFailed
from bigganctl.metrics.evaluation import check_gates


def test_gates():
    check_gates({"fid": 5.0, "is_mean": 10.0}, max_fid=5.0, min_is=10.0)
    with pytest.raises(GateFailed, match="FID 5.5000 > --max-fid 5"):
        check_gates({"fid": 5.5, "is_mean": 10.0}, max_fid=5.0)
    with pytest.raises(GateFailed, match="IS"):
        check_gates({"fid": None, "is_mean": 1.0}, min_is=2.0)
    res = {"sfid": 4.0, "precision": 0.7, "recall": 0.5}
    check_gates(res, max_sfid=4.0, min_precision=0.7, min_recall=0.5)
    check_gates({"sfid": None}, max_sfid=1.0)              # not computed: nothing to gate
    with pytest.raises(GateFailed, match=r"sFID 4.0000 > --max-sfid 3; precision 0.7000 < --min-precision 0.8"):
        check_gates(res, max_sfid=3.0, min_precision=0.8)
    with pytest.raises(GateFailed, match="recall 0.5000 < --min-recall 0.6"):
        check_gates(res, min_recall=0.6)
