"""benchmarks/false_done.py's count: an unfinished episode that the agent's planner ended with DONE."""

from benchmark_scripts import load_benchmark

false_done = load_benchmark("false_done")


def test_false_done_counts_unfinished_episodes_ended_by_done_per_planner():
    rows = [dict(planner_kind="oracle", success=True, agent_done=False),
            dict(planner_kind="oracle", success=False, agent_done=False),     # ran out of time
            dict(planner_kind="learned", success=True, agent_done=True),      # a true DONE
            dict(planner_kind="learned", success=False, agent_done=True),     # a false one
            dict(planner_kind="learned", success=False, agent_done=True),
            dict(planner_kind="learned", success=False, error="boom")]
    m = false_done.summarize(rows)
    assert m["success_oracle"] == 0.5 and m["false_done_oracle"] == 0.0 and m["episodes_oracle"] == 2
    assert m["success_learned"] == 0.25 and m["false_done_learned"] == 0.5 and m["episodes_learned"] == 4
