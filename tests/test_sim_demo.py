"""`vla sim demo` writes a captioned MP4; `vla sim tasks` lists the suite."""

import json

import imageio.v2 as imageio

from vla_stack import cli


def test_demo_writes_a_video_and_says_where(tmp_path, capsys):
    out = tmp_path / "demo.mp4"
    rc = cli.main(["sim", "demo", "--task", "PressButton", "--robot", "ur5e", "--out", str(out),
                   "--width", "160", "--height", "96"])
    assert rc == 0  # the expert succeeded
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed and "succeeded" in printed
    frames = imageio.mimread(out, memtest=False)
    assert len(frames) > 20 and frames[0].shape == (96, 160, 3)
    assert frames[0][:20].mean() < frames[0][40:].mean()  # the darkened caption band


def test_tasks_lists_names_and_json_suite(capsys):
    assert cli.main(["sim", "tasks", "--split", "heldout_compositions"]) == 0
    out = capsys.readouterr().out
    assert "PutRedInDrawer" in out and "PickRedCube" not in out and "3. put the red cube in the drawer" in out
    assert cli.main(["sim", "tasks", "--json"]) == 0
    suite = json.loads(capsys.readouterr().out)
    assert len(suite["tasks"]) >= 15 and "pick" in suite["skills"]
