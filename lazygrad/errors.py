"""The exceptions a user can meet, in one place. They are defined in helpers (the bottom layer, so every stage can
raise them) and named here for users: `from lazygrad.errors import IndexOutOfBounds`."""
from .helpers import ShapeError, IndexOutOfBounds, DivisionByZero, InvalidValue, StaleValueError, JitError, \
  OutOfDeviceMemory

__all__ = ["ShapeError", "IndexOutOfBounds", "DivisionByZero", "InvalidValue", "StaleValueError", "JitError",
           "OutOfDeviceMemory"]
