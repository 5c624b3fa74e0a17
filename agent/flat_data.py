"""The flat baseline's training data: the same demonstrations, conditioned on the instruction."""

from __future__ import annotations

from vla_stack import schema


def flat_dataset(src, dst) -> None:
    """Copy of a dataset whose every frame is annotated with its instruction instead of its subtask.

    Training the action expert on it gives the *flat* baseline (instruction-conditioned, no
    planner): the same training code, only the conditioning text differs.
    """
    import shutil
    from pathlib import Path

    import pyarrow.parquet as pq

    from vla_stack.datasets import layout
    from vla_stack.datasets.arrow_io import read_strings, string_table

    src, dst = Path(src), Path(dst)
    if not (src / layout.INFO_PATH).is_file():  # a folder of datasets (one per task): each one
        subs = sorted(p for p in src.iterdir() if (p / layout.INFO_PATH).is_file()) if src.is_dir() else []
        if not subs:
            raise schema.SchemaError(f"dataset {src}: no {layout.INFO_PATH} and no datasets inside")
        for p in subs:
            flat_dataset(p, dst / p.name)
        return
    shutil.copytree(src, dst, dirs_exist_ok=False)
    tasks = read_strings(dst / layout.TASKS_PATH, "task", layout.TASK_INDEX)
    pq.write_table(string_table("subtask", layout.SUBTASK_INDEX, tasks), dst / layout.SUBTASKS_PATH)
    for f in sorted((dst / "data").rglob("*.parquet")):
        t = pq.read_table(f)
        i = t.column_names.index(layout.SUBTASK_INDEX)
        pq.write_table(t.set_column(i, layout.SUBTASK_INDEX, t.column(layout.TASK_INDEX).cast(t.schema.field(i).type)), f)
