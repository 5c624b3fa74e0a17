"""planner_node: instruction in, subtask text and status out; re-plans when a subtask ends.

Backends:
- the learned planner (`backend:=<checkpoint directory>` from `vla train planner`):
  `reset(instruction)` on each instruction, then at
  `rate_hz` it asks `subtask_done(observation, subtask)` and, when true, `next_subtask`.
  It reads the same points / joint state / end-effector pose the action expert reads.
- `oracle` (simulation only): follows the simulator's own subtask annotations on
  `sim/info`, which tests the control loop with a perfect planner.

Planner calls can be slow (a language model): they run in this process only, so they
never block the control loop. Out: `subtask` (latched String; `DONE` when finished, empty while a new instruction is
being planned or was refused) and
`planner_status` (latched String: planning / executing <i>: <text> / done / refused: ... /
failed: ...).
"""

from __future__ import annotations

import json

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import String

from vla_stack import schema
from vla_stack.ros2_nodes import node_util, qos
from vla_stack.ros2_nodes.observation import ObservationBuffer


class PlannerNode(Node):
    def __init__(self) -> None:
        super().__init__("planner")
        self.backend = node_util.declare(self, "backend", "oracle",
                                         "oracle (simulator annotations) or a learned planner checkpoint directory",
                                         check=lambda v: None if v.strip() else "must not be empty")
        self.rate_hz = node_util.declare(self, "rate_hz", 10.0, "how often subtask completion is judged (Hz; the learned "
                                         "planner ends a subtask after 3 judgements in a row, so 10 Hz is a 0.3 s hand-off)",
                                         low=0.1, high=50.0)
        self.base_frame = node_util.declare(self, "base_frame", "base", "frame of the robot base")
        self.subtask_pub = self.create_publisher(String, "subtask", qos.LATCHED)
        self.status_pub = self.create_publisher(String, "planner_status", qos.LATCHED)
        self.instruction: str | None = None
        self.subtask: str | None = None
        self.history: list[str] = []
        self.create_subscription(String, "instruction", self.on_instruction, qos.LATCHED)
        if self.backend == "oracle":
            self.planner = None
            self.sim_info: dict | None = None
            self.create_subscription(String, "sim/info", self.on_sim_info, qos.LATCHED)
        else:
            from vla_stack.planner.learned import LearnedPlanner

            try:
                self.planner = LearnedPlanner.load(self.backend)
            except (OSError, ValueError) as e:  # SchemaError is a ValueError
                raise node_util.ParameterError(f"planner: cannot load planner checkpoint {self.backend!r}: {e}") from None
            self.obs = ObservationBuffer(base_frame=self.base_frame)
            self.create_subscription(PointCloud2, "points", self._guard("points", self.obs.update_points), qos.SENSOR)
            self.create_subscription(JointState, "joint_states", self._guard("joint state", self.obs.update_joint_state),
                                     qos.SENSOR)
            self.create_subscription(PoseStamped, "ee_pose", self._guard("ee pose", self.obs.update_ee_pose), qos.SENSOR)
            self.create_timer(1.0 / self.rate_hz, self.step)
        self.status("idle")

    def _guard(self, what, update):
        def handler(msg):
            try:
                update(msg)
            except schema.SchemaError as e:
                self.get_logger().error(f"rejected {what}: {e}", throttle_duration_sec=1.0)
        return handler

    def status(self, text: str) -> None:
        self.status_pub.publish(String(data=text))
        self.get_logger().info(f"status: {text}")

    def publish_subtask(self, text: str) -> None:
        self.subtask = text
        self.subtask_pub.publish(String(data=text))
        if text == schema.DONE_TOKEN:
            self.status("done")
        else:
            self.status(f"executing {len(self.history)}: {text}")

    def on_instruction(self, msg: String) -> None:
        self.instruction, self.subtask, self.history = msg.data, None, []
        # Withdraw the old plan's subtask first (empty = nothing to do: the action expert holds),
        # so it is not executed under the new instruction while planning or after a refusal.
        self.subtask_pub.publish(String(data=""))
        if self.planner is None:
            self.status("planning (oracle: following the simulator's subtasks)")
            if self.sim_info:
                self.on_sim_info(None)
            return
        try:
            self.planner.reset(msg.data)
        except schema.SchemaError as e:  # InstructionRefused is one
            self.instruction = None
            self.status(f"refused: {e}")
            return
        self.status("planning")

    # -- oracle ------------------------------------------------------------------------
    def on_sim_info(self, msg: String | None) -> None:
        if msg is not None:
            try:
                self.sim_info = json.loads(msg.data)
            except json.JSONDecodeError as e:
                self.get_logger().error(f"rejected sim/info: {e}")
                return
        if self.instruction is None:
            return
        info = self.sim_info
        text = schema.DONE_TOKEN if info.get(schema.INFO_SUCCESS) else info.get(schema.INFO_SUBTASK)
        if text and text != self.subtask:
            if self.subtask and self.subtask != schema.DONE_TOKEN:
                self.history.append(self.subtask)
            self.publish_subtask(text)

    # -- learned / language-model planner ------------------------------------------------
    def step(self) -> None:
        if self.instruction is None or self.subtask == schema.DONE_TOKEN or not self.obs.complete:
            return
        try:
            observation = self.obs.as_dict()
            if self.subtask is not None:
                if not self.planner.subtask_done(observation, self.subtask):
                    return
                self.history.append(self.subtask)
            self.publish_subtask(self.planner.next_subtask(observation, list(self.history)))
        except schema.SchemaError as e:
            self.get_logger().error(f"planner input rejected: {e}", throttle_duration_sec=1.0)
        except RuntimeError as e:  # PlannerFailure: stop asking, tell the operator
            self.instruction = None
            self.subtask_pub.publish(String(data=schema.DONE_TOKEN))
            self.status(f"failed: {e}")


def main(args: list[str] | None = None) -> int:
    return node_util.run(PlannerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
