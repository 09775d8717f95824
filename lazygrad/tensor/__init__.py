"""Tensor: the user-facing, PyTorch-like API. Every method checks its arguments at once and returns a Tensor
wrapping a new lazy node; nothing runs until a value is needed (`realize`, `numpy`, `item`, `tolist`).

The class is assembled here from one module per concern: core (state, autograd entry points, in-place updates,
realization), creation, elementwise, movement, indexing, reduce, nn_ops."""
from __future__ import annotations
from ..helpers import ShapeError
from .. import amp
from .core import TensorCore, realize, overwrite
from .core import _hold, _roots, _assigned   # noqa: F401  what lazygrad.jit reads of tensor memory
from .creation import Creation, manual_seed
from .elementwise import Elementwise, where, searchsorted, bucketize
from .movement import Movement
from .indexing import Indexing
from .reduce import Reductions
from .nn_ops import NNOps
from .conv import ConvOps

__all__ = ["Tensor", "ShapeError", "manual_seed", "realize", "overwrite", "where", "searchsorted", "bucketize"]


class Tensor(TensorCore, Creation, Elementwise, Movement, Indexing, Reductions, NNOps, ConvOps):
  """A lazily evaluated n-d array. See the package README for the supported API.

  Values and in-place updates follow PyTorch. A tensor made by an op holds a value fixed when it is built. Views
  (reshape, permute, expand, basic indexing, split, detach...) are windows on their base tensor: they show the base's
  current value and an in-place update of a view writes through to the base. An in-place update (`assign`, `+=`, an
  optimizer step) of a tensor backed by memory writes that memory when realized; before it does, every live tensor
  still waiting to read the old contents is realized, so nothing built earlier sees the new value. A graph that still
  needs an overwritten value and could not be kept (an old loss's backward) raises StaleValueError."""
  __slots__ = ()


amp.install(Tensor)   # the ops torch.autocast changes (lazygrad.amp)
