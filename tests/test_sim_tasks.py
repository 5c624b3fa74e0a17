"""The task suite's data: grammar, tasks, splits (held-out items really are held out)."""

import pytest

import vla_stack.sim as sim
from vla_stack.schema import SchemaError
from vla_stack.sim.skills import SKILLS, Subtask
from vla_stack.sim.tasks import load_tasks, split_task_names


def test_suite_size_and_shape():
    tasks = load_tasks()
    assert len(tasks) >= 15
    assert len(SKILLS) >= 6
    assert {len(t.subtasks) for t in tasks.values()} >= {1, 2, 3, 4, 5}
    for t in tasks.values():
        assert len(t.instructions) >= 3, t.name
        assert len(set(t.instructions) | set(t.heldout_instructions)) == len(t.instructions) + len(t.heldout_instructions)


def test_subtask_text_is_canonical_and_parsed_from_specs():
    st = Subtask.parse("place blue_cube drawer")
    assert (st.skill, st.object, st.target) == ("place", "blue_cube", "drawer")
    assert st.text == "put the blue cube in the drawer"
    assert sim.get_task("PutRedInDrawer").subtask_texts == [
        "open the drawer", "pick up the red cube", "put the red cube in the drawer", "close the drawer"]


@pytest.mark.parametrize("spec", ["fly red_cube", "place red_cube", "pick bowl", "stack red_cube red_cube", "open"])
def test_malformed_subtasks_are_refused(spec):
    with pytest.raises(SchemaError):
        Subtask.parse(spec)


def test_unknown_task_error_lists_the_valid_names():
    with pytest.raises(SchemaError) as e:
        sim.get_task("PutCatInBowl")
    assert "PutCatInBowl" in str(e.value) and "PutRedInDrawer" in str(e.value)
    with pytest.raises(SchemaError, match="PressButton"):
        sim.env_id("NoSuchTask")


def test_heldout_compositions_are_new_combinations_of_trained_skills():
    tasks = load_tasks()
    train = split_task_names("train")
    train_triples = {st for n in train for st in tasks[n].subtasks}
    train_sequences = {tasks[n].subtasks for n in train}
    trained_skills = {st.skill for st in train_triples}
    assert trained_skills == set(SKILLS)
    for name in split_task_names("heldout_compositions"):
        t = tasks[name]
        assert name not in train
        assert {st.skill for st in t.subtasks} <= trained_skills
        new_triple = any(st not in train_triples for st in t.subtasks)
        assert new_triple or t.subtasks not in train_sequences, name


def test_heldout_paraphrases_are_never_training_phrasings():
    splits = sim.load_splits()
    train_phrases = {i["instruction"] for i in splits["train"]}
    assert splits["heldout_paraphrases"]
    for item in splits["heldout_paraphrases"]:
        assert item["task"] in split_task_names("train")
        assert item["instruction"] not in train_phrases


def test_chains_are_five_instructions():
    chains = sim.load_splits()["chains"]
    assert len(chains) >= 5
    assert all(len(c) == 5 and all(set(i) == {"task", "instruction"} for i in c) for c in chains)


def test_the_suite_is_machine_readable():
    suite = sim.describe_suite()
    t = suite["tasks"]["PutRedInDrawer"]
    assert t["subtasks"][2] == {"skill": "place", "object": "red_cube", "target": "drawer",
                                "text": "put the red cube in the drawer"}
    assert suite["skills"]["push"]["template"] == "push the {object} toward the {target}"
    assert set(suite["splits"]) >= {"train", "heldout_compositions", "heldout_paraphrases", "chains"}


def test_a_subtask_text_names_its_skill():
    from vla_stack.sim.tasks import subtask_skill

    assert subtask_skill("put the red cube in the bowl") == "place"
    assert subtask_skill("stack the blue cube on the red cube") == "stack"
    assert subtask_skill("open the drawer") == "open"
    assert subtask_skill("DONE") is None and subtask_skill("tidy up the table") is None
