"""Pure-numpy reader/writer for the IDX files MNIST and Fashion-MNIST ship as (gzip or raw).

Format (LeCun's MNIST page): two zero bytes, a type code byte, a dimension-count byte, then one
big-endian int32 per dimension, then the data, big-endian. A bad magic number or a file shorter
than its header promises is a :class:`~wnbench.errors.UserError` with one line naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from wnbench.errors import UserError

__all__ = ["read_idx", "write_idx", "IDX_TYPES"]

#: IDX type code -> numpy dtype (big-endian).
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise UserError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise UserError(f"corrupt IDX file {path}: gzip data is damaged or truncated ({exc})") from None


def read_idx(path: str | Path, expected_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw, detected from the bytes) into a native-endian array.

    ``expected_ndim`` (3 for images, 1 for labels) turns a file of the wrong kind into a clear error.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise UserError(f"corrupt IDX file {path}: {len(data)} bytes, shorter than the 4-byte magic number")
    zero, type_code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or type_code not in IDX_TYPES or ndim == 0:
        raise UserError(
            f"corrupt IDX file {path}: bad magic number 0x{data[:4].hex()} "
            "(expected 0x0000TTDD with a known type TT, e.g. 0x00000803 for images)"
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise UserError(f"IDX file {path} has {ndim} dimensions, expected {expected_ndim}")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise UserError(f"corrupt IDX file {path}: truncated inside the header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    expected_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual_bytes = len(data) - header_len
    if actual_bytes != expected_bytes:
        what = "truncated" if actual_bytes < expected_bytes else "has trailing bytes"
        raise UserError(
            f"corrupt IDX file {path}: {what}: {actual_bytes} data bytes for shape {shape}, expected {expected_bytes}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip when ``compress`` or the name ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {sorted(map(str, codes))}")
    header = bytes([0, 0, codes[native], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(IDX_TYPES[codes[native]]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path
