"""launch_ros actions for the package's launch files: node specs -> Node / LifecycleNode actions,
and the events that take a managed node through configure -> activate.

`launch` and `launch_ros` are imported inside the functions: only `ros2 launch` calls these (and
the static launch-file tests, with stand-ins), so importing the package never needs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pose3d_ros.ros.demo_graph import NodeSpec

PACKAGE = "pose3d_ros"


def configure_then_activate(node: Any) -> list[Any]:
    """Actions that configure a launch_ros LifecycleNode once it is up and activate it as soon as
    it reaches `inactive` from `configuring` (not after a later deactivate: a manager or
    `ros2 lifecycle set` may deactivate it on purpose). A failed configure leaves it
    unconfigured, with the reason in its log."""
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.events import matches_action
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    def change(transition_id: int) -> Any:
        return EmitEvent(
            event=ChangeState(
                lifecycle_node_matcher=matches_action(node), transition_id=transition_id
            )
        )

    activate_when_configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            entities=[change(Transition.TRANSITION_ACTIVATE)],
        )
    )
    return [activate_when_configured, change(Transition.TRANSITION_CONFIGURE)]


def spec_actions(
    spec: NodeSpec, params_file: Any, namespace: Any = "", **node_kwargs: Any
) -> list[Any]:
    """A node spec as launch actions: a Node, or a LifecycleNode (with `autostart` off, so the
    launch file is its lifecycle manager) followed by configure_then_activate."""
    from launch_ros.actions import LifecycleNode, Node

    parameters = dict(spec.parameters)
    if spec.lifecycle:
        parameters["autostart"] = False
    kwargs = {
        "package": PACKAGE,
        "executable": spec.executable,
        "name": spec.name,
        "namespace": namespace,
        "parameters": [params_file, parameters],
        "remappings": list(spec.remappings),
        **node_kwargs,
    }
    if not spec.lifecycle:
        return [Node(**kwargs)]
    node = LifecycleNode(**kwargs)
    return [node, *configure_then_activate(node)]


def graph_actions(
    specs: list[NodeSpec], params_files: Mapping[str, Any], **node_kwargs: Any
) -> list[Any]:
    """All specs as actions; `params_files` maps a spec's config file name to the value the
    launch file passes (a launch argument, so users can swap the file)."""
    return [
        action
        for spec in specs
        for action in spec_actions(spec, params_files[spec.params_file], **node_kwargs)
    ]
