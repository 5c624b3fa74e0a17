"""Launch files: the reader understands the ROS 2 XML/YAML formats, and `vla up` runs and stops the graph."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vla_stack.ros2_nodes.launch_file import LaunchFileError, load_launch, parse_launch_arguments

REPO = Path(__file__).resolve().parent.parent
LAUNCH = REPO / "launch"
pytestmark = pytest.mark.ros


def test_every_shipped_launch_file_parses_to_known_executables():
    from vla_stack.ros2_nodes.executables import NODES

    files = sorted(LAUNCH.glob("*.launch.*"))
    assert {"sim.launch.xml", "robot.launch.yaml"} <= {f.name for f in files}
    for f in files:
        nodes = load_launch(f)
        assert nodes, f
        for n in nodes:
            assert n.package == "vla_stack" and n.executable in NODES, (f.name, n.executable)


def test_robot_launch_wires_the_world_model_to_the_robots_camera_topics():
    nodes = load_launch(LAUNCH / "robot.launch.yaml", parse_launch_arguments(
        ["world_model:=true", "rgb_topic:=/cam/rgb", "depth_topic:=/cam/depth", "world_model_camera:=front"]))
    (wm,) = [n for n in nodes if n.executable == "world_model_node"]
    assert ("rgb", "/cam/rgb") in wm.remappings and ("depth", "/cam/depth") in wm.remappings
    assert "camera:=front" in wm.ros_args()


def test_xml_arguments_params_files_and_remaps_are_forwarded():
    nodes = load_launch(LAUNCH / "teleop.launch.xml", parse_launch_arguments(["cmd_twist_topic:=/robot/cmd"]))
    (teleop,) = nodes
    args = teleop.ros_args()
    assert args[:3] == ["--ros-args", "-r", "__node:=teleop"]
    assert ["--params-file", str(LAUNCH / "safety.yaml")] == args[3:5]
    assert "cmd_twist:=/robot/cmd" in args and "keyboard:=false" in args


def test_yaml_launch_file_with_conditions_and_typed_values(tmp_path):
    (tmp_path / "p.yaml").write_text("/**:\n  ros__parameters: {a: 1}\n")
    f = tmp_path / "x.launch.yaml"
    f.write_text("""
launch:
- arg: {name: fast, default: "false"}
- arg: {name: ns, default: robot1}
- node:
    pkg: vla_stack
    exec: teleop_node
    name: teleop
    namespace: $(var ns)
    param:
    - {name: control_rate_hz, value: 50.0}
    - {name: keyboard, value: true}
    - {from: $(dirname)/p.yaml}
    remap:
    - {from: cmd_twist, to: /$(var ns)/cmd}
- node: {pkg: vla_stack, exec: sim_node, if: $(var fast)}
- group:
    unless: $(var fast)
    children:
    - node: {pkg: vla_stack, exec: planner_node, name: planner}
""")
    nodes = load_launch(f)
    assert [n.executable for n in nodes] == ["teleop_node", "planner_node"]
    t = nodes[0]
    assert t.namespace == "robot1" and t.remappings == [("cmd_twist", "/robot1/cmd")]
    assert t.parameters == [{"control_rate_hz": "50.0", "keyboard": "true"}, tmp_path / "p.yaml"]
    assert "__ns:=/robot1" in t.ros_args()
    assert [n.executable for n in load_launch(f, {"fast": "true"})] == ["teleop_node", "sim_node"]


@pytest.mark.parametrize("body, message", [
    ('<launch><include file="x.launch.xml"/></launch>', r"unsupported element <include>"),
    ('<launch><node pkg="vla_stack"/></launch>', r"needs a 'exec' attribute"),
    ('<launch><node pkg="vla_stack" exec="x" name="$(var nope)"/></launch>', r"\$\(var nope\): launch argument not declared"),
    ('<launch><node pkg="vla_stack" exec="x" name="$(anon y)"/></launch>', r"unsupported substitution \$\(anon y\)"),
    ('<launch><arg name="a"/></launch>', r"launch argument 'a' has no default"),
    ('<launch><node pkg="vla_stack" exec="x" if="maybe"/></launch>', r"expected true/false"),
    ('<launch><node pkg="vla_stack" exec="x"><param from="/no/such.yaml"/></node></launch>', "parameter file not found"),
    ('<launch><node', "malformed XML"),
])
def test_unsupported_or_broken_launch_files_fail_with_a_named_reason(tmp_path, body, message):
    f = tmp_path / "bad.launch.xml"
    f.write_text(body)
    with pytest.raises(LaunchFileError, match=message):
        load_launch(f)


def test_unknown_launch_argument_is_refused():
    with pytest.raises(LaunchFileError, match=r"unknown launch argument\(s\) \['typo'\]"):
        load_launch(LAUNCH / "teleop.launch.xml", {"typo": "1"})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too
        return f.read().split(")")[-1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.timeout(150)
def test_vla_up_runs_the_graph_with_params_and_remaps_and_stops_every_child(tmp_path):
    from geometry_msgs.msg import PoseStamped, TwistStamped

    from vla_stack.ros2_nodes import qos
    from vla_stack.ros2_nodes.probe import Probe

    domain = 61
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    up = subprocess.Popen([sys.executable, "-m", "vla_stack.cli", "up", str(LAUNCH / "teleop.launch.xml"),
                           "cmd_twist_topic:=/robot/cmd", "control_rate_hz:=40.0", "--log-dir", str(tmp_path)],
                          env=env, stderr=subprocess.PIPE, text=True)
    probe = Probe(domain)
    try:
        cmds = probe.subscribe("/robot/cmd", TwistStamped, qos.COMMAND)
        pose_pub = probe.publisher("ee_pose", PoseStamped, qos.SENSOR)
        twist_pub = probe.publisher("teleop_twist", TwistStamped, qos.COMMAND)
        pose = PoseStamped()
        pose.pose.position.x, pose.pose.position.z, pose.pose.orientation.w = 0.5, 0.3, 1.0
        fast = TwistStamped()
        fast.twist.linear.x = 1.0  # 4x the speed limit in launch/safety.yaml

        def drive():
            pose_pub.publish(pose)
            twist_pub.publish(fast)
            return any(m.twist.linear.x > 0 for _, m in cmds)

        assert probe.wait_for(drive, 60.0, poll_s=0.02), "no motion command on the remapped topic"
        t0, n0 = time.monotonic(), len(cmds)
        probe.wait_for(lambda: drive() and False, 1.0, poll_s=0.02)
        rate = (len(cmds) - n0) / (time.monotonic() - t0)
        assert 30 <= rate <= 50, f"command rate {rate:.1f} Hz, launch argument said 40"
        assert max(m.twist.linear.x for _, m in cmds) == pytest.approx(0.25, rel=1e-3)  # safety.yaml limit
        # Sensors go quiet: the watchdog (0.5 s in safety.yaml) brings the command to zero.
        quiet_from = time.monotonic()
        assert probe.wait_for(lambda: cmds[-1][1].twist.linear.x == 0.0, 2.0)
        assert time.monotonic() - quiet_from <= 2 * 0.5 + 0.1

        children = _children(up.pid)
        assert len(children) == 1 and all(_pid_alive(p) for p in children)
    finally:
        probe.close()
        up.send_signal(signal.SIGINT)
        err = up.communicate(timeout=20)[1]
    assert up.returncode == 0, err
    assert "exit codes {'teleop': 0}" in err
    assert not any(_pid_alive(p) for p in children)


@pytest.mark.timeout(150)
def test_killing_vla_up_takes_its_children_down(tmp_path):
    env = {**os.environ, "ROS_DOMAIN_ID": "62", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    up = subprocess.Popen([sys.executable, "-m", "vla_stack.cli", "up", str(LAUNCH / "teleop.launch.xml"),
                           "--log-dir", str(tmp_path)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not _children(up.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = _children(up.pid)
    assert children
    up.kill()  # no chance to clean up: the kernel's parent-death signal must do it
    up.wait()
    deadline = time.monotonic() + 10
    while any(_pid_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_pid_alive(p) for p in children)


def test_vla_up_reports_a_bad_launch_file_without_starting_anything(tmp_path, capsys):
    from vla_stack import cli

    f = tmp_path / "bad.launch.xml"
    f.write_text('<launch><node pkg="vla_stack" exec="no_such_node"/></launch>')
    assert cli.main(["up", str(f)]) == 2
    assert "has no executable 'no_such_node'" in capsys.readouterr().err


def test_bare_launch_file_names_resolve_to_the_package_launch_folder():
    assert [n.executable for n in load_launch("teleop.launch.xml")] == ["teleop_node"]


def test_ros_install_ships_every_launch_file_and_registers_the_package():
    """colcon (ament_python) installs what setup.cfg lists: a launch file missing there would
    work under `vla up` from a checkout but not under `ros2 launch vla_stack <file>`."""
    import configparser
    import xml.etree.ElementTree as ET

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    data = cfg["options.data_files"]
    shipped = {Path(p.strip()).name for p in data["share/vla_stack/launch"].split() if p.strip()}
    assert shipped == {p.name for p in LAUNCH.iterdir() if p.suffix in (".xml", ".yaml")}
    assert data["share/ament_index/resource_index/packages"].strip() == "resource/vla_stack"
    assert (REPO / "resource" / "vla_stack").is_file()
    pkg = ET.parse(REPO / "package.xml").getroot()
    assert pkg.findtext("name") == "vla_stack" and pkg.find("export/build_type").text == "ament_python"
    scripts = open(REPO / "pyproject.toml").read()
    from vla_stack.ros2_nodes.executables import NODES

    for exe, module in NODES.items():
        assert f'{exe} = "{module}:main"' in scripts  # console script == lib/vla_stack executable
