"""Which subtask is current, read from the true simulator state at every step.

Subtask i is done when the facts expected after it hold (`Task.expected_facts()[i]`) and, for a
place or stack, the hand is clear of the released cube (`Subtask.released_object`; a completion
condition, not a fact that later subtasks must keep).
The index moves forward as subtasks complete, and back when the world undoes earlier
work: if a fact that subtask i-1 established (and that subtask i does not itself change)
stops holding, or subtask i's preconditions fail (the held cube was dropped), the earlier
subtask becomes current again. So perturbing the scene mid-episode re-targets the expert.
"""

from __future__ import annotations

from vla_stack.sim.facts import FactChecker
from vla_stack.sim.tasks import Task


class TaskProgress:
    def __init__(self, task: Task, facts: FactChecker):
        self.task = task
        self.facts = facts
        self._expected = task.expected_facts()
        self.index = 0

    @property
    def n_subtasks(self) -> int:
        return len(self.task.subtasks)

    @property
    def done(self) -> bool:
        return self.index >= self.n_subtasks

    def _kept(self, i: int) -> dict[str, str]:
        """Facts established up to subtask i that subtask i+1 must not break."""
        changed = set(self.task.subtasks[i + 1].effects())
        return {k: v for k, v in self._expected[i].items() if k not in changed}

    def update(self) -> bool:
        """Re-read the state; True when a subtask was completed in this update."""
        before = self.index
        k = self._advance(self.index)
        if k == self.n_subtasks and not self.facts.all_hold(self._expected[-1]):
            k -= 1  # the finished task was undone
        while 0 < k < self.n_subtasks and not (self.facts.all_hold(self._kept(k - 1)) and self._underway(k)):
            k -= 1
        self.index = self._advance(k)
        return self.index > before

    def _underway(self, k: int) -> bool:
        """Subtask k can go on: its preconditions hold (the cube is still held), or its effects already
        do and only the hand's back-off is left (a released cube no longer meets "holding")."""
        return self.facts.all_hold(self.task.subtasks[k].preconditions()) or self.facts.all_hold(self._expected[k])

    def _finished(self, k: int) -> bool:
        released = self.task.subtasks[k].released_object()
        return self.facts.all_hold(self._expected[k]) and (released is None or self.facts.hand_clear_of(released))

    def _advance(self, k: int) -> int:
        while k < self.n_subtasks and self._finished(k):
            k += 1
        return k
