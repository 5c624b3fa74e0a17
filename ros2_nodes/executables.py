"""The node executables of the package: name -> module (with a `main()`).

The same names are console scripts in pyproject.toml (`[project.scripts]`) and, for a ROS 2
install, executables under lib/vla_stack, so `<node pkg="vla_stack" exec="sim_node">` means
the same program under `ros2 launch` and under `vla up`.
"""

NODES: dict[str, str] = {
    "sim_node": "vla_stack.ros2_nodes.sim_node",
    "planner_node": "vla_stack.ros2_nodes.planner_node",
    "action_expert_node": "vla_stack.ros2_nodes.action_expert_node",
    "teleop_node": "vla_stack.ros2_nodes.teleop_node",
    "recorder_node": "vla_stack.ros2_nodes.recorder_node",
    "world_model_node": "vla_stack.ros2_nodes.world_model_node",
}
