"""Side-by-side table of `vla policy diagnose` for the object-channel comparison (see README.md here).

Reads diag/<variant>_<task>.json (written by commands.sh), prints a markdown table and writes
summary.json through vla_stack.bench.write_results (flat metrics, units in the names)."""

from __future__ import annotations

import json
from pathlib import Path

from vla_stack import bench

HERE = Path(__file__).resolve().parent
VARIANTS = {"without": "no object channels, 700 steps", "with_inputs_only": "channels as inputs only, 700 steps",
            "with": "channels + head bias, 700 steps", "without_long": "no object channels, 1,400 steps",
            "with_long": "channels + head bias, 1,400 steps"}
TASKS = ("PickBlueCube", "PickRedCube")


def main() -> None:
    metrics, rows = {}, ["| variant | task | first-action corr x / y | best head's mass on target (uniform) | "
                         "best head's centroid error | channel covers target | marked points on target |",
                         "|---|---|---:|---:|---:|---:|---:|"]
    for v, label in VARIANTS.items():
        for task in TASKS:
            path = HERE / "diag" / f"{v}_{task}.json"
            if not path.is_file():
                continue
            r = json.loads(path.read_text())
            cx, cy = r["first_action_corr_xy"]
            mass = max(r["attention_mass_on_target_per_head"])
            err = min(r["centroid_error_cm_per_head"])
            cover = r.get("object_channel_share_of_target_points")
            prec = r.get("object_channel_precision")
            pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
            rows.append(f"| {label} | {task} | {cx:+.2f} / {cy:+.2f} | {mass:.3f} ({r['uniform_mass']:.3f}) | "
                        f"{err:.1f} cm | {pct(cover)} | {pct(prec)} |")
            key = f"{v}_{task}"
            metrics.update({f"{key}_first_action_corr_x": cx, f"{key}_first_action_corr_y": cy,
                            f"{key}_best_head_mass_on_target": mass, f"{key}_best_head_centroid_error_cm": err})
    rows += ["", "| variant | task | closed-loop successes (held-out layouts) |", "|---|---|---:|"]
    for v, label in VARIANTS.items():
        for path in sorted((HERE / "eval").glob(f"{v}_success*.json")):
            if not path.stem.startswith(f"{v}_success"):
                continue
            r = json.loads(path.read_text())
            for task, row in r["tasks"].items():
                rows.append(f"| {label} | {task} | {row['successes']}/{row['episodes']} |")
                metrics[f"{path.stem}_{task}_success_rate"] = row["success_rate"]
    table = "\n".join(rows)
    print(table)
    bench.write_results("summary", metrics, details={"table_md": table, "variants": VARIANTS},
                        out_dir=HERE)


if __name__ == "__main__":
    main()
