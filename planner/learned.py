"""The default planner: learned plan decoder + learned grounding, combined by the grammar.

reset(instruction): refusal checks, then the decoder composes the plan (plan_search.py).
next_subtask(observation, history): the grounding network estimates every fact from the
point cloud; the next subtask is the one after the *last* plan step whose expected facts
(effects of steps 0..i merged, sim/skills.py) all hold now. Reading progress from the
scene, not from `history`, is what skips work already done at reset and re-issues work
that was undone (drawer pushed closed again -> "open the drawer" again). What cannot be
seen now (the content of a closed drawer, a button or cube under the arm) is remembered
from when it was last seen.
subtask_done(observation, subtask): all effects of the subtask judged true.

A fact counts as holding only when it was judged true on each of the last `hold_checks`
distinct observations (a one-frame misjudgement of a moving drawer must not end a subtask
or the whole task); it stops holding at the first frame judged false, so undone work is
noticed at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from vla_stack import schema, text

from . import checkpoint, suite
from .base import Planner
from .grounding import Fact, GroundingNet, hidden_by_closed_drawer, on_not_raised, subsample
from .plan_decoder import PlanDecoder
from .plan_search import plan_instruction

THRESHOLD = 0.5
HOLD_CHECKS = 3
CLOSED_ON_NOTHING_M = 0.01  # finger opening below this: nothing between them (a held cube keeps ~0.04)


class LearnedPlanner(Planner):
    def __init__(self, decoder: PlanDecoder, grounding: GroundingNet, encoder=None) -> None:
        super().__init__(suite.catalog())
        self.decoder, self.grounding = decoder.eval(), grounding.eval()
        self.encoder = encoder or text.default_encoder()
        # load MiniLM now, not at the first reset inside a control loop (and before any EGL
        # context exists: importing its stack after MuJoCo's EGL renderer started crashes)
        self.encoder("open the drawer")
        self.facts = suite.all_facts()
        self._fact_idx = grounding.fact_index(self.facts)
        self.plan: list[str] = []
        self.hold_checks = HOLD_CHECKS
        self._start = None

    @classmethod
    def load(cls, ckpt_dir) -> "LearnedPlanner":
        decoder, grounding, _ = checkpoint.load(ckpt_dir)
        return cls(decoder, grounding)

    def _reset(self) -> None:
        self.plan = plan_instruction(self.decoder, self.instruction, self.scene_catalog, self.encoder)
        self._expected = suite.expected_facts(self.plan)
        self._start = None  # segment summaries at the first observation (origin for "pushed toward")
        self._belief: dict[Fact, float] = {}  # last judgement of each fact while it could be seen
        self._recent: list[dict[Fact, bool]] = []  # judgements of the last observations, newest last
        self._recent_closed: list[bool] = []  # the fingers closed on nothing, same observations
        self._last_key = None
        self._current = 0  # plan index of the subtask last issued

    def fact_probabilities(self, observation: Mapping) -> dict[Fact, float]:
        def t(key):
            return torch.as_tensor(np.asarray(observation[key], np.float32))[None]

        pts, cols = subsample(t(schema.OBS_POINTS), t(schema.OBS_COLORS), self.grounding.cfg.n_points)
        state = t(schema.OBS_STATE)
        with torch.no_grad():
            seg = self.grounding.encode(pts, cols, state)
            if self._start is None:
                self._start = seg
            p = self.grounding.judge(seg, state, self._start, self._fact_idx).sigmoid()[0]
            p = p.masked_fill(on_not_raised(seg, self._fact_idx)[0], 0.0)
            seen = self.grounding.judgeable(seg, self._fact_idx)[0].tolist()
        probs = dict(zip(self.facts, p.tolist()))
        drawer_open = probs[Fact("open", "drawer")] > THRESHOLD
        for f, visible in zip(self.facts, seen):
            if visible and (drawer_open or not hidden_by_closed_drawer(f)):
                self._belief[f] = probs[f]
            else:  # cannot be seen now (occluded, or in the closed drawer): keep what was last seen
                probs[f] = self._belief.get(f, 0.0)
        return probs

    def _observe(self, observation: Mapping) -> None:
        """Judge a new frame (the same frame asked twice, done check then next subtask, counts once)."""
        key = tuple(hash(np.asarray(observation[k]).tobytes()) for k in (schema.OBS_POINTS, schema.OBS_STATE))
        if key != self._last_key:
            p = self.fact_probabilities(observation)
            self._recent = (self._recent + [{f: p[f] > THRESHOLD for f in self.facts}])[-max(1, self.hold_checks):]
            opening = float(np.asarray(observation[schema.OBS_STATE])[schema.STATE_GRIPPER][0])
            self._recent_closed = (self._recent_closed + [opening < CLOSED_ON_NOTHING_M])[-max(1, self.hold_checks):]
            self._last_key = key

    def facts_holding(self, observation: Mapping) -> dict[Fact, bool]:
        """Facts judged true on each of the last `hold_checks` distinct observations."""
        self._observe(observation)
        return {f: all(r[f] for r in self._recent) for f in self.facts}

    def _failing(self, f: Fact) -> bool:
        """Judged false on each of the last `hold_checks` observations (a lost grip, not a flicker)."""
        return not any(r[f] for r in self._recent)

    def describe_scene(self, observation: Mapping) -> list[str]:
        """Facts judged true, as text (the LLM backend's scene summary)."""
        return [f"{f.text}: yes" for f, p in self.fact_probabilities(observation).items() if p > THRESHOLD]

    def progress(self, observation: Mapping) -> int:
        """Number of plan steps done, read from the scene (the rule of sim/progress.py, on judged facts).

        The last step whose expected facts all hold wins (done work is skipped, undone work
        redone). The subtask in progress stays current while what earlier steps established
        (and it does not itself change) still holds: a drawer half-way shut is neither open
        nor closed, and closing it must not make "open the drawer" current again."""
        holds = self.facts_holding(observation)
        done = 0
        for i in range(len(self.plan) - 1, -1, -1):
            if all(holds[f] for f in self._expected[i]):
                done = i + 1
                break
        c = self._current
        if 0 < c < len(self.plan) and done < c:
            if (all(holds[f] for f in suite.kept_facts(self.plan, c - 1))
                    and not any(self._failing(f) for f in suite.preconditions(self.plan[c]))):
                return c
        return done

    def _next(self, observation: Mapping, history: list[str]) -> str:
        k = self.progress(observation)
        self._current = k
        return schema.DONE_TOKEN if k >= len(self.plan) else self.plan[k]

    def _done(self, observation: Mapping, subtask: str) -> bool:
        holds = self.facts_holding(observation)
        return all(holds[f] for f in suite.effects(subtask)) or self._dropped(subtask)

    def _dropped(self, subtask: str) -> bool:
        """A subtask that needs a cube in hand (place, stack) while the fingers are closed on nothing on each
        recent frame: the cube was dropped. The subtask is then over, so that the agent asks for the next one,
        and progress, read from the scene, names the pick again (the agent asks only once the current subtask
        is over). The fingers, not the grounding's "held" head, are the evidence: that head judged a cube
        carried at speed not held for several frames in a row (session 15, PutBlueInBowl)."""
        return bool(suite.preconditions(subtask)) and len(self._recent_closed) >= self.hold_checks and all(
            self._recent_closed[-self.hold_checks:])
