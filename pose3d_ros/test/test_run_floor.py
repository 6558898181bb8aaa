"""`pose3d run --floor NX NY NZ D`: the plane becomes the static placement.floor settings
(normalised), and a plane that cannot be a floor is refused with one line and exit code 2."""

from __future__ import annotations

import math

import pytest

from pose3d_ros.cli import main
from pose3d_ros.pipeline import PipelineSettings
from pose3d_ros.run_offline import with_floor


def test_floor_option_sets_the_static_plane() -> None:
    s = with_floor(PipelineSettings(), [0.0, -3.0, -4.0, 1.5])  # length 5: normalised
    f = s.placement.floor
    assert f.enabled
    assert (f.normal_x, f.normal_y, f.normal_z) == pytest.approx((0.0, -0.6, -0.8))
    assert f.distance_m == 1.5
    plane = f.plane()
    assert math.isclose(float(plane.height([0.0, 1.5 / 0.6, 0.0])), 0.0, abs_tol=1e-12)
    assert with_floor(PipelineSettings(), None) == PipelineSettings()


@pytest.mark.parametrize(
    ("floor", "words"),
    [(["0", "0", "0", "1.2"], "zero vector"), (["0", "-1", "0", "-2"], "distance_m")],
)
def test_bad_floor_exits_2_with_one_line(tmp_path, capsys, floor, words) -> None:
    image = tmp_path / "none.png"  # never opened: the plane is checked first
    rc = main(["run", "--input", str(image), "--out", str(tmp_path / "o"), "--floor", *floor])
    assert rc == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "--floor" in err[0] and words in err[0], err
