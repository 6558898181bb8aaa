"""pose3d_node refuses a centred lifter at start-up: it would describe a frame (T-1)/2 frames
older than the image it publishes with. One line naming the fix, exit code 2 (real process,
real DDS domain; the lifter is a hand-built centred ONNX model, toy_lifters.py)."""

from __future__ import annotations

from toy_lifters import centre_echo_lifter

STARTUP_S = 90.0  # imports + the ONNX models on two busy cores


def test_centred_lifter_is_refused_at_start_up_with_the_fix(ros_graph, tmp_path):
    lifter = centre_echo_lifter(tmp_path / "centred_t9.onnx", 9)
    proc = ros_graph.start("pose3d_node", "-p", f"pipeline.lifter.model:={lifter}")
    assert proc.wait(STARTUP_S) == 2, proc.log()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "cannot start" in lines[0]
    assert "is a centred lifter (latency 4 frames" in lines[0]
    assert "use a causal lifter" in lines[0] and "`pose3d run`" in lines[0]
