"""numpy <-> Arrow columns for fixed-shape tensor features (nested fixed-size lists).

An (N, 3) feature is stored as fixed_size_list<fixed_size_list<float32, 3>, N>, which a
LeRobot/HF-datasets reader sees as nested lists; reading back is a zero-copy flatten.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vla_stack.datasets.errors import DatasetError

_ARROW = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_(), "uint8": pa.uint8()}


def tensor_column(x: np.ndarray, dtype: str) -> pa.Array:
    """(F, *shape) -> an Arrow column of F rows; scalar features ((F,) or shape [1]) stay plain."""
    x = np.ascontiguousarray(x, dtype=np.dtype(dtype) if dtype != "bool" else np.bool_)
    if x.ndim == 1:
        return pa.array(x, type=_ARROW[dtype])
    arr: pa.Array = pa.array(x.reshape(-1), type=_ARROW[dtype])
    for size in reversed(x.shape[1:]):
        arr = pa.FixedSizeListArray.from_arrays(arr, size)
    return arr


def column_numpy(col: pa.ChunkedArray | pa.Array, shape: list[int], dtype: str, *, name: str,
                 path: Path | str, episode: int | None = None) -> np.ndarray:
    """Column -> (F, *shape) numpy; a wrong shape is a DatasetError naming feature, file, episode."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    rows = len(col)
    scalar = list(shape) == [1]
    arr = col
    dims: list[int] = []
    while pa.types.is_fixed_size_list(arr.type) or pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        if pa.types.is_fixed_size_list(arr.type):
            dims.append(arr.type.list_size)
        else:  # variable lists (e.g. written by another tool): infer the size from the data
            dims.append(len(arr.flatten()) // max(1, len(arr)))
        arr = arr.flatten()
    if (dims != list(shape)) and not (scalar and dims in ([], [1])):
        raise DatasetError(f"feature {name!r} has shape {dims or [1]} per row, info.json says {list(shape)}",
                           path=path, episode=episode)
    out = arr.to_numpy(zero_copy_only=False)
    want = np.bool_ if dtype == "bool" else np.dtype(dtype)
    if out.dtype != want:
        out = out.astype(want)
    return out.reshape((rows,) if scalar else (rows, *shape))


def read_table(path: Path | str, *, columns: list[str] | None = None, episode: int | None = None) -> pa.Table:
    """pq.read_table with errors that name the file (missing, truncated, not parquet, missing column)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError("file is missing", path=path, episode=episode)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"corrupt parquet ({e})", path=path, episode=episode) from None
    if columns is not None:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise DatasetError(f"missing column(s) {missing}", path=path, episode=episode)
        table = table.select(columns)
    return table


def string_table(key: str, index_name: str, values: list[str]) -> pa.Table:
    """A two-column table that pandas reads back with `key` strings as its index, as LeRobot's tasks.parquet."""
    import json

    table = pa.table({index_name: pa.array(range(len(values)), pa.int64()), key: pa.array(values, pa.string())})
    pandas_meta = {
        "index_columns": [key],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": index_name, "field_name": index_name, "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
                    {"name": key, "field_name": key, "pandas_type": "unicode", "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def read_strings(path: Path | str, key: str, index_name: str) -> list[str]:
    """Strings ordered by their index column; checks the indices are 0..n-1.

    The strings live in column `key` (ours) or in the pandas index column (LeRobot writes an
    unnamed index, `__index_level_0__`)."""
    import json

    table = read_table(path)
    if key not in table.column_names:
        meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
        index_cols = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
        if not index_cols:
            raise DatasetError(f"missing column(s) ['{key}'] (and no pandas index holding the strings)", path=path)
        key = index_cols[0]
    table = read_table(path, columns=[key, index_name])
    values = table.column(key).to_pylist()
    idx = table.column(index_name).to_pylist()
    if sorted(idx) != list(range(len(idx))):
        raise DatasetError(f"{index_name} must be 0..{len(idx) - 1}, got {idx}", path=path)
    out = [""] * len(idx)
    for i, v in zip(idx, values):
        out[i] = v
    return out
