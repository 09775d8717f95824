"""JIT: capture the kernels a function launches once, then replay them on later calls without building the graph,
scheduling or looking anything up: only the kernel launches remain.

The function must take its changing data as Tensor arguments (realized, same shapes and dtypes every call) and
return Tensors. Everything it creates from host data itself (constants, `Tensor.rand` inside) is frozen at capture,
as with CUDA graphs. In-place updates (optimizer steps) replay in place. The buffers of a captured call stay
allocated and are reused by every replay."""
from __future__ import annotations
import functools
from ..ir.node import LazyNode
from . import realize as engine


class jit:
  """Decorator: the first call runs normally (scheduling and compiling), the second is captured, later calls
  replay the captured kernels with the new arguments' buffers."""

  def __init__(self, fn):
    self.fn, self.calls, self.captured = fn, 0, None
    functools.update_wrapper(self, fn)

  def __call__(self, *args):
    from ..tensor import Tensor, realize
    inputs = [a for a in args if isinstance(a, Tensor)]
    realize(*inputs)
    self.calls += 1
    if self.calls == 1: return self._realized(self.fn(*args))
    if self.captured is None:
      engine.recording = []
      try: outs = self._realized(self.fn(*args))
      finally: launches, engine.recording = engine.recording, None
      self.captured = ([a.node.buffer for a in inputs], [a.shape for a in inputs], launches,
                       [(o.node.buffer, o.shape) for o in outs])
      return outs
    bufs_in, shapes, launches, outs = self.captured
    if [a.shape for a in inputs] != shapes:
      raise ValueError(f"jit {self.fn.__name__}: inputs of shapes {[a.shape for a in inputs]} after a capture with {shapes}")
    swap = {id(b): a.node.buffer for b, a in zip(bufs_in, inputs)}
    for prg, bufs, scalars in launches: prg([swap.get(id(b), b) for b in bufs], scalars)
    engine.counters.kernels += len(launches)
    return tuple(Tensor._wrap(LazyNode.from_buffer(b, shape), inputs[0]) for b, shape in outs)

  @staticmethod
  def _realized(outs):
    from ..tensor import realize
    outs = outs if isinstance(outs, tuple) else (outs,)
    realize(*outs)
    return outs
