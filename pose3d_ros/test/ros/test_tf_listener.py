"""ros/tf_listener.py without DDS: both backends behind one lookup, and the stamp tolerance.

tf2_ros has no wheel here, so its branch runs against a stand-in module with tf2_ros' names
(Buffer, TransformListener and the exception classes); the own-buffer branch is fed TFMessages
directly. The DDS path (a static transform from another process) is in test_rep155_tf.py.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from pose3d_ros.core.transforms import (
    ExtrapolationError,
    NotConnectedError,
    TransformError,
    UnknownFrameError,
)
from pose3d_ros.ros.tf_listener import TfLookup


class FakeNode:
    def __init__(self) -> None:
        self.callbacks: dict[str, object] = {}
        self.warnings: list[str] = []

    def create_subscription(self, _type, topic, callback, _qos):
        self.callbacks[topic] = callback
        return topic

    def destroy_subscription(self, sub) -> None:
        self.callbacks.pop(sub)

    def get_logger(self):
        node = self

        class Logger:
            def warning(self, text, **_kwargs):
                node.warnings.append(text)

        return Logger()


def edge(parent: str, child: str, t: float, x: float, qw: float = 1.0, qz: float = 0.0):
    sec = int(t)
    header = Header(frame_id=parent)
    header.stamp.sec, header.stamp.nanosec = sec, round((t - sec) * 1e9)
    return TransformStamped(
        header=header,
        child_frame_id=child,
        transform=Transform(translation=Vector3(x=x), rotation=Quaternion(z=qz, w=qw)),
    )


@pytest.fixture
def own(monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2_ros", None)  # import fails: our buffer
    node = FakeNode()
    lookup = TfLookup(node)
    assert lookup.backend == "own buffer"
    return node, lookup


def test_own_buffer_static_and_dynamic(own):
    node, tf = own
    node.callbacks["/tf_static"](TFMessage(transforms=[edge("base", "cam", 0.0, 0.5)]))
    node.callbacks["/tf"](TFMessage(transforms=[edge("odom", "base", 10.0, 1.0)]))
    node.callbacks["/tf"](TFMessage(transforms=[edge("odom", "base", 11.0, 3.0)]))
    # halfway between the samples: base at x = 2, cam 0.5 further
    assert tf.lookup("odom", "cam", 10.5).translation == pytest.approx([2.5, 0, 0])
    # 0.05 s after the newest /tf: an error without tolerance, the newest within 0.1 s
    with pytest.raises(ExtrapolationError, match="future"):
        tf.lookup("odom", "cam", 11.05)
    assert tf.lookup("odom", "cam", 11.05, 0.1).translation == pytest.approx([3.5, 0, 0])
    with pytest.raises(ExtrapolationError):
        tf.lookup("odom", "cam", 11.5, 0.1)  # too far from the newest
    with pytest.raises(UnknownFrameError, match="'floor'"):
        tf.lookup("floor", "cam", 10.5)
    # a bad transform is ignored with a warning, the others are kept
    node.callbacks["/tf"](TFMessage(transforms=[edge("odom", "odom", 12.0, 0.0)]))
    assert node.warnings and "ignoring a transform on /tf" in node.warnings[0]
    tf.close()
    assert not node.callbacks


class _Tf2TransformError(Exception):
    pass


def fake_tf2_ros(answers: dict) -> types.ModuleType:
    """A stand-in with tf2_ros' interface; lookup_transform answers from `answers` by time
    (None: latest) and raises what is stored as an exception class."""
    mod = types.ModuleType("tf2_ros")
    mod.TransformException = _Tf2TransformError
    for name in ("LookupException", "ConnectivityException", "ExtrapolationException"):
        setattr(mod, name, type(name, (_Tf2TransformError,), {}))

    class Buffer:
        def __init__(self, cache_time=None) -> None:
            self.cache_time = cache_time

        def lookup_transform(self, target, source, when):
            key = None if when.nanoseconds == 0 else when.nanoseconds / 1e9
            answer = answers[key]
            if isinstance(answer, str):
                raise getattr(mod, answer)(f"{answer} for {target} <- {source}")
            return answer

    class TransformListener:
        def __init__(self, buffer, node, spin_thread=True) -> None:
            assert spin_thread is False  # the node's executor spins it
            self.unregistered = False

        def unregister(self) -> None:
            self.unregistered = True

    mod.Buffer, mod.TransformListener = Buffer, TransformListener
    return mod


def test_tf2_ros_backend_maps_answers_and_errors(monkeypatch):
    answers = {
        5.0: edge("floor", "cam", 5.0, 1.25),
        6.0: "ExtrapolationException",
        None: edge("floor", "cam", 5.95, 2.0),
        7.0: "LookupException",
        8.0: "ConnectivityException",
        9.0: "TransformException",
    }
    monkeypatch.setitem(sys.modules, "tf2_ros", fake_tf2_ros(answers))
    tf = TfLookup(FakeNode())
    assert tf.backend == "tf2_ros"
    assert tf.lookup("floor", "cam", 5.0).translation == pytest.approx([1.25, 0, 0])
    with pytest.raises(ExtrapolationError):
        tf.lookup("floor", "cam", 6.0)
    # the newest (5.95 s) is 0.05 s from 6.0: used with a 0.1 s tolerance
    assert tf.lookup("floor", "cam", 6.0, 0.1).translation == pytest.approx([2.0, 0, 0])
    with pytest.raises(UnknownFrameError, match="LookupException"):
        tf.lookup("floor", "cam", 7.0)
    with pytest.raises(NotConnectedError):
        tf.lookup("floor", "cam", 8.0)
    with pytest.raises(TransformError):
        tf.lookup("floor", "cam", 9.0)
    rotation = tf.lookup("floor", "cam", 5.0).rotation
    assert rotation.as_matrix() == pytest.approx(np.eye(3))
    tf.close()
    assert tf._listener.unregistered
