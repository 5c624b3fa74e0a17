"""Bad input gets a clear error naming the file and the episode: corrupt parquet, truncated
video, missing metadata, wrong feature shapes, NaN, non-monotonic timestamps."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vla_stack import cli
from vla_stack.datasets import DatasetError, DatasetReader, DatasetSpec, WindowDataset, layout
from vla_stack.datasets.arrow_io import tensor_column
from vla_stack.datasets.synthetic import write_synthetic
from vla_stack.datasets.validate import validate_dataset

SPEC = DatasetSpec(n_points=8, cameras={"rgb": (16, 16)})


@pytest.fixture
def root(tmp_path):
    write_synthetic(tmp_path / "ds", SPEC, episodes=2, length=6)
    return tmp_path / "ds"


def data_file(root, ep):
    return root / f"data/chunk-000/file-{ep:03d}.parquet"


def rewrite_column(path, name, values):
    table = pq.read_table(path)
    table = table.set_column(table.column_names.index(name), name, values)
    pq.write_table(table, path)


def test_corrupt_parquet_names_file_and_episode(root):
    path = data_file(root, 1)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DatasetError, match=r"file-001\.parquet episode 1: corrupt parquet"):
        WindowDataset(root)
    report = validate_dataset(root)
    assert len(report.errors) == 1 and "file-001.parquet episode 1: corrupt parquet" in report.errors[0]


def test_truncated_video_names_file_and_episode(root):
    path = root / "videos/observation.images.rgb/chunk-000/file-000.mp4"
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(DatasetError, match=r"file-000\.mp4 episode 0"):
        DatasetReader(root).episode_frames(0, "rgb")
    errors = validate_dataset(root).errors
    assert len(errors) == 1 and "file-000.mp4 episode 0" in errors[0]


def test_video_with_too_few_frames_is_caught(root):
    from vla_stack.datasets.video import encode_frames

    path = root / "videos/observation.images.rgb/chunk-000/file-001.mp4"
    encode_frames(path, np.zeros((4, 16, 16, 3), np.uint8), SPEC.fps)  # episode 1 has 7 rows
    errors = validate_dataset(root).errors
    assert errors == [f"{path} episode 1: video has 4 frames, parquet has 7 rows"]


@pytest.mark.parametrize("missing", [layout.INFO_PATH, layout.EPISODES_PATH, layout.TASKS_PATH, layout.STATS_PATH])
def test_missing_meta_file_is_named(root, missing):
    (root / missing).unlink()
    with pytest.raises(DatasetError, match=missing.replace(".", r"\.") + ".*missing"):
        DatasetReader(root)


def test_broken_info_json(root):
    (root / layout.INFO_PATH).write_text("{ not json")
    with pytest.raises(DatasetError, match=r"info\.json: not valid JSON"):
        DatasetReader(root)
    (root / layout.INFO_PATH).write_text(json.dumps({"codebase_version": "v3.0"}))
    with pytest.raises(DatasetError, match=r"missing field\(s\) \['robot_type'"):
        DatasetReader(root)


def test_wrong_feature_shape_names_feature_file_and_episode(root):
    path = data_file(root, 0)
    rewrite_column(path, layout.STATE, tensor_column(np.zeros((6, 3), np.float32), "float32"))
    with pytest.raises(DatasetError, match=r"file-000\.parquet episode 0: feature 'observation.state' has shape \[3\]"):
        DatasetReader(root).episode_columns(0)
    assert any("observation.state" in e and "episode 0" in e for e in validate_dataset(root).errors)


def test_nan_and_non_monotonic_timestamps_are_reported(root):
    path = data_file(root, 1)
    actions = np.ones((7, 7), np.float32)
    actions[3, 2] = np.nan
    rewrite_column(path, layout.ACTION, tensor_column(actions, "float32"))
    ts = np.arange(7, dtype=np.float32) / 20
    ts[5] = ts[2]
    rewrite_column(path, layout.TIMESTAMP, pa.array(ts))
    errors = validate_dataset(root, videos=False).errors
    assert any("file-001.parquet episode 1: action has NaN/inf at frame(s) [3]" in e for e in errors)
    assert any("file-001.parquet episode 1: timestamps not strictly increasing at frame 5" in e for e in errors)


def test_row_count_mismatch_is_named(root):
    path = data_file(root, 0)
    pq.write_table(pq.read_table(path).slice(0, 4), path)
    with pytest.raises(DatasetError, match=r"episode 0: 4 rows in the data file, meta/episodes says length 6"):
        DatasetReader(root).episode_columns(0)


def test_unknown_episode_and_camera_are_named(root):
    reader = DatasetReader(root)
    with pytest.raises(DatasetError, match="episode 5 does not exist"):
        reader.episode_columns(5)
    with pytest.raises(DatasetError, match="no video 'observation.images.wrist'"):
        reader.episode_frames(0, "wrist")


def test_cli_validate_exits_1_and_prints_the_fault(root, capsys):
    assert cli.main(["data", "validate", str(root)]) == 0
    assert "OK" in capsys.readouterr().out
    data_file(root, 1).write_bytes(b"PAR1 garbage")
    assert cli.main(["data", "validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "file-001.parquet episode 1" in out
