"""Optional backend: any OpenAI-compatible chat endpoint plans, the skill grammar checks it.

The model is shown the skill catalogue (only subtasks executable in this scene), a scene
summary and the subtasks completed so far, and must answer with one catalogue line or
DONE. Anything else is answered with a correction and retried `max_retries` times; then
the planner raises PlannerFailure, so the caller stops the robot instead of executing a
made-up subtask. Network errors count as failed attempts too.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from vla_stack import schema

from .base import Planner, PlannerFailure
from .grammar import SkillCatalog

SYSTEM_PROMPT = """You are the task planner of a robot arm on a tabletop. You turn the user's \
instruction into subtasks, one at a time. Every subtask must be copied verbatim from this \
catalogue of subtasks the robot can execute in the current scene:
{catalogue}

Rules: answer with exactly one line: the next subtask, copied from the catalogue, or {done} \
when the instruction is fully achieved in the scene as described. Skip subtasks whose effect \
already holds in the scene; redo a completed subtask whose effect was undone."""


@dataclass
class LLMConfig:
    base_url: str = "http://127.0.0.1:8000/v1"  # OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...)
    model: str = "default"
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable holding the key, if any
    max_retries: int = 2  # corrections after a malformed answer before failing safe
    timeout_s: float = 30.0
    temperature: float = 0.0


def chat(cfg: LLMConfig, messages: list[dict]) -> str:
    """One /chat/completions call; returns the assistant's text."""
    body = json.dumps({"model": cfg.model, "messages": messages, "temperature": cfg.temperature}).encode()
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(cfg.api_key_env)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(cfg.base_url.rstrip("/") + "/chat/completions", data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:
        reply = json.loads(resp.read().decode())
    try:
        return str(reply["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"reply is not an OpenAI chat completion: {json.dumps(reply)[:200]}") from None


def parse_answer(answer: str, catalog: SkillCatalog) -> str | None:
    """The catalogue subtask (or DONE) an answer names, tolerating bullets, quotes, prefixes."""
    for line in answer.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        line = re.sub(r"^(?:[-*\d.)\s]+|(?:next )?subtask\s*:\s*|answer\s*:\s*)", "", line, flags=re.I)
        line = line.strip().strip("`'\"").strip().rstrip(".")
        if line.upper() == schema.DONE_TOKEN:
            return schema.DONE_TOKEN
        sub = catalog.parse(line)
        return sub.text if sub is not None else None
    return None


def gripper_summary(observation: Mapping) -> list[str]:
    """What a planner can say from proprioception alone."""
    state = np.asarray(observation[schema.OBS_STATE], np.float32)
    opening = float(state[schema.STATE_GRIPPER][0])
    return [f"gripper opening: {opening * 100:.1f} cm", f"end effector at {np.round(state[schema.STATE_EE_POS], 3).tolist()} m"]


class LLMPlanner(Planner):
    def __init__(self, catalog: SkillCatalog, cfg: LLMConfig,
                 describe_scene: Callable[[Mapping], list[str]] | None = None,
                 judge_done: Callable[[Mapping, str], bool] | None = None) -> None:
        """`describe_scene`/`judge_done`: e.g. the learned planner's grounding (observation ->
        facts, completion judgement); without them the summary is proprioception only and the
        LLM itself is asked whether a subtask is complete."""
        super().__init__(catalog)
        self.cfg = cfg
        self.describe_scene = describe_scene or gripper_summary
        self.judge_done = judge_done
        self.transcript: list[dict] = []  # last exchange, for logs and error messages

    def _scene_lines(self, observation: Mapping) -> str:
        facts = self.describe_scene(observation)
        return "\n".join([f"objects in the scene: {', '.join(self.scene_entities)}", *facts])

    def _ask(self, messages: list[dict], valid: Callable[[str], str | None], what: str) -> str:
        errors = []
        for attempt in range(self.cfg.max_retries + 1):
            try:
                answer = chat(self.cfg, messages)
            except (urllib.error.URLError, OSError, ValueError, json.JSONDecodeError) as e:
                errors.append(f"attempt {attempt + 1}: request failed ({e})")
                continue
            self.transcript = [*messages, {"role": "assistant", "content": answer}]
            parsed = valid(answer)
            if parsed is not None:
                return parsed
            errors.append(f"attempt {attempt + 1}: {answer.strip()[:120]!r}")
            messages = [*messages, {"role": "assistant", "content": answer},
                        {"role": "user", "content": f"{answer.strip()[:200]!r} is not valid. Answer with {what}."}]
        raise PlannerFailure(
            f"LLM planner at {self.cfg.base_url}: no valid answer after {self.cfg.max_retries + 1} attempts "
            f"({'; '.join(errors)}). Stopping: no subtask is executed.")

    def _next(self, observation: Mapping, history: list[str]) -> str:
        cat = self.scene_catalog
        system = SYSTEM_PROMPT.format(catalogue=cat.describe(), done=schema.DONE_TOKEN)
        done = "\n".join(f"{i + 1}. {h}" for i, h in enumerate(history)) or "(none yet)"
        user = (f"Instruction: {self.instruction}\n\nScene:\n{self._scene_lines(observation)}\n\n"
                f"Subtasks completed so far:\n{done}\n\nNext subtask?")
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return self._ask(messages, lambda a: parse_answer(a, cat),
                         f"exactly one line copied from the catalogue, or {schema.DONE_TOKEN}")

    def _done(self, observation: Mapping, subtask: str) -> bool:
        if self.judge_done is not None:
            return bool(self.judge_done(observation, subtask))
        user = (f"Scene:\n{self._scene_lines(observation)}\n\nIs the subtask {subtask!r} complete? "
                "Answer yes or no.")
        messages = [{"role": "system", "content": "You judge whether a robot subtask is complete."},
                    {"role": "user", "content": user}]

        def yes_no(a: str) -> str | None:
            w = a.strip().lower().split()
            return w[0].strip(".,!") if w and w[0].strip(".,!") in ("yes", "no") else None

        return self._ask(messages, yes_no, "yes or no") == "yes"
