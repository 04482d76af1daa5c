"""Video options and timing (bigganctl.media.video): GIF delays keep the average frame rate,
a missing MP4 backend names the package, bad output names and rates are refused."""

from __future__ import annotations

import sys

import pytest

from bigganctl.errors import RuntimeFailure, UsageError
from bigganctl.media.video import check_video_options, gif_delay_cs


def test_gif_delays_keep_the_average_rate():
    for fps in (7, 12, 24, 30, 50):
        d = [gif_delay_cs(i, fps) for i in range(600)]
        assert min(d) >= 1 and abs(sum(d) - 600 * 100 / fps) < 1


def test_missing_mp4_backend_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(RuntimeFailure) as e:
        check_video_options("v.mp4", 12)
    assert e.value.exit_code == 1 and "imageio-ffmpeg" in (e.value.hint or "")
    check_video_options("v.gif", 12)                       # the Pillow formats still work


@pytest.mark.parametrize("out,fps,option", [("v.avi2", 12, "out"), ("v", 12, "out"),
                                            ("v.gif", 60, "fps"), ("v.mp4", 0, "fps")])
def test_check_video_options_rejects(out, fps, option):
    with pytest.raises(UsageError) as e:
        check_video_options(out, fps)
    assert e.value.param == option
