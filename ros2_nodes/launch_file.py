"""Read ROS 2 launch files (XML or YAML frontend) into a list of node specifications.

The same files run under `ros2 launch vla_stack <file>` on a ROS 2 install; this reader
supports the subset they use, so `vla up` can start the graph where ROS 2 `launch` cannot
be installed (pip-only machines, CI): `arg`, `let`, `node` (pkg, exec, name, namespace,
args, if/unless, children `param` with name/value or `from` a parameter file, `remap`,
`env`), `group` (if/unless) and the substitutions `$(var)`, `$(env)`, `$(dirname)`,
`$(find-pkg-share vla_stack)`. Anything else is refused with an error naming it, rather
than silently starting a different graph than `ros2 launch` would.
"""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PACKAGE = "vla_stack"


def _package_share() -> Path:
    """`$(find-pkg-share vla_stack)`: the checkout (editable install) or <prefix>/share/vla_stack."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "package.xml").is_file():
        return checkout
    return Path(sys.prefix) / "share" / PACKAGE


PACKAGE_SHARE = _package_share()


def find_launch_file(name: str | Path) -> Path:
    """A path as given, or a bare name (`sim.launch.xml`) looked up in the package's launch/."""
    path = Path(name)
    if path.is_file() or path.parent != Path("."):
        return path
    candidate = PACKAGE_SHARE / "launch" / path.name
    return candidate if candidate.is_file() else path


class LaunchFileError(ValueError):
    """A launch file this reader cannot run: names the file, the element and the problem."""


@dataclass
class NodeSpec:
    package: str
    executable: str
    name: str | None = None
    namespace: str | None = None
    parameters: list[dict[str, str] | Path] = field(default_factory=list)  # inline values and files, in order
    remappings: list[tuple[str, str]] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def ros_args(self) -> list[str]:
        """The `--ros-args ...` command-line tail that gives a node its name, params and remaps."""
        out = ["--ros-args"]
        if self.name:
            out += ["-r", f"__node:={self.name}"]
        if self.namespace:
            out += ["-r", f"__ns:={self.namespace if self.namespace.startswith('/') else '/' + self.namespace}"]
        for p in self.parameters:
            if isinstance(p, Path):
                out += ["--params-file", str(p)]
            else:
                for k, v in p.items():
                    out += ["-p", f"{k}:={v if v != '' else chr(39) * 2}"]
        for src, dst in self.remappings:
            out += ["-r", f"{src}:={dst}"]
        return out


_SUBST = re.compile(r"\$\(([^()]*)\)")


class _Context:
    def __init__(self, path: Path, overrides: dict[str, str]) -> None:
        self.path = path
        self.overrides = dict(overrides)
        self.vars: dict[str, str] = {}

    def error(self, what: str) -> LaunchFileError:
        return LaunchFileError(f"{self.path.name}: {what}")

    def subst(self, text) -> str:
        if isinstance(text, bool):
            return "true" if text else "false"
        if not isinstance(text, str):
            return str(text)

        def one(m: re.Match) -> str:
            parts = m.group(1).split()
            if not parts:
                raise self.error(f"empty substitution in {text!r}")
            kind, rest = parts[0], parts[1:]
            if kind == "var" and len(rest) == 1:
                if rest[0] not in self.vars:
                    raise self.error(f"$(var {rest[0]}): launch argument not declared (declared: {sorted(self.vars)})")
                return self.vars[rest[0]]
            if kind == "env" and len(rest) in (1, 2):
                if rest[0] in os.environ:
                    return os.environ[rest[0]]
                if len(rest) == 2:
                    return rest[1].strip("'\"")
                raise self.error(f"$(env {rest[0]}): environment variable not set and no default")
            if kind == "dirname" and not rest:
                return str(self.path.parent)
            if kind == "find-pkg-share" and len(rest) == 1:
                if rest[0] != PACKAGE:
                    raise self.error(f"$(find-pkg-share {rest[0]}): only {PACKAGE} is known without a ROS install")
                return str(PACKAGE_SHARE)
            raise self.error(f"unsupported substitution $({m.group(1)})")

        prev = None
        while prev != text:  # substitutions may produce substitutions ($(var) holding $(dirname))
            prev, text = text, _SUBST.sub(one, text)
        return text

    def condition(self, attrs: dict) -> bool:
        if "if" in attrs and "unless" in attrs:
            raise self.error("an element cannot have both 'if' and 'unless'")
        for key, want in (("if", True), ("unless", False)):
            if key in attrs:
                value = self.subst(attrs[key]).strip().lower()
                if value not in ("true", "false", "1", "0"):
                    raise self.error(f"{key}={attrs[key]!r} evaluates to {value!r}, expected true/false")
                return (value in ("true", "1")) == want
        return True


# ---------------------------------------------------------------------------------------
# A neutral element tree: both frontends become (tag, attributes, children).
# ---------------------------------------------------------------------------------------


def _from_xml(el: ET.Element) -> tuple[str, dict, list]:
    return el.tag, dict(el.attrib), [_from_xml(c) for c in el]


def _from_yaml_item(ctx: _Context, item) -> tuple[str, dict, list]:
    if not isinstance(item, dict) or len(item) != 1:
        raise ctx.error(f"each entry under 'launch' must be a one-key mapping, got {item!r}")
    tag, body = next(iter(item.items()))
    if tag == "group":
        body = dict(body or {})
        children = [_from_yaml_item(ctx, c) for c in body.pop("children", [])]
        return tag, body, children
    if not isinstance(body, dict):
        raise ctx.error(f"'{tag}' must be a mapping, got {body!r}")
    attrs, children = {}, []
    for k, v in body.items():
        if k in ("param", "remap", "env"):
            if not isinstance(v, list):
                raise ctx.error(f"'{tag}.{k}' must be a list")
            children += [(k, dict(c), []) for c in v]
        else:
            attrs[k] = v
    return tag, attrs, children


def _parse_tree(path: Path, ctx: _Context) -> list[tuple[str, dict, list]]:
    text = path.read_text()
    if path.suffix == ".xml" or text.lstrip().startswith("<"):
        try:
            root = ET.fromstring(text)
        except ET.ParseError as e:
            raise ctx.error(f"malformed XML ({e})") from None
        if root.tag != "launch":
            raise ctx.error(f"root element must be <launch>, got <{root.tag}>")
        return _from_xml(root)[2]
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ctx.error(f"malformed YAML ({e})") from None
    if not isinstance(doc, dict) or "launch" not in doc:
        raise ctx.error("a YAML launch file needs a top-level 'launch:' list")
    return [_from_yaml_item(ctx, item) for item in doc["launch"] or []]


def _node(ctx: _Context, attrs: dict, children: list) -> NodeSpec:
    for req in ("pkg", "exec"):
        if req not in attrs:
            raise ctx.error(f"<node> needs a '{req}' attribute (got {sorted(attrs)})")
    known = {"pkg", "exec", "name", "namespace", "ros_args", "args", "output", "if", "unless", "respawn",
             "on_exit", "launch-prefix", "exec_name"}
    unknown = set(attrs) - known
    if unknown:
        raise ctx.error(f"<node exec={attrs['exec']!r}>: unsupported attribute(s) {sorted(unknown)}")
    spec = NodeSpec(package=ctx.subst(attrs["pkg"]), executable=ctx.subst(attrs["exec"]),
                    name=ctx.subst(attrs["name"]) if "name" in attrs else None,
                    namespace=ctx.subst(attrs["namespace"]) if "namespace" in attrs else None,
                    arguments=ctx.subst(attrs.get("args", "")).split())
    if "ros_args" in attrs:
        raise ctx.error("<node ros_args=...> is not supported by vla up; use <param> and <remap>")
    inline: dict[str, str] = {}
    for tag, a, sub in children:
        if tag == "param":
            if "from" in a:
                if inline:
                    spec.parameters.append(inline)
                    inline = {}
                p = Path(ctx.subst(a["from"]))
                if not p.is_file():
                    raise ctx.error(f"<param from={str(p)!r}>: parameter file not found")
                spec.parameters.append(p)
            elif "name" in a and "value" in a and not sub:
                inline[ctx.subst(a["name"])] = ctx.subst(a["value"])
            else:
                raise ctx.error(f"<param> needs name+value or from, got {sorted(a)}")
        elif tag == "remap":
            if "from" not in a or "to" not in a:
                raise ctx.error(f"<remap> needs from and to, got {sorted(a)}")
            spec.remappings.append((ctx.subst(a["from"]), ctx.subst(a["to"])))
        elif tag == "env":
            spec.env[ctx.subst(a["name"])] = ctx.subst(a["value"])
        else:
            raise ctx.error(f"<node exec={spec.executable!r}>: unsupported child <{tag}>")
    if inline:
        spec.parameters.append(inline)
    return spec


def _walk(ctx: _Context, elements: list, out: list[NodeSpec]) -> None:
    for tag, attrs, children in elements:
        if tag == "arg":
            if "name" not in attrs:
                raise ctx.error("<arg> needs a name")
            name = attrs["name"]
            if name in ctx.overrides:
                ctx.vars[name] = ctx.overrides[name]
            elif "default" in attrs:
                ctx.vars[name] = ctx.subst(attrs["default"])
            else:
                raise ctx.error(f"launch argument {name!r} has no default and was not given ({name}:=VALUE)")
        elif tag == "let":
            ctx.vars[attrs["name"]] = ctx.subst(attrs["value"])
        elif tag == "node":
            if ctx.condition(attrs):
                out.append(_node(ctx, attrs, children))
        elif tag == "group":
            if ctx.condition(attrs):
                _walk(ctx, children, out)
        else:
            raise ctx.error(f"unsupported element <{tag}> (vla up supports arg, let, node, group)")


def load_launch(path: str | Path, arguments: dict[str, str] | None = None) -> list[NodeSpec]:
    """The nodes `path` starts, with launch arguments `name -> value` applied."""
    path = find_launch_file(path).resolve()
    if not path.is_file():
        raise LaunchFileError(f"launch file not found: {path}")
    ctx = _Context(path, arguments or {})
    nodes: list[NodeSpec] = []
    _walk(ctx, _parse_tree(path, ctx), nodes)
    unknown = set(ctx.overrides) - set(ctx.vars)
    if unknown:
        raise ctx.error(f"unknown launch argument(s) {sorted(unknown)}; declared: {sorted(ctx.vars)}")
    return nodes


def parse_launch_arguments(items: list[str]) -> dict[str, str]:
    """`name:=value` items, as `ros2 launch` takes them."""
    out = {}
    for item in items:
        if ":=" not in item:
            raise LaunchFileError(f"launch argument {item!r} must look like name:=value")
        k, v = item.split(":=", 1)
        out[k] = v
    return out
