"""The error types: a UsageError keeps its parameter, message and hint through pickling (torchrun
sends rank 0's error to every rank)."""

from __future__ import annotations

import pickle

from bigganctl.errors import UsageError


def test_usage_error_survives_pickling():       # torchrun: rank 0's error is sent to every rank
    e = pickle.loads(pickle.dumps(UsageError("bad", param="psi", hint="try 0.5")))
    assert (e.param, e.message, e.hint, e.option, str(e)) == ("psi", "bad", "try 0.5", "psi", "psi: bad")
