"""The LeRobotDataset-v3 writer and reader: exact round trip, layout, metadata, statistics."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from vla_stack.datasets import DatasetError, DatasetReader, DatasetSpec, DatasetWriter, layout
from vla_stack.datasets.synthetic import synthetic_frames, write_synthetic

SPEC = DatasetSpec(n_points=32, cameras={"rgb": (32, 32)}, depth_shape=(8, 8))


@pytest.fixture
def dataset(tmp_path):
    write_synthetic(tmp_path / "ds", SPEC, episodes=3, length=12)
    return tmp_path / "ds"


def test_round_trip_is_exact_for_numbers_and_close_for_video(dataset):
    reader = DatasetReader(dataset)
    assert reader.num_episodes == 3 and reader.num_frames == 12 + 13 + 14
    for ep in range(3):
        written = synthetic_frames(SPEC, 12 + ep, seed=ep)
        cols = reader.episode_columns(ep)
        for key in (layout.STATE, layout.ACTION, layout.POINTS, layout.COLORS, layout.DEPTH):
            np.testing.assert_array_equal(cols[key], np.stack([f[key] for f in written]), err_msg=key)
        assert [reader.subtask_texts[i] for i in cols[layout.SUBTASK_INDEX]] == [f["subtask"] for f in written]
        assert cols[layout.SUBTASK_DONE].tolist() == [f[layout.SUBTASK_DONE] for f in written]
        np.testing.assert_allclose(cols[layout.TIMESTAMP], np.arange(12 + ep) / SPEC.fps, rtol=1e-6)
        frames = reader.episode_frames(ep, "rgb")
        truth = np.stack([f[layout.image_key("rgb")] for f in written])
        assert frames.shape == truth.shape
        assert np.abs(frames.astype(int) - truth).mean() < 4.0  # h264 yuv420p at crf 18


def test_global_index_and_episode_boundaries_are_contiguous(dataset):
    reader = DatasetReader(dataset)
    prev_end = 0
    for ep, row in enumerate(reader.episodes):
        assert row["dataset_from_index"] == prev_end
        idx = reader.episode_columns(ep, [layout.INDEX])[layout.INDEX]
        assert idx.tolist() == list(range(row["dataset_from_index"], row["dataset_to_index"]))
        prev_end = row["dataset_to_index"]


def test_info_json_follows_the_lerobot_v3_field_list(dataset):
    info = json.loads((dataset / layout.INFO_PATH).read_text())
    assert set(layout.LEROBOT_INFO_FIELDS) <= set(info)
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 3 and info["total_frames"] == 39 and info["total_tasks"] == 2
    assert info["splits"] == {"train": "0:3"}
    for name, feat in info["features"].items():
        assert feat["dtype"] in layout.FEATURE_DTYPES and isinstance(feat["shape"], list), name
    assert info["features"]["observation.images.rgb"]["dtype"] == "video"
    assert info["features"]["observation.points"]["shape"] == [32, 3]
    # every path the templates produce exists
    for row in DatasetReader(dataset).episodes:
        assert (dataset / info["data_path"].format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])).is_file()
        assert (dataset / info["video_path"].format(video_key="observation.images.rgb", chunk_index=0,
                                                    file_index=row["videos/observation.images.rgb/file_index"])).is_file()


def test_tasks_parquet_reads_like_lerobots_pandas_table(dataset):
    table = pq.read_table(dataset / layout.TASKS_PATH)
    meta = json.loads(table.schema.metadata[b"pandas"])
    assert meta["index_columns"] == ["task"]  # pandas.read_parquet puts the task strings in the index
    assert table.column("task").to_pylist() == ["put the blue cube in the drawer", "open the drawer"]
    assert table.column("task_index").to_pylist() == [0, 1]


def test_subtask_segments_are_stored_per_episode(dataset):
    reader = DatasetReader(dataset)
    segs = reader.subtask_segments(0)
    assert [s[0] for s in segs] == ["reach the blue cube", "grasp the blue cube", "place it in the drawer"]
    assert segs[0][1] == 0 and segs[-1][2] == 12
    assert all(a[2] == b[1] for a, b in zip(segs, segs[1:]))


def test_stats_json_equals_statistics_over_all_frames(dataset):
    reader = DatasetReader(dataset)
    actions = np.concatenate([reader.episode_columns(e)[layout.ACTION] for e in range(3)]).astype(np.float64)
    points = np.concatenate([reader.episode_columns(e)[layout.POINTS] for e in range(3)]).astype(np.float64)
    s = reader.stats
    np.testing.assert_allclose(s[layout.ACTION]["mean"], actions.mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s[layout.ACTION]["std"], actions.std(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s[layout.POINTS]["std"], points.reshape(-1, 3).std(0), rtol=1e-6)
    assert s[layout.ACTION]["min"].tolist() == actions.min(0).tolist() and int(s[layout.ACTION]["count"][0]) == 39
    assert s["observation.images.rgb"]["mean"].shape == (3, 1, 1)


def test_writer_refuses_bad_frames_with_the_field_named(tmp_path):
    w = DatasetWriter.create(tmp_path / "ds", SPEC)
    w.start_episode("open the drawer")
    frame = synthetic_frames(SPEC, 1)[0]
    with pytest.raises(DatasetError, match="observation.state.*shape"):
        w.add_frame({**frame, layout.STATE: np.zeros(3)})
    with pytest.raises(DatasetError, match="action.*NaN"):
        w.add_frame({**frame, layout.ACTION: np.full(7, np.nan)})
    with pytest.raises(DatasetError, match="observation.images.rgb"):
        w.add_frame({**frame, layout.image_key("rgb"): np.zeros((32, 32, 3), np.float32)})
    with pytest.raises(DatasetError, match="missing feature 'observation.points'"):
        w.add_frame({k: v for k, v in frame.items() if k != layout.POINTS})
    with pytest.raises(DatasetError, match="no frames"):
        w.save_episode()


def test_nothing_is_overwritten_without_overwrite(tmp_path):
    write_synthetic(tmp_path / "ds", SPEC, episodes=1, length=5)
    with pytest.raises(DatasetError, match="--resume.*--overwrite"):
        DatasetWriter.create(tmp_path / "ds", SPEC)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("precious")
    with pytest.raises(DatasetError, match="not a dataset"):
        DatasetWriter.create(tmp_path / "notes", SPEC, overwrite=True)
    assert (tmp_path / "notes" / "thesis.txt").read_text() == "precious"
    w = DatasetWriter.create(tmp_path / "ds", SPEC, overwrite=True)
    assert w.num_episodes == 0 and DatasetReader(tmp_path / "ds").num_episodes == 0


def test_episodes_packed_into_shared_files_read_back_as_lerobot_writes_them(tmp_path):
    """LeRobot packs several episodes into one data file and one video; rows are selected by
    episode_index and frames by [from_timestamp, to_timestamp)."""
    import pyarrow as pa

    from vla_stack.datasets.validate import validate_dataset
    from vla_stack.datasets.video import encode_frames

    spec = DatasetSpec(n_points=8, cameras={"rgb": (16, 16)})
    root = tmp_path / "ds"
    write_synthetic(root, spec, episodes=2, length=4)  # lengths 4 and 5
    before = DatasetReader(root)
    cols1, frames1 = before.episode_columns(1), before.episode_frames(1, "rgb")
    both = [before.episode_frames(e, "rgb") for e in range(2)]
    data0, data1 = root / "data/chunk-000/file-000.parquet", root / "data/chunk-000/file-001.parquet"
    pq.write_table(pa.concat_tables([pq.read_table(data0), pq.read_table(data1)]), data0)
    data1.unlink()
    vid = root / "videos/observation.images.rgb/chunk-000"
    encode_frames(vid / "file-000.mp4", np.concatenate(both), spec.fps)
    (vid / "file-001.mp4").unlink()
    episodes = pq.read_table(root / layout.EPISODES_PATH).to_pylist()
    episodes[1].update({"data/file_index": 0, "videos/observation.images.rgb/file_index": 0,
                        "videos/observation.images.rgb/from_timestamp": 4 / spec.fps,
                        "videos/observation.images.rgb/to_timestamp": 9 / spec.fps})
    pq.write_table(pa.Table.from_pylist(episodes), root / layout.EPISODES_PATH)

    after = DatasetReader(root)
    for k in (layout.ACTION, layout.STATE, layout.POINTS):
        np.testing.assert_array_equal(after.episode_columns(1)[k], cols1[k])
    assert np.abs(after.episode_frames(1, "rgb").astype(int) - frames1).mean() < 4.0
    report = validate_dataset(root)
    assert report.ok, report.errors
