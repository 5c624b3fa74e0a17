"""The `vla` command: one entry point, subcommands registered by name.

Each subcommand is a function taking one typed dataclass config; tyro turns that dataclass
into the command line, so the config *is* the CLI. Modules are imported only when their
command runs, so `vla --help` stays fast and a missing optional extra (ROS) breaks only
the commands that need it.
"""

from __future__ import annotations

import importlib
import sys
import typing

#: "words of the command" -> ("module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vla_stack.agent.demo:run", "the full stack (planner, world model, action expert, safety) on a held-out composition in simulation -> MP4"),
    "sim demo": ("vla_stack.sim.demo:run", "run the scripted expert on a task, write an MP4"),
    "ship": ("vla_stack.agent.weights:pack", "copy planner, world model and action expert checkpoints into one shipped-weights folder with a manifest"),
    "sim tasks": ("vla_stack.sim.demo:list_tasks", "list registered tasks and splits"),
    "record": ("vla_stack.datasets.record:main", "record teleoperated episodes (expert/keyboard/ros) into a LeRobot-v3 dataset"),
    "data info": ("vla_stack.datasets.commands:info", "summarize a dataset: episodes, features, tasks, subtasks"),
    "data validate": ("vla_stack.datasets.commands:validate", "check a dataset (schema, NaN, timestamps, video frames); exit 1 on errors"),
    "data view": ("vla_stack.datasets.commands:view", "render an episode to MP4 and a PNG sheet with the actions plotted"),
    "data import-bag": ("vla_stack.datasets.bag_import:main", "convert a rosbag2 (sqlite3/MCAP) of robot topics into a dataset"),
    "up": ("vla_stack.ros2_nodes.up:up", "start the nodes of a ROS 2 launch file (XML/YAML) with pip-installed rclpy; Ctrl-C stops all"),
    "train world-model": ("vla_stack.world_model.train:main", "train the subgoal world model on (frame, subtask, end frame) triples"),
    "eval world-model": ("vla_stack.world_model.evaluate:main", "world model PSNR/SSIM vs copy-current, placement probe (cm), contact sheets"),
    "train planner": ("vla_stack.planner.train:main", "train the language planner (plan decoder + point-cloud grounding) on the task suite"),
    "eval planner": ("vla_stack.planner.evaluate:main", "planner next-subtask / whole-plan accuracy and closed-loop plan success per split"),
    "train policy": ("vla_stack.policy.train:run", "train the action expert (equivariant encoder + Mamba) on a dataset; torchrun for DDP"),
    "finetune": ("vla_stack.policy.finetune:run", "fine-tune an action-expert checkpoint on a new dataset (encoder optionally frozen)"),
    "eval": ("vla_stack.policy.evaluate:run", "evaluate an action expert in simulation: success table (JSON/Markdown), rollout MP4s"),
    "policy text-cache": ("vla_stack.policy.text_cache:run", "embed a dataset's (and the sim's) subtask texts into a file for VLA_TEXT_CACHE on GPU boxes"),
    "policy demos": ("vla_stack.policy.demos:run", "scripted-expert demos for policy training, one dataset per task in parallel, optional DART noise"),
    "policy dagger": ("vla_stack.policy.dagger:run", "DAgger data: roll a policy checkpoint out, label its states with the scripted expert"),
    "policy diagnose": ("vla_stack.policy.diagnose:run", "does a policy checkpoint find the subtask's object? first-action agreement, attention on the target"),
}


def register(words: str, target: str, help_text: str) -> None:
    COMMANDS[words] = (target, help_text)


def _usage() -> str:
    width = max(len(k) for k in COMMANDS)
    lines = ["usage: vla <command> [options]   (vla <command> --help for its options)", "", "commands:"]
    lines += [f"  {k.ljust(width)}  {h}" for k, (_, h) in sorted(COMMANDS.items())]
    return "\n".join(lines)


def _resolve(argv: list[str]) -> tuple[str, list[str]]:
    """Longest prefix of argv that names a command."""
    for n in range(min(3, len(argv)), 0, -1):
        words = " ".join(argv[:n])
        if words in COMMANDS:
            return words, argv[n:]
    raise KeyError(" ".join(argv[:2]))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    try:
        words, rest = _resolve(argv)
    except KeyError as e:
        print(f"vla: unknown command {e.args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[words][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    hints = typing.get_type_hints(func)
    params = [k for k in hints if k != "return"]
    if params:
        import tyro

        config = tyro.cli(hints[params[0]], args=rest, prog=f"vla {words}", description=COMMANDS[words][1])
        result = func(config)
    else:
        result = func()
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
