"""Input checks of the core (bigganctl.checks): integers with a minimum, optional values; the
error names the Python parameter."""

from __future__ import annotations

import pytest

from bigganctl.checks import check_int
from bigganctl.errors import UsageError


@pytest.mark.parametrize("value, minimum, ok", [
    (3, 1, 3), (0, 0, 0), (0, 1, None), (-1, 0, None), (2.5, 1, None), (True, 1, None), ("3", 1, None), (1, 2, None),
])
def test_check_int(value, minimum, ok):
    if ok is None:
        with pytest.raises(UsageError) as e:
            check_int(value, "n", minimum=minimum)
        assert e.value.param == "n" and repr(value) in e.value.message
    else:
        assert check_int(value, "n", minimum=minimum) == ok


def test_check_int_takes_numpy_integers_and_none_when_optional():
    np = pytest.importorskip("numpy")
    assert check_int(np.int64(4), "n") == 4 and type(check_int(np.int64(4), "n")) is int
    assert check_int(None, "nrow", optional=True) is None
    with pytest.raises(UsageError):
        check_int(None, "nrow")
