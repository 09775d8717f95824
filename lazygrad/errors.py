"""The exceptions a user can meet, in one place (every stage imports from here, nothing is imported back)."""


class ShapeError(ValueError):
  """A shape that an op cannot take; the message names the op, the shapes, the dimension and the fix."""


class IndexOutOfBounds(IndexError, RuntimeError):
  """An integer index (tensor indexing, gather, embedding, one_hot, a cross-entropy target) outside its dimension.
  Index values live on the device: the numpy device raises when the schedule runs, the GPU at the next read of a
  value on the host (like CUDA's asynchronous errors, but naming the index, the size and the user's line)."""


class DivisionByZero(ZeroDivisionError, RuntimeError):
  """Integer division or remainder by zero (PyTorch raises too); raised like IndexOutOfBounds."""


class StaleValueError(RuntimeError):
  """A graph reads a value that an in-place update overwrote after the graph was built (PyTorch's 'modified by an
  inplace operation'); the message names where the value was made and where it was overwritten."""
