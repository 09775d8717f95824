"""safetensors files, read and written here (the format is a length-prefixed JSON header and raw little-endian
data). Writes are atomic: the file appears whole under its name or not at all."""
from __future__ import annotations
import json, os, struct
from pathlib import Path
import numpy as np
from ..dtypes import to_dtype
from ..tensor import Tensor

_CODES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64", "int32": "I32", "int64": "I64",
          "uint8": "U8", "bool": "BOOL"}
_NAMES = {v: k for k, v in _CODES.items()}


def save_safetensors(tensors: dict, path, metadata: dict | None = None):
  """Write {name: Tensor or ndarray} to `path` atomically (temporary file, fsync, rename)."""
  arrays = {k: (v.numpy() if isinstance(v, Tensor) else np.asarray(v)) for k, v in tensors.items()}
  header, offset = {}, 0
  for name, a in arrays.items():
    dt = to_dtype(a.dtype).name
    header[name] = {"dtype": _CODES[dt], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
    offset += a.nbytes
  if metadata: header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
  raw = json.dumps(header, separators=(",", ":")).encode()
  raw += b" " * (-len(raw) % 8)
  path = Path(path)
  tmp = path.with_name(path.name + f".tmp{os.getpid()}")
  with open(tmp, "wb") as f:
    f.write(struct.pack("<Q", len(raw)) + raw)
    for a in arrays.values(): f.write(np.ascontiguousarray(a).tobytes())
    f.flush(); os.fsync(f.fileno())
  os.replace(tmp, path)


def load_safetensors(path, device: str | None = None) -> tuple[dict[str, Tensor], dict]:
  """({name: Tensor}, metadata) from a safetensors file."""
  data = Path(path).read_bytes()
  (n,) = struct.unpack("<Q", data[:8])
  header = json.loads(data[8:8 + n])
  meta = header.pop("__metadata__", {})
  out = {}
  for name, info in header.items():
    lo, hi = info["data_offsets"]
    dt = to_dtype(_NAMES[info["dtype"]])
    arr = np.frombuffer(data[8 + n + lo: 8 + n + hi], dtype=dt.np).reshape(info["shape"])
    out[name] = Tensor(arr, dtype=dt, device=device)
  return out, meta
