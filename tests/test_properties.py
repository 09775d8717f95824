"""Property-based tests against numpy: random chains of movement ops (views, pads, flips, strided slices), then a
broadcast elementwise op and a reduction over random dims. Every chain is one lazy graph, so these exercise the view
algebra (ShapeTracker merging, masks, index simplification) and the scheduler's fusion of whatever comes out."""
import numpy as np
from hypothesis import given, settings, strategies as st

from lazygrad import Tensor


def _factorizations(n: int) -> list[tuple]:
  """A few shapes with n elements."""
  out = [(n,), (1, n), (n, 1)]
  for a in range(2, n):
    if n % a == 0: out += [(a, n // a), (n // a, a)] + [(a, b, n // a // b) for b in range(2, n // a) if (n // a) % b == 0]
  return out


@st.composite
def movement_chain(draw):
  shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
  ops, cur = [], shape
  for _ in range(draw(st.integers(1, 7))):
    kind = draw(st.sampled_from(["reshape", "permute", "expand", "pad", "shrink", "flip", "step", "unsqueeze", "squeeze"]))
    nd = len(cur)
    if kind == "reshape":
      new = draw(st.sampled_from(_factorizations(int(np.prod(cur)))))
      ops.append((kind, new)); cur = new
    elif kind == "permute":
      perm = tuple(draw(st.permutations(range(nd))))
      ops.append((kind, perm)); cur = tuple(cur[p] for p in perm)
    elif kind == "expand":
      new = tuple(draw(st.integers(1, 3)) if s == 1 else s for s in cur)
      ops.append((kind, new)); cur = new
    elif kind == "pad":
      pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in cur)
      ops.append((kind, pads)); cur = tuple(s + a + b for s, (a, b) in zip(cur, pads))
    elif kind == "shrink":
      arg = []
      for s in cur:
        lo = draw(st.integers(0, s - 1))
        arg.append((lo, draw(st.integers(lo + 1, s))))
      ops.append((kind, tuple(arg))); cur = tuple(hi - lo for lo, hi in arg)
    elif kind == "flip":
      dims = tuple(sorted(set(draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd)))))
      ops.append((kind, dims))
    elif kind == "step":
      d, k = draw(st.integers(0, nd - 1)), draw(st.integers(1, 3))
      ops.append((kind, (d, k))); cur = tuple(-(-s // k) if i == d else s for i, s in enumerate(cur))
    elif kind == "unsqueeze":
      d = draw(st.integers(0, nd))
      ops.append((kind, d)); cur = cur[:d] + (1,) + cur[d:]
    elif kind == "squeeze" and 1 in cur and nd > 1:
      d = cur.index(1)
      ops.append((kind, d)); cur = cur[:d] + cur[d + 1:]
  return shape, ops, cur


def apply(x, ops, lib):
  for kind, arg in ops:
    if kind == "reshape": x = x.reshape(arg)
    elif kind == "permute": x = x.permute(arg) if lib == "lz" else np.transpose(x, arg)
    elif kind == "expand": x = x.expand(arg) if lib == "lz" else np.broadcast_to(x, arg)
    elif kind == "pad":
      x = x.pad([v for pair in reversed(arg) for v in pair]) if lib == "lz" else np.pad(x, arg)
    elif kind == "shrink":
      x = x.shrink(arg) if lib == "lz" else x[tuple(slice(lo, hi) for lo, hi in arg)]
    elif kind == "flip": x = x.flip(arg) if lib == "lz" else np.flip(x, arg)
    elif kind == "step":
      d, k = arg
      x = x[(slice(None),) * d + (slice(None, None, k),)]
    elif kind == "unsqueeze": x = x.unsqueeze(arg) if lib == "lz" else np.expand_dims(x, arg)
    elif kind == "squeeze": x = x.squeeze(arg) if lib == "lz" else np.squeeze(x, arg)
  return x


@settings(max_examples=150, deadline=None)
@given(movement_chain(), st.integers(0, 2**31))
def test_random_movement_chains_match_numpy(chain, seed):
  shape, ops, out_shape = chain
  a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
  got = apply(Tensor(a), ops, "lz")
  assert got.shape == out_shape
  np.testing.assert_array_equal(got.numpy(), apply(a, ops, "np"))


@settings(max_examples=100, deadline=None)
@given(movement_chain(), st.integers(0, 2**31), st.data())
def test_random_chain_broadcast_and_reduction_match_numpy(chain, seed, data):
  shape, ops, out_shape = chain
  rng = np.random.default_rng(seed)
  a = rng.standard_normal(shape).astype(np.float32)
  # a second operand that broadcasts against the chain's result (size-1 dims, fewer dims)
  b_shape = tuple(data.draw(st.sampled_from([s, 1])) for s in out_shape)[data.draw(st.integers(0, len(out_shape))):]
  b = rng.standard_normal(b_shape).astype(np.float32)
  dims = tuple(sorted(set(data.draw(st.lists(st.integers(0, len(out_shape) - 1), max_size=len(out_shape))))))
  keepdim, op = data.draw(st.booleans()), data.draw(st.sampled_from(["sum", "amax"]))
  x, y = apply(Tensor(a), ops, "lz") * Tensor(b) + 1, apply(a, ops, "np") * b + 1
  got = getattr(x, op)(dims or None, keepdim=keepdim) if dims else getattr(x, op)()
  want = getattr(np, op.removeprefix("a"))(y, axis=dims or None, keepdims=keepdim and bool(dims))
  np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
