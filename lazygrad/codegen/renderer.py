"""Renderers: block uops -> source in a device's language, the last codegen stage; and their registry.

Input: a verified `Program`. Output: source text that defines the kernel and its launch constants. Contract: the
source computes what the numpy interpreter computes for the same uops (check mode compares them). Triton
(`codegen/triton.py`) is one; another language (C for the CPU, say) registers a renderer here and a device in
`runtime/device.py`, and needs no change elsewhere."""
from __future__ import annotations
from typing import Protocol
from .uops import Program


class Renderer(Protocol):
  name: str

  def render(self, prog: Program, precision: str = "ieee") -> str:
    """Source for `prog`; `precision` ('ieee' or 'tf32') for float32 contractions."""
    ...


_RENDERERS: dict[str, Renderer] = {}


def register_renderer(renderer: Renderer):
  _RENDERERS[renderer.name] = renderer


def get_renderer(name: str) -> Renderer:
  if name not in _RENDERERS: raise ValueError(f"no renderer {name!r}; registered: {', '.join(_RENDERERS)}")
  return _RENDERERS[name]
