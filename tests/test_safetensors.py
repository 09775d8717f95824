"""safetensors files: round trips, clear errors for corrupted files, and no temporaries left behind by writes that
failed or whose process was killed."""
import json, os, struct, subprocess, sys
import numpy as np
import pytest
import lazygrad
from lazygrad import Tensor
from lazygrad.nn import save_safetensors, load_safetensors, SafetensorsError


@pytest.fixture
def good(tmp_path):
  """A real file: two tensors and metadata."""
  path = tmp_path / "t.safetensors"
  save_safetensors({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([1, 2], np.int64)}, path,
                   {"step": 3})
  return path


def rewrite_header(path, edit):
  """Rewrite path's header after edit(header) changed it in place, keeping the data bytes."""
  data = path.read_bytes()
  (n,) = struct.unpack("<Q", data[:8])
  header = json.loads(data[8:8 + n])
  edit(header)
  raw = json.dumps(header).encode()
  path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])


def load_error(path) -> str:
  with pytest.raises(SafetensorsError) as e: load_safetensors(path)
  assert str(path) in str(e.value)
  return str(e.value)


def test_round_trip_of_every_dtype(tmp_path):
  arrays = {d.name: np.arange(6).reshape(2, 3).astype(d.np) for d in lazygrad.dtypes.ALL}
  save_safetensors({**arrays, "lazy": Tensor([1.5, 2.5])}, tmp_path / "all.safetensors", {"k": "v"})
  tensors, meta = load_safetensors(tmp_path / "all.safetensors")
  assert meta == {"k": "v"}
  for name, a in arrays.items():
    assert tensors[name].dtype.name == name
    np.testing.assert_array_equal(tensors[name].numpy(), a)
  np.testing.assert_array_equal(tensors["lazy"].numpy(), [1.5, 2.5])


def test_error_is_a_value_error():
  assert issubclass(SafetensorsError, ValueError)


@pytest.mark.parametrize("keep, expect", [(0, "shorter than the 8-byte header length"),
                                          (5, "shorter than the 8-byte header length"),
                                          (20, "goes beyond the file"),
                                          (-4, "truncated")])
def test_truncated_file(good, keep, expect):
  good.write_bytes(good.read_bytes()[:keep])
  assert expect in load_error(good)


def test_header_length_beyond_the_file(good):
  good.write_bytes(struct.pack("<Q", 2**40) + good.read_bytes()[8:])
  assert "header length 1099511627776 goes beyond the file" in load_error(good)


def test_flipped_header_bytes(good):
  data = bytearray(good.read_bytes())
  data[8:12] = b"\xff\xfe\x00{"
  good.write_bytes(bytes(data))
  assert "header is not valid JSON" in load_error(good)


@pytest.mark.parametrize("header, expect", [(b"[1, 2]", "header is list, not an object"),
                                            (b'{"w": {"dtype": "F32"', "not valid JSON"),
                                            (b'{"__metadata__": [1]}', "__metadata__ is list")])
def test_header_not_a_json_object(tmp_path, header, expect):
  path = tmp_path / "bad.safetensors"
  path.write_bytes(struct.pack("<Q", len(header)) + header)
  assert expect in load_error(path)


@pytest.mark.parametrize("edit, expect", [
  (lambda h: h["w"].pop("dtype"), "tensor 'w': header entry lacks dtype"),
  (lambda h: [h["w"].pop("shape"), h["w"].pop("data_offsets")], "lacks shape, data_offsets"),
  (lambda h: h.update(w=7), "tensor 'w': header entry is int"),
  (lambda h: h["w"].update(dtype="F8_E4M3"), "dtype 'F8_E4M3' is a dtype lazygrad does not support; supported: F32, F16, BF16"),
  (lambda h: h["w"].update(dtype="Q7"), "dtype 'Q7' is an unknown dtype; supported: F32"),
  (lambda h: h["w"].update(dtype=["F32"]), "dtype ['F32'] is an unknown dtype"),
  (lambda h: h["w"].update(shape=[2, -3]), "shape [2, -3] is not a list of non-negative integers"),
  (lambda h: h["w"].update(shape=[4, 3]), "span 24 bytes, but shape [4, 3] of F32 needs 48"),
  (lambda h: h["w"].update(data_offsets=[8, 4]), "are not [begin, end] with 0 <= begin <= end"),
  (lambda h: h["w"].update(data_offsets=[-24, 0]), "are not [begin, end]"),
  (lambda h: h["w"].update(data_offsets=[1000, 1024]), "data ends at byte 1024 of the data section, which has only 40"),
])
def test_bad_tensor_entries(good, edit, expect):
  rewrite_header(good, edit)
  assert expect in load_error(good)


def test_failed_write_removes_its_temporary_and_keeps_the_old_file(good, monkeypatch):
  before = good.read_bytes()
  def crash(fd): raise OSError(28, "No space left on device")
  monkeypatch.setattr(os, "fsync", crash)
  with pytest.raises(OSError, match="No space"): save_safetensors({"x": np.zeros(3, np.float32)}, good)
  assert good.read_bytes() == before
  assert sorted(p.name for p in good.parent.iterdir()) == [good.name]


def test_stale_temporaries_of_dead_writers_are_removed(good):
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
  stale = good.with_name(f"{good.name}.tmp{int(dead.stdout)}")
  live = good.with_name(f"{good.name}.tmp{os.getppid()}")          # a writer that may still be running
  other = good.with_name(f"other.safetensors.tmp{int(dead.stdout)}")  # another target's: not this save's business
  for p in (stale, live, other): p.write_bytes(b"partial")
  save_safetensors({"x": np.zeros(3, np.float32)}, good)
  assert not stale.exists() and live.exists() and other.exists()
  np.testing.assert_array_equal(load_safetensors(good)[0]["x"].numpy(), np.zeros(3))
