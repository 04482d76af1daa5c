"""Video frames (bigganctl.media.frames): tiles composed into grids with captions, odd frame
sizes padded for MP4, a failing encoder leaves nothing behind."""

from __future__ import annotations

import numpy as np
import pytest

from bigganctl.errors import RuntimeFailure
from bigganctl.media.frames import Captioner, compose_frame, write_video


def test_compose_grid_and_caption():
    tiles = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (10, 20, 30)])
    assert compose_frame(tiles[:1]).shape == (8, 8, 3)
    one_row = compose_frame(tiles)
    assert one_row.shape == (8, 3 * 8 + 2 * 2, 3)
    assert (one_row[:, 8:10] == 0).all() and (one_row[:, 10:18] == 20).all()
    two_rows = compose_frame(tiles, nrow=2)
    assert two_rows.shape == (2 * 8 + 2, 2 * 8 + 2, 3) and (two_rows[10:, :8] == 30).all()
    cap = Captioner(width=128, tile=128)
    assert cap.height % 2 == 0
    frame = cap(np.zeros((128, 128, 3), np.uint8), "golden retriever")
    assert frame.shape == (128 + cap.height, 128, 3) and frame[128:].max() == 255
    long = cap(np.zeros((128, 128, 3), np.uint8), "a very long class name " * 5)
    assert long.shape == frame.shape                       # truncated to the width


def test_mp4_pads_odd_frame_sizes(tmp_path):
    import imageio.v2 as iio

    frames = (np.full((35, 33, 3), 40 * i, np.uint8) for i in range(4))
    n, w, h = write_video(frames, tmp_path / "odd.mp4", fps=8, n_frames=4)
    assert (n, w, h) == (4, 33, 35)
    decoded = [f for f in iio.get_reader(tmp_path / "odd.mp4")]   # (list() trips on len = inf)
    assert len(decoded) == 4 and decoded[0].shape == (36, 34, 3)
    assert abs(int(decoded[3][:35, :33].mean()) - 120) <= 3


def test_a_failing_encoder_is_a_runtime_failure_and_leaves_nothing(tmp_path, monkeypatch):
    import shutil

    from bigganctl.media import video

    monkeypatch.setattr(video, "_ffmpeg_exe", lambda: shutil.which("false") or pytest.skip("no `false`"))
    frames = (np.zeros((16, 16, 3), np.uint8) for _ in range(3))
    with pytest.raises(RuntimeFailure, match="ffmpeg"):
        write_video(frames, tmp_path / "v.mp4", fps=8, n_frames=3, frames_dir=tmp_path / "f")
    assert list(tmp_path.iterdir()) == []
