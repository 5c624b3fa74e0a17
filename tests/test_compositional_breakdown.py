"""The compositional report's per-subtask breakdown: which subtask of a held-out task fails, and whose fault."""

import pytest
from benchmark_scripts import load_benchmark

bench = load_benchmark("compositional")


def episode(task, subtasks):
    """subtasks: (text, reached, done, agent_tick, lag) per subtask of the task."""
    return {"section": "splits", "variant": "full", "split": "heldout_compositions", "task": task, "robot": "panda",
            "success": all(d for _, _, d, _, _ in subtasks),
            "subtasks": [dict(text=t, reached=r, done=d, done_tick=None, agent_tick=a, lag_ticks=lag)
                         for t, r, d, a, lag in subtasks]}


ROWS = [
    episode("PutBlueInBowl", [("pick up the blue cube", True, True, 2, None),
                              ("put the blue cube in the bowl", True, False, 36, 3)]),
    episode("PutBlueInBowl", [("pick up the blue cube", True, True, 2, None),
                              ("put the blue cube in the bowl", True, False, None, None)]),  # never handed over
    episode("PutGreenInBowlThenPressButton", [("pick up the green cube", True, False, 2, None),
                                              ("put the green cube in the bowl", False, False, None, None),
                                              ("press the button", False, False, None, None)]),
]


def test_breakdown_counts_reached_done_and_hand_overs_per_subtask():
    rows = {c["text"]: c for c in bench.subtask_breakdown(ROWS)}
    place = rows["put the blue cube in the bowl"]
    assert (place["skill"], place["seen"], place["reached"], place["done"], place["acted"]) == ("place", False, 2, 0, 1)
    assert place["median_lag_ticks"] == 3
    assert rows["pick up the blue cube"]["seen"]  # PickBlueCube is a train task
    assert rows["put the green cube in the bowl"]["seen"] and rows["put the green cube in the bowl"]["reached"] == 0
    skills = bench.by_skill(bench.subtask_breakdown(ROWS))
    assert skills["pick"] == {"reached": 3, "done": 2} and skills["place"] == {"reached": 2, "done": 0}
    assert skills["press"] == {"reached": 0, "done": 0}


def test_summary_and_report_show_where_the_held_out_split_fails(tmp_path):
    cfg = bench.CompositionalConfig(out_dir=tmp_path)
    metrics, _ = bench.summarize(cfg, ROWS, skipped=0)
    assert metrics["subtask_success_heldout_compositions_full_pick"] == 2 / 3
    assert metrics["subtask_success_heldout_compositions_full_place"] == 0.0
    assert "subtask_success_heldout_compositions_full_press" not in metrics  # never reached: no rate to report
    assert metrics["handoff_lag_median_ticks_heldout_full"] == 3.0
    details = {"subtask_breakdown": {"full": bench.subtask_breakdown(ROWS), "flat": []}}
    md = "\n".join(bench._breakdown_lines(details, "heldout_compositions"))
    assert "| put the blue cube in the bowl | place | no | 0 / 2 | 1 | 3 |" in md
    assert "| place | 0 / 2 |" in md


def test_sections_pick_the_work_for_a_quick_diagnosis():
    cfg = bench.CompositionalConfig(sections=("splits",), planner="oracle", episodes=2, episodes_other=1)
    units = bench.work_units(cfg)
    assert {u["section"] for u in units} == {"splits"}
    held = [u for u in units if u["split"] == "heldout_compositions"]
    assert len(held) == 2 * 7 and all(u["planner"] == "oracle" for u in units)
    with pytest.raises(ValueError, match="yaww"):
        bench.work_units(bench.CompositionalConfig(sections=("splits", "yaww")))
