"""Check mode (LAZYGRAD_CHECK=1 or `Context(CHECK=1)`): every kernel also runs on the numpy interpreter with the same
inputs, and the first kernel whose outputs differ beyond tolerance stops the run, naming the kernel, its source,
the user line it came from and the largest difference. Only the part of each buffer a kernel's addresses can reach
(`Kernel.spans`) is copied and compared, so checking a kernel that reads one parameter of a flat buffer costs that
parameter, not the buffer."""
from __future__ import annotations
import numpy as np
from ..codegen.kernel import K
from ..ir.ops import Op
from .buffer import Buffer, parts


class CheckError(AssertionError):
  """A kernel's output differs from the numpy reference."""


def tolerance(kernel, prg) -> tuple[float, float]:
  """(rtol, atol relative to the largest reference value) for a kernel's output dtype and its contractions. A value
  rounded to 16 bits inside the kernel (an autocast matmul result added to a float32 residual) counts as a 16-bit
  output: two summation orders can round it to neighbouring bf16 values, one ulp (2^-8 relative) apart."""
  narrow = ("bfloat16", "float16")   # read from the kernel AST: a device program may lower it again to show uops
  rounded = any(n.op is Op.CAST and n.dtype.name in narrow for n in kernel.nodes)
  if kernel.bufs[0].dtype.name in narrow or rounded:
    return 2e-2, 2e-2
  if getattr(prg, "precision", "ieee") == "tf32" and any(n.op in (K.DOT, K.ATTENTION) for n in kernel.nodes):
    return 2e-2, 2e-2
  return 1e-4, 1e-5


def _host(buf: Buffer, span: tuple[int, int]) -> np.ndarray:
  """A host copy of the elements [start, stop) of a buffer."""
  start, stop = span
  (part,) = parts([buf], (start,), [stop - start])
  return np.array(part.numpy(), copy=True)


def snapshot(kernel, bufs: list[Buffer]) -> list[np.ndarray]:
  """Host copies of the parts of a kernel's buffers it touches (`Kernel.spans`), taken before it runs: an in-place
  kernel overwrites its inputs."""
  return [_host(b, span) for b, span in zip(bufs, kernel.spans)]


def compare(item, prg, bufs: list[Buffer], scalars: list, before: list[np.ndarray]):
  """Run `item`'s kernel on the numpy interpreter over `before` and compare with the device's outputs."""
  from .device import get_device
  ref_dev = get_device("numpy")
  spans = item.kernel.spans
  ref_bufs = []
  for b, arr, (start, stop) in zip(bufs, before, spans):
    full = np.zeros(b.size, arr.dtype)   # untouched pages outside the span cost nothing: the kernel never reads them
    full[start:stop] = arr
    ref_bufs.append(Buffer(ref_dev, b.dtype, b.size, full))
  ref_dev.compile(item.kernel)(ref_bufs, scalars)
  rtol, atol = tolerance(item.kernel, prg)
  for i, (got_buf, ref_buf) in enumerate(zip(bufs[:len(item.outputs)], ref_bufs)):
    start, stop = spans[i]
    got, ref = _host(got_buf, spans[i]).astype(np.float64), ref_buf.numpy()[start:stop].astype(np.float64)
    scale = np.nanmax(np.abs(ref[np.isfinite(ref)]), initial=1.0)
    bad = ~np.isclose(got, ref, rtol=rtol, atol=atol * scale, equal_nan=True)
    if bad.any():
      diff = np.where(bad, np.abs(got - ref), 0)
      j = int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)))
      at = start + j
      lines = item.lines([item.kernel.nodes.index(item.kernel.stores[i])])
      source = getattr(prg, "source", None) or prg.prog.text
      raise CheckError(f"check: kernel {item.kernel.name} (from {lines}) differs from the numpy reference in "
                       f"{int(bad.sum())} of {bad.size} elements it writes; largest difference at flat index {at}: "
                       f"device {got[j]!r} vs numpy {ref[j]!r} (rtol {rtol}, atol {atol * scale:.3g})\n"
                       f"--- source ---\n{source}\n--- kernel AST ---\n{item.kernel.text}")
