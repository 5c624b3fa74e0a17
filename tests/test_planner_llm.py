"""The LLM backend against a small OpenAI-compatible server started on 127.0.0.1 by the test."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from vla_stack import schema
from vla_stack.planner.base import PlannerFailure
from vla_stack.planner.grammar import SkillCatalog, Subtask
from vla_stack.planner.llm import LLMConfig, LLMPlanner, parse_answer
from vla_stack.planner.refusal import InstructionRefused

CATALOG = SkillCatalog([
    Subtask("open", "drawer", "", "open the drawer"),
    Subtask("close", "drawer", "", "close the drawer"),
    Subtask("pick", "blue cube", "", "pick up the blue cube"),
    Subtask("pick", "red cube", "", "pick up the red cube"),
    Subtask("place", "blue cube", "drawer", "place the blue cube in the drawer"),
    Subtask("place", "red cube", "drawer", "place the red cube in the drawer"),
])


def observation():
    rng = np.random.default_rng(0)
    return {schema.OBS_POINTS: rng.normal(size=(64, 3)).astype(np.float32),
            schema.OBS_COLORS: rng.uniform(size=(64, 3)).astype(np.float32),
            schema.OBS_STATE: np.zeros(schema.STATE_DIM, np.float32)}


class ScriptedLLM:
    """Replies from a list, in order; records every request it got."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []

    def __enter__(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                reply = outer.replies.pop(0) if outer.replies else "DONE"
                if reply is None:  # simulate a broken server
                    self.send_response(500)
                    self.end_headers()
                    return
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.cfg = LLMConfig(base_url=f"http://127.0.0.1:{self.server.server_port}/v1", timeout_s=5, max_retries=2)
        return self

    def __exit__(self, *a):
        self.server.shutdown()
        self.server.server_close()


def test_llm_plan_is_prompted_with_catalogue_and_scene_and_parsed():
    with ScriptedLLM(["Next subtask: open the drawer.", "- pick up the blue cube"]) as llm:
        planner = LLMPlanner(CATALOG, llm.cfg)
        planner.reset("put the blue cube in the drawer", scene=["drawer", "blue cube"])
        assert planner.next_subtask(observation(), []) == "open the drawer"
        assert planner.next_subtask(observation(), ["open the drawer"]) == "pick up the blue cube"
    path, body = llm.requests[0]
    assert path == "/v1/chat/completions"
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    assert "- place the blue cube in the drawer" in system
    assert "red cube" not in system  # only subtasks executable in this scene are offered
    assert "put the blue cube in the drawer" in user and "objects in the scene: drawer, blue cube" in user
    assert "1. open the drawer" in llm.requests[1][1]["messages"][1]["content"]


def test_malformed_answer_is_retried_with_a_correction():
    with ScriptedLLM(["Sure! First I would open it.", "open the drawer"]) as llm:
        planner = LLMPlanner(CATALOG, llm.cfg)
        planner.reset("put the blue cube in the drawer")
        assert planner.next_subtask(observation(), []) == "open the drawer"
    retry = llm.requests[1][1]["messages"]
    assert retry[-2]["content"] == "Sure! First I would open it." and "is not valid" in retry[-1]["content"]


def test_persistent_nonsense_fails_safe_after_bounded_retries():
    with ScriptedLLM(["fly to the moon", "pick up the green banana", None, "DONE"]) as llm:
        planner = LLMPlanner(CATALOG, llm.cfg)
        planner.reset("put the red cube in the drawer")
        with pytest.raises(PlannerFailure, match="no valid answer after 3 attempts.*Stopping"):
            planner.next_subtask(observation(), [])
        assert len(llm.requests) == 3  # 1 try + max_retries, never more
        assert llm.replies == ["DONE"]


def test_subtask_outside_scene_is_rejected_and_done_is_understood():
    with ScriptedLLM(["pick up the red cube", "DONE", "yes"]) as llm:
        planner = LLMPlanner(CATALOG, llm.cfg)
        planner.reset("put the blue cube in the drawer", scene=["drawer", "blue cube"])
        assert planner.next_subtask(observation(), ["open the drawer"]) == schema.DONE_TOKEN
        assert planner.subtask_done(observation(), "open the drawer") is True


def test_unreachable_server_fails_safe():
    planner = LLMPlanner(CATALOG, LLMConfig(base_url="http://127.0.0.1:9/v1", timeout_s=1, max_retries=1))
    planner.reset("open the drawer")
    with pytest.raises(PlannerFailure, match="request failed"):
        planner.next_subtask(observation(), [])


def test_llm_backend_refuses_bad_instructions_before_calling_the_model():
    planner = LLMPlanner(CATALOG, LLMConfig(base_url="http://127.0.0.1:9/v1"))
    for bad, why in [("", "empty"), ("open the drawer " * 40, "too long"),
                     ("put the green cube in the drawer", "'green cube', which is not in the scene")]:
        with pytest.raises(InstructionRefused, match=why):
            planner.reset(bad, scene=["drawer", "blue cube", "red cube"])


def test_parse_answer_accepts_only_catalogue_lines():
    assert parse_answer("1. Close the drawer", CATALOG) == "close the drawer"
    assert parse_answer("`done`", CATALOG) == schema.DONE_TOKEN
    assert parse_answer("close the drawer slowly", CATALOG) is None
    assert parse_answer("", CATALOG) is None
