"""The exceptions a user can meet, in one place (every stage imports from here, nothing is imported back)."""


class ShapeError(ValueError):
  """A shape that an op cannot take; the message names the op, the shapes, the dimension and the fix."""


class StaleValueError(RuntimeError):
  """A graph reads a value that an in-place update overwrote after the graph was built (PyTorch's 'modified by an
  inplace operation'); the message names where the value was made and where it was overwritten."""


class JitError(RuntimeError):
  """A function given to lazygrad.jit does something a replay of its kernels could not reproduce; the message names
  the function, what it did and the fix."""
