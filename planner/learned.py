"""The default planner: learned plan decoder + learned grounding, combined by the grammar.

reset(instruction): refusal checks, then the decoder composes the plan (plan_search.py).
next_subtask(observation, history): the grounding network estimates every fact from the
point cloud; the next subtask is the one after the *last* plan step whose expected facts
(effects of steps 0..i merged, sim/skills.py) all hold now. Reading progress from the
scene, not from `history`, is what skips work already done at reset and re-issues work
that was undone (drawer pushed closed again -> "open the drawer" again). What a closed
drawer hides is remembered from when it was last seen open.
subtask_done(observation, subtask): all effects of the subtask judged true.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from vla_stack import schema, text

from . import checkpoint, suite
from .base import Planner
from .grounding import Fact, GroundingNet, hidden_by_closed_drawer, subsample
from .plan_decoder import PlanDecoder
from .plan_search import plan_instruction

THRESHOLD = 0.5


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
        self._start = None

    @classmethod
    def load(cls, ckpt_dir) -> "LearnedPlanner":
        decoder, grounding, _ = checkpoint.load(ckpt_dir)
        return cls(decoder, grounding)

    def _reset(self) -> None:
        self.plan = plan_instruction(self.decoder, self.instruction, self.scene_catalog, self.encoder)
        self._expected = suite.expected_facts(self.plan)
        self._start = None  # centroids at the first observation (origin for "pushed toward")
        self._belief: dict[Fact, float] = {}  # last judgement of facts a closed drawer hides

    def fact_probabilities(self, observation: Mapping) -> dict[Fact, float]:
        def t(key):
            return torch.as_tensor(np.asarray(observation[key], np.float32))[None]

        pts, cols = subsample(t(schema.OBS_POINTS), t(schema.OBS_COLORS), self.grounding.cfg.n_points)
        state = t(schema.OBS_STATE)
        with torch.no_grad():
            feats, cent, glob = self.grounding.encode(pts, cols, state)
            if self._start is None:
                self._start = cent
            p = self.grounding.judge(feats, cent, glob, state, self._start, self._fact_idx).sigmoid()[0]
        probs = dict(zip(self.facts, p.tolist()))
        drawer_open = probs[Fact("open", "drawer")] > THRESHOLD
        for f in self.facts:
            if hidden_by_closed_drawer(f):
                if drawer_open:
                    self._belief[f] = probs[f]
                else:  # cannot be seen now: keep what was seen while the drawer was open
                    probs[f] = self._belief.get(f, 0.0)
        return probs

    def describe_scene(self, observation: Mapping) -> list[str]:
        """Facts judged true, as text (the LLM backend's scene summary)."""
        return [f"{f.text}: yes" for f, p in self.fact_probabilities(observation).items() if p > THRESHOLD]

    def progress(self, observation: Mapping) -> int:
        """Number of plan steps whose expected facts hold (from the end: later steps win)."""
        p = self.fact_probabilities(observation)
        for i in range(len(self.plan) - 1, -1, -1):
            if all(p[f] > THRESHOLD for f in self._expected[i]):
                return i + 1
        return 0

    def _next(self, observation: Mapping, history: list[str]) -> str:
        k = self.progress(observation)
        return schema.DONE_TOKEN if k >= len(self.plan) else self.plan[k]

    def _done(self, observation: Mapping, subtask: str) -> bool:
        p = self.fact_probabilities(observation)
        return all(p[f] > THRESHOLD for f in suite.effects(subtask))
