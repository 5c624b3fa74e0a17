"""QoS profiles: sensor streams drop stale samples, commands and e-stop must arrive.

Sensor data is best effort with a shallow queue (the newest frame is the only useful one, and
a best-effort subscription also accepts reliable publishers from a robot driver). Commands
are reliable. The e-stop and the instruction are reliable and transient-local, so a node
that starts (or restarts) late still sees a latched e-stop or the current instruction.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

SENSOR = qos_profile_sensor_data  # best effort, keep last 5, volatile

COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)

LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
