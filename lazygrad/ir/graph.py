"""The node machinery every IR shares: hash-consing, topological order and bottom-up evaluation, all iterative
(a graph may be a chain 100,000 nodes deep).

The lazy graph (`ir/node.py`), the kernel AST (`codegen/kernel.py`) and the uops (`codegen/uops.py`) are DAGs of
nodes with `srcs`; the passes between them (the kernel builder, canonicalization, the linearizer) are evaluations
of one DAG into another."""
from __future__ import annotations
import weakref
from typing import Callable, Hashable, Iterable


class ConsTable:
  """One live node per key, held weakly: equal nodes are one object (so compared and hashed by identity, never
  recursively), and a node nothing uses any more is dropped."""
  __slots__ = ("_refs",)
  def __init__(self): self._refs: dict[Hashable, weakref.ref] = {}

  def get(self, key):
    ref = self._refs.get(key)
    return None if ref is None else ref()

  def add(self, key, node):
    self._refs[key] = weakref.ref(node, lambda r, key=key: self._forget(key, r))

  def _forget(self, key, ref):
    if self._refs.get(key) is ref: del self._refs[key]


def _srcs(n): return n.srcs


def toposort(roots: Iterable, children: Callable = _srcs) -> list:
  """Nodes reachable from `roots` through `children(node)`, sources first, each once."""
  order, seen, stack = [], set(), [(r, False) for r in reversed(list(roots))]
  while stack:
    n, expanded = stack.pop()
    if expanded: order.append(n); continue
    if id(n) in seen: continue
    seen.add(id(n))
    stack.append((n, True))
    stack.extend((s, False) for s in reversed(children(n)) if id(s) not in seen)
  return order


def evaluate(root, children: Callable, make: Callable, memo: dict, key: Callable = id):
  """The value of `root`, computed bottom-up: `make(item, [values of children(item)])` once per `key(item)`,
  remembered in `memo` (pass one dict to share work across roots). Items may be nodes or (node, context) tuples."""
  stack = [(root, False)]
  while stack:
    item, ready = stack.pop()
    k = key(item)
    if k in memo: continue
    kids = children(item)
    if not ready and any(key(c) not in memo for c in kids):
      stack.append((item, True))
      stack.extend((c, False) for c in kids if key(c) not in memo)
      continue
    memo[k] = make(item, [memo[key(c)] for c in kids])
  return memo[key(root)]


def rewrite(roots: list, fn: Callable, memo: dict | None = None) -> list:
  """`roots` rebuilt bottom-up: `fn(node, new_srcs)` gives each node's replacement. `memo`, if given, receives
  id(node) -> replacement for every node below the roots."""
  memo = {} if memo is None else memo
  for n in toposort(roots): memo[id(n)] = fn(n, tuple(memo[id(s)] for s in n.srcs))
  return [memo[id(r)] for r in roots]
