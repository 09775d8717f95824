"""Gradient tests of lazygrad: backward against torch's autograd, float64 finite differences, autograd semantics
(accumulation, detach, no_grad, leaves, realized intermediates) and the autograd errors."""
import numpy as np
import pytest
import torch

import lazygrad
from lazygrad import Tensor
from helpers import assert_same, dtype_name

F = torch.nn.functional
FWD_TOL = {"atol": 1e-6, "rtol": 1e-3}
GRAD_TOL = {"atol": 1e-4, "rtol": 1e-3}
HALF_TOL = {"atol": 1e-3, "rtol": 2e-3}


# ---------------------------------------------------------------- inputs
# An input spec is a tuple (kind, payload). Float kinds become leaves that require grad on both sides;
# "bool" and "index" inputs do not (masks, index tensors, targets).

def R(*shape): return ("float", shape, -2.0, 2.0)           # random in [-2, 2)
def P(*shape): return ("float", shape, 0.5, 2.0)            # random positive: log, sqrt, pow bases
def NZ(*shape): return ("nonzero", shape)                   # |v| in [0.5, 2), random sign: divisors
def A(values): return ("array", np.array(values, dtype=np.float32))   # fixed float values (ties, zeros, bounds)
def B(*shape): return ("bool", shape)
def I(values): return ("index", np.array(values, dtype=np.int64))


def materialize(specs, rng, dtype=np.float32):
    out = []
    for kind, *rest in specs:
        if kind == "float":
            shape, lo, hi = rest
            out.append(rng.uniform(lo, hi, shape).astype(dtype))
        elif kind == "nonzero":
            (shape,) = rest
            out.append((rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], size=shape)).astype(dtype))
        elif kind == "array":
            out.append(rest[0].astype(dtype))
        elif kind == "bool":
            out.append(rng.random(rest[0]) < 0.5)
        else:
            out.append(rest[0])
    return out


def is_diff(a): return a.dtype.kind == "f"


def lz_inputs(arrays, dtype=None):
    return [Tensor(a, dtype=dtype, requires_grad=True) if is_diff(a) else Tensor(a) for a in arrays]


def outputs(out): return list(out) if isinstance(out, (tuple, list)) else [out]


def weights(shapes, rng, dtype=np.float32):
    """A fixed random weight per output, so that the gradients are not trivially uniform."""
    return [rng.uniform(-1.5, 1.5, s).astype(dtype) for s in shapes]


# ---------------------------------------------------------------- lazygrad vs torch

def case(fn, *specs, th=None, tol=None):
    """fn runs on lazygrad tensors (and on torch tensors too, unless th is given)."""
    return fn, th or fn, specs, tol


def ce(**kw): return case(lambda x, t: x.cross_entropy(t, **kw), R(4, 5), I([0, 3, 4, 1]),
                          th=lambda x, t: F.cross_entropy(x, t, **kw))


def mlp(x, w1, b1, w2, b2): return (x @ w1 + b1).relu() @ w2 + b2


def layernorm(x, g, b): return (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True, correction=0) + 1e-5).sqrt() * g + b


TIES_MAX = A([[1, 3, 3], [2, 2, 2]])
TIES_MIN = A([[1, 1, 3], [2, 2, 2]])
WITH_ZEROS = A([[-1.5, 0.0, 2.0, -0.25], [0.0, 0.5, -3.0, 0.0], [1.0, -1.0, 0.0, 0.75]])
AT_BOUNDS = A([[-0.5, 0.5, -1.0, 0.25], [1.5, -0.5, 0.5, 0.0], [-0.75, 0.3, -0.2, 0.5]])

GRAD_CASES = {
    # -- arithmetic, tensor/tensor with broadcasting
    "add": case(lambda a, b: a + b, R(3, 4), R(3, 4)),
    "add_bcast": case(lambda a, b: a + b, R(3, 4), R(4)),
    "sub_bcast": case(lambda a, b: a - b, R(3, 1), R(1, 4)),
    "mul": case(lambda a, b: a * b, R(2, 3, 4), R(2, 3, 4)),
    "mul_bcast": case(lambda a, b: a * b, R(3, 1), R(1, 4)),
    "mul_bcast_3d": case(lambda a, b: a * b, R(2, 3, 4), R(3, 1)),
    "div": case(lambda a, b: a / b, R(3, 4), NZ(3, 4)),
    "div_bcast": case(lambda a, b: a / b, R(4), NZ(3, 1)),
    # divisors whose square overflows float32 while the gradient -a / b^2 does not
    "div_huge_divisor": case(lambda a, b: a / b, A([[3e38, 1.0, -2.0]]), A([[1e20, 2.0, -1e19]])),
    # -- with python scalars, both sides
    "add_scalar": case(lambda x: x + 1.5, R(3, 4)),
    "radd_scalar": case(lambda x: 1.5 + x, R(3, 4)),
    "sub_scalar": case(lambda x: x - 0.5, R(3, 4)),
    "rsub_scalar": case(lambda x: 2 - x, R(3, 4)),
    "mul_scalar": case(lambda x: x * 3, R(3, 4)),
    "rmul_scalar": case(lambda x: -2.5 * x, R(3, 4)),
    "div_scalar": case(lambda x: x / 4, R(3, 4)),
    "rdiv_scalar": case(lambda x: 2 / x, NZ(3, 4)),
    # -- powers
    "pow2": case(lambda x: x ** 2, R(3, 4)),
    "pow3": case(lambda x: x ** 3, R(3, 4)),
    "pow_half": case(lambda x: x ** 0.5, P(3, 4)),
    "pow_neg": case(lambda x: x ** -1.5, P(3, 4)),
    "pow_tensor": case(lambda a, b: a ** b, P(3, 4), R(3, 4)),
    "pow_tensor_bcast": case(lambda a, b: a ** b, P(3, 4), R(4)),
    "rpow_scalar": case(lambda x: 2 ** x, R(3, 4)),
    # -- unary
    "neg": case(lambda x: -x, R(3, 4)),
    "abs": case(lambda x: x.abs(), R(2, 3, 4)),
    "abs_at_zero": case(lambda x: x.abs(), WITH_ZEROS),
    "exp": case(lambda x: x.exp(), R(3, 4)),
    "exp2": case(lambda x: x.exp2(), R(3, 4)),
    "log": case(lambda x: x.log(), P(3, 4)),
    "log2": case(lambda x: x.log2(), P(3, 4)),
    "sqrt": case(lambda x: x.sqrt(), P(3, 4)),
    "rsqrt": case(lambda x: x.rsqrt(), P(3, 4)),
    "reciprocal": case(lambda x: x.reciprocal(), NZ(3, 4)),
    "sin": case(lambda x: x.sin(), R(3, 4)),
    "cos": case(lambda x: x.cos(), R(3, 4)),
    "tanh": case(lambda x: x.tanh(), R(3, 4)),
    "sigmoid": case(lambda x: x.sigmoid(), R(3, 4)),
    "sigmoid_tails": case(lambda x: x.sigmoid(), A([[-100.0, -30.0, -1e-3, 0.0, 1e-3, 30.0, 100.0]])),
    "relu": case(lambda x: x.relu(), R(2, 3, 4)),
    "relu_at_zero": case(lambda x: x.relu(), WITH_ZEROS),
    "gelu": case(lambda x: x.gelu(), R(3, 4), th=lambda x: F.gelu(x)),
    "gelu_tanh": case(lambda x: x.gelu(approximate="tanh"), R(3, 4), th=lambda x: F.gelu(x, approximate="tanh")),
    "silu": case(lambda x: x.silu(), R(3, 4), th=lambda x: F.silu(x)),
    "square": case(lambda x: x.square(), R(3, 4)),
    # -- non-differentiable paths inside a differentiable expression
    "mul_by_comparison": case(lambda x: x * (x > 0.3), R(3, 4)),
    "mul_by_int_cast": case(lambda x: x * (x * 2).int(), R(3, 4)),
    # -- binary min/max, clamp, where, masked_fill, casts
    "maximum": case(lambda a, b: a.maximum(b), R(3, 4), R(3, 4)),
    "maximum_bcast": case(lambda a, b: a.maximum(b), R(3, 4), R(4)),
    "maximum_ties": case(lambda a, b: a.maximum(b), A([[1, 2, 3], [4, 5, 6]]), A([[1, 0, 3], [4, 7, 6]])),
    "minimum": case(lambda a, b: a.minimum(b), R(3, 4), R(3, 1)),
    "minimum_ties": case(lambda a, b: a.minimum(b), A([[1, 2, 3], [4, 5, 6]]), A([[1, 0, 3], [4, 7, 6]])),
    "clamp": case(lambda x: x.clamp(-0.5, 0.5), R(3, 4)),
    "clamp_at_bounds": case(lambda x: x.clamp(-0.5, 0.5), AT_BOUNDS),
    "clamp_min": case(lambda x: x.clamp(min=0.0), WITH_ZEROS),
    "clamp_max": case(lambda x: x.clamp(max=0.5), AT_BOUNDS),
    "where": case(lambda c, x, y: x.where(c, y), B(3, 4), R(3, 4), R(3, 4), th=lambda c, x, y: torch.where(c, x, y)),
    "where_bcast": case(lambda c, x, y: x.where(c, y), B(3, 1), R(3, 4), R(4), th=lambda c, x, y: torch.where(c, x, y)),
    "where_scalar": case(lambda c, x: x.where(c, 0.5), B(3, 4), R(3, 4), th=lambda c, x: torch.where(c, x, 0.5)),
    "masked_fill": case(lambda x, m: x.masked_fill(m, -1.0), R(3, 4), B(3, 4)),
    "masked_fill_bcast": case(lambda x, m: x.masked_fill(m, 2.0), R(2, 3, 4), B(1, 4)),
    "cast_half_float": case(lambda x: x.half().float() * 3, R(3, 4), tol=HALF_TOL),
    # -- reductions
    "sum_dim": case(lambda x: x.sum(1), R(2, 3, 4)),
    "sum_dims": case(lambda x: x.sum((0, 2)), R(2, 3, 4)),
    "sum_all": case(lambda x: x.sum(), R(2, 3, 4)),
    "sum_keepdim": case(lambda x: x.sum(-1, keepdim=True), R(2, 3, 4)),
    "mean_dim": case(lambda x: x.mean(0), R(3, 4)),
    "mean_dims_keepdim": case(lambda x: x.mean((0, 2), keepdim=True), R(2, 3, 4)),
    "mean_all": case(lambda x: x.mean(), R(2, 3, 4)),
    "max_dim": case(lambda x: x.amax(1), R(2, 3, 4), th=lambda x: torch.amax(x, 1)),
    "max_dims_keepdim": case(lambda x: x.amax((0, 2), keepdim=True), R(2, 3, 4),
                             th=lambda x: torch.amax(x, (0, 2), keepdim=True)),
    "max_all": case(lambda x: x.max(), R(3, 4), th=lambda x: torch.amax(x)),
    "max_ties": case(lambda x: x.amax(1), TIES_MAX, th=lambda x: torch.amax(x, 1)),
    "max_ties_keepdim": case(lambda x: x.amax(1, keepdim=True), TIES_MAX, th=lambda x: torch.amax(x, 1, keepdim=True)),
    "max_ties_all": case(lambda x: x.max(), TIES_MAX, th=lambda x: torch.amax(x)),
    "max_ties_dim0": case(lambda x: x.amax(0), A([[1, 3, 2], [1, 3, 5], [0, 3, 5]]), th=lambda x: torch.amax(x, 0)),
    "min_dim": case(lambda x: x.min(-1).values, R(2, 3, 4), th=lambda x: torch.amin(x, -1)),
    "min_dims_keepdim": case(lambda x: x.amin((1, 2), keepdim=True), R(2, 3, 4),
                             th=lambda x: torch.amin(x, (1, 2), keepdim=True)),
    "min_all": case(lambda x: x.min(), R(3, 4), th=lambda x: torch.amin(x)),
    "min_ties": case(lambda x: x.min(1).values, TIES_MIN, th=lambda x: torch.amin(x, 1)),
    "min_ties_all": case(lambda x: x.min(), A([[1, 3, 1], [2, 1, 2]]), th=lambda x: torch.amin(x)),
    "var_dim": case(lambda x: x.var(1), R(3, 4)),
    "var_all": case(lambda x: x.var(), R(2, 3, 4)),
    "var_correction0": case(lambda x: x.var((0, 2), correction=0, keepdim=True), R(2, 3, 4)),
    "std_dim": case(lambda x: x.std(-1), R(3, 4)),
    "std_all": case(lambda x: x.std(), R(3, 4)),
    "logsumexp_dim": case(lambda x: x.logsumexp(1), R(3, 4)),
    "logsumexp_dims_keepdim": case(lambda x: x.logsumexp((0, 2), keepdim=True), R(2, 3, 4)),
    "softmax_last": case(lambda x: x.softmax(-1), R(3, 4)),
    "softmax_dim0": case(lambda x: x.softmax(0), R(2, 3, 4)),
    "log_softmax": case(lambda x: x.log_softmax(1), R(3, 4)),
    "log_softmax_3d": case(lambda x: x.log_softmax(-1), R(2, 3, 4)),
    # -- movement
    "reshape": case(lambda x: x.reshape(2, 6), R(3, 4)),
    "reshape_infer": case(lambda x: x.reshape(-1, 3), R(2, 3, 4)),
    "permute": case(lambda x: x.permute(2, 0, 1), R(2, 3, 4)),
    "transpose": case(lambda x: x.transpose(0, 2), R(2, 3, 4)),
    "T": case(lambda x: x.T, R(3, 4)),
    "expand": case(lambda x: x.expand(3, 4), R(3, 1)),
    "expand_new_dims": case(lambda x: x.expand(2, 3, 4), R(4)),
    "squeeze_dim": case(lambda x: x.squeeze(1), R(3, 1, 4)),
    "squeeze_all": case(lambda x: x.squeeze(), R(1, 3, 1, 4)),
    "unsqueeze": case(lambda x: x.unsqueeze(1), R(3, 4)),
    "flatten": case(lambda x: x.flatten(), R(2, 3, 4)),
    "flatten_from1": case(lambda x: x.flatten(1), R(2, 3, 4)),
    "pad": case(lambda x: x.pad((1, 2)), R(3, 4), th=lambda x: F.pad(x, (1, 2))),
    "pad_2d": case(lambda x: x.pad((1, 0, 2, 1)), R(2, 3, 4), th=lambda x: F.pad(x, (1, 0, 2, 1))),
    "pad_negative": case(lambda x: x.pad((-1, 1, 0, -2)), R(3, 4), th=lambda x: F.pad(x, (-1, 1, 0, -2))),
    "pad_value": case(lambda x: x.pad((1, 1, 2, 0), value=2.5), R(3, 4), th=lambda x: F.pad(x, (1, 1, 2, 0), value=2.5)),
    "flip": case(lambda x: x.flip(0), R(3, 4)),
    "flip_dims": case(lambda x: x.flip((0, 2)), R(2, 3, 4)),
    "contiguous": case(lambda x: x.T.contiguous() * 2, R(3, 4)),
    "cat": case(lambda a, b: Tensor.cat([a, b], 0), R(2, 4), R(3, 4), th=lambda a, b: torch.cat([a, b], 0)),
    "cat_dim1_three": case(lambda a, b, c: Tensor.cat([a, b, c], 1), R(3, 1), R(3, 4), R(3, 2),
                           th=lambda a, b, c: torch.cat([a, b, c], 1)),
    "cat_same_twice": case(lambda a: Tensor.cat([a, a * 2], -1), R(3, 4), th=lambda a: torch.cat([a, a * 2], -1)),
    "stack": case(lambda a, b: Tensor.stack([a, b]), R(3, 4), R(3, 4), th=lambda a, b: torch.stack([a, b])),
    "stack_dim1": case(lambda a, b, c: Tensor.stack([a, b, c], 1), R(3, 4), R(3, 4), R(3, 4),
                       th=lambda a, b, c: torch.stack([a, b, c], 1)),
    "split": case(lambda x: x.split(2, 1), R(3, 5)),
    "split_sections": case(lambda x: x.split([1, 3], 1), R(2, 4, 3)),
    "split_partial_use": case(lambda x: x.split(2, 0)[1], R(5, 3)),
    "chunk": case(lambda x: x.chunk(2, 0), R(3, 4)),
    "repeat": case(lambda x: x.repeat(2, 3), R(3, 4)),
    "repeat_new_dims": case(lambda x: x.repeat(2, 1, 2), R(3, 4)),
    # -- indexing
    "index_int": case(lambda x: x[1], R(3, 4)),
    "index_ints_negative": case(lambda x: x[-1, 2], R(3, 4)),
    "index_slice_steps": case(lambda x: x[::2, 1::3], R(5, 7)),
    "index_slice_bounds": case(lambda x: x[1:3, -3:], R(4, 5)),
    "index_none_ellipsis": case(lambda x: x[None, ..., 1], R(2, 3, 4)),
    "index_mixed": case(lambda x: x[0, None, 1:, ::2], R(2, 3, 4)),
    "index_tensor": case(lambda x, i: x[i], R(4, 3), I([2, 0, 2, 3, 2])),
    "index_tensor_negative": case(lambda x, i: x[i], R(4, 3), I([-1, 0, -1])),
    "index_tensor_dim1": case(lambda x, i: x[:, i], R(3, 4), I([3, 3, 0])),
    "index_tensor_2d": case(lambda x, i: x[i], R(4, 3), I([[0, 1], [1, 3]])),
    "index_two_tensors": case(lambda x, i, j: x[i, j], R(3, 4), I([0, 2, 2]), I([1, 3, 1])),
    "index_tensor_and_slice": case(lambda x, i: x[1:, i], R(2, 3, 4), I([0, 2, 0])),
    "gather_dim1": case(lambda x, i: x.gather(1, i), R(3, 4), I([[0, 3], [1, 1], [2, 0]])),
    "gather_dim0": case(lambda x, i: x.gather(0, i), R(3, 4), I([[2, 0, 1, 2], [2, 2, 0, 1]])),
    "gather_smaller_index": case(lambda x, i: x.gather(1, i), R(3, 4), I([[3, 0], [1, 1]])),
    "gather_3d": case(lambda x, i: x.gather(-1, i), R(2, 3, 4), I([[[0, 3, 3]] * 3, [[1, 2, 1]] * 3])),
    # -- linear algebra
    "matmul_1d_1d": case(lambda a, b: a @ b, R(4), R(4)),
    "matmul_1d_2d": case(lambda a, b: a @ b, R(4), R(4, 5)),
    "matmul_2d_1d": case(lambda a, b: a @ b, R(3, 4), R(4)),
    "matmul_2d": case(lambda a, b: a @ b, R(3, 4), R(4, 5)),
    "matmul_batched": case(lambda a, b: a @ b, R(2, 3, 4), R(2, 4, 5)),
    "matmul_bcast_batch": case(lambda a, b: a @ b, R(2, 1, 3, 4), R(3, 4, 5)),
    "matmul_batched_2d": case(lambda a, b: a @ b, R(2, 3, 4), R(4, 5)),
    "matmul_transposed": case(lambda a, b: a.T @ b.T, R(4, 3), R(5, 4)),
    "linear": case(lambda x, w, b: x.linear(w, b), R(4, 3), R(5, 3), R(5), th=lambda x, w, b: F.linear(x, w, b)),
    "tril": case(lambda x: x.tril(), R(4, 4)),
    "tril_batched_neg": case(lambda x: x.tril(-1), R(2, 3, 4)),
    "triu": case(lambda x: x.triu(), R(3, 4)),
    "triu_diag1": case(lambda x: x.triu(1), R(2, 4, 3)),
    # -- losses and composites
    "cross_entropy_mean": ce(),
    "cross_entropy_sum": ce(reduction="sum"),
    "cross_entropy_none": ce(reduction="none"),
    "cross_entropy_ignore_index": case(lambda x, t: x.cross_entropy(t, ignore_index=1), R(4, 5), I([1, 3, 1, 0]),
                                       th=lambda x, t: F.cross_entropy(x, t, ignore_index=1)),
    "cross_entropy_ignore_default": case(lambda x, t: x.cross_entropy(t), R(4, 5), I([2, -100, 4, -100]),
                                         th=lambda x, t: F.cross_entropy(x, t)),
    "cross_entropy_smoothing": ce(label_smoothing=0.1),
    "cross_entropy_smoothing_sum": ce(label_smoothing=0.25, reduction="sum"),
    "cross_entropy_smoothing_ignore": case(lambda x, t: x.cross_entropy(t, label_smoothing=0.2, ignore_index=0),
                                           R(4, 5), I([0, 3, 4, 0]),
                                           th=lambda x, t: F.cross_entropy(x, t, label_smoothing=0.2, ignore_index=0)),
    "cross_entropy_spatial": case(lambda x, t: x.cross_entropy(t), R(2, 5, 3), I([[0, 1, 4], [2, 2, 3]]),
                                  th=lambda x, t: F.cross_entropy(x, t)),
    "layernorm": case(layernorm, R(3, 4), R(4), R(4), th=lambda x, g, b: F.layer_norm(x, (4,), g, b, eps=1e-5)),
    "mlp": case(mlp, R(4, 3), R(3, 5), R(5), R(5, 2), R(2)),
    "mlp_gelu_softmax": case(lambda x, w1, w2: x.linear(w1).gelu().linear(w2).log_softmax(-1), R(4, 3), R(5, 3), R(2, 5),
                             th=lambda x, w1, w2: F.log_softmax(F.linear(F.gelu(F.linear(x, w1)), w2), -1)),
}

# How the lazygrad side gets its gradients ("backward" for everything else): loss.gradient(*inputs), which must
# leave .grad alone, or out.backward(gradient=w) on the non-scalar output.
VIA_GRADIENT = {"mul_bcast", "pow_tensor", "maximum_ties", "max_ties", "softmax_last", "pad_value", "index_tensor",
                "gather_dim1", "matmul_2d", "cross_entropy_mean", "mlp"}
VIA_GRAD_ARG = {"add_bcast", "div", "where", "sum_dims", "logsumexp_dim", "cat", "index_two_tensors", "matmul_batched",
                "layernorm"}
assert VIA_GRADIENT | VIA_GRAD_ARG <= set(GRAD_CASES)


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_grad_vs_torch(name):
    fn, tfn, specs, tol = GRAD_CASES[name]
    rng = np.random.default_rng(0)
    arrays = materialize(specs, rng)
    lz_in = lz_inputs(arrays)
    th_in = [torch.tensor(a, requires_grad=is_diff(a)) for a in arrays]
    lz_out, th_out = outputs(fn(*lz_in)), outputs(tfn(*th_in))
    assert len(lz_out) == len(th_out), f"{len(lz_out)} outputs != torch {len(th_out)}"
    for lz, th in zip(lz_out, th_out):
        assert_same(lz, th.detach(), **(tol or FWD_TOL))
        assert lz.requires_grad, "an op of an input that requires grad must require grad"
    ws = weights([tuple(t.shape) for t in th_out], rng)
    sum(((t * torch.tensor(w)).sum() for t, w in zip(th_out, ws))).backward()

    leaves = [t for t in lz_in if t.requires_grad]
    if name in VIA_GRAD_ARG:
        (out,) = lz_out
        out.backward(gradient=Tensor(ws[0]))
        grads = [t.grad for t in leaves]
    else:
        loss = sum((o * Tensor(w)).sum() for o, w in zip(lz_out, ws))
        if name in VIA_GRADIENT:
            grads = loss.gradient(*leaves)
            assert all(t.grad is None for t in leaves), "gradient() must not write .grad"
        else:
            loss.backward()
            grads = [t.grad for t in leaves]
    th_leaves = [t for t in th_in if t.requires_grad]
    assert len(grads) == len(th_leaves)
    for k, (g, t) in enumerate(zip(grads, th_leaves)):
        assert g is not None, f"input {k} got no gradient"
        want = t.grad if t.grad is not None else torch.zeros_like(t)
        try:
            assert_same(g, want, **(tol or GRAD_TOL))
        except AssertionError as e:
            raise AssertionError(f"gradient of input {k} (shape {tuple(t.shape)}): {e}") from None


# ---------------------------------------------------------------- float64 central differences

NUMERIC = {  # name: (fn, input specs); float inputs are float64 leaves
    "mul_sum": (lambda a, b: (a * b).sum(1), [R(2, 3), R(1, 3)]),
    "exp": (lambda x: x.exp(), [R(2, 3)]),
    "softmax": (lambda x: x.softmax(-1), [R(2, 4)]),
    "matmul": (lambda a, b: a @ b, [R(2, 3), R(3, 2)]),
    "pad_shrink": (lambda x: x.pad((1, -1, -1, 2)).shrink(((1, 4), (0, 3))), [R(3, 4)]),
    "gather_index": (lambda x, i, j: x.gather(1, i) + x[j, 1:3], [R(3, 4), I([[0, 3], [1, 1], [3, 2]]), I([2, 2, 0])]),
    "logsumexp": (lambda x: x.logsumexp(1), [R(3, 4)]),
    "cross_entropy": (lambda x, t: x.cross_entropy(t, label_smoothing=0.1), [R(3, 4), I([0, 3, 1])]),
}


@pytest.mark.parametrize("name", list(NUMERIC))
def test_grad_numeric_float64(name):
    fn, specs = NUMERIC[name]
    rng = np.random.default_rng(1)
    arrays = materialize(specs, rng, dtype=np.float64)
    lz_in = lz_inputs(arrays, dtype=lazygrad.float64)
    out = fn(*lz_in)
    assert dtype_name(out.dtype) == "float64"
    (w,) = weights([out.shape], rng, np.float64)
    (out * Tensor(w, dtype=lazygrad.float64)).sum().backward()

    def loss(vals):
        with lazygrad.no_grad():
            o = fn(*[Tensor(v, dtype=lazygrad.float64) if is_diff(v) else Tensor(v) for v in vals])
            return float((o * Tensor(w, dtype=lazygrad.float64)).sum().item())

    eps = 1e-6
    for k, (a, t) in enumerate(zip(arrays, lz_in)):
        if not is_diff(a):
            continue
        numeric = np.zeros_like(a)
        for pos in np.ndindex(a.shape):
            vals = {}
            for sign in (1, -1):
                moved = [v.copy() for v in arrays]
                moved[k][pos] += sign * eps
                vals[sign] = loss(moved)
            numeric[pos] = (vals[1] - vals[-1]) / (2 * eps)
        assert t.grad is not None, f"input {k} got no gradient"
        assert dtype_name(t.grad.dtype) == "float64"
        np.testing.assert_allclose(t.grad.numpy(), numeric, rtol=1e-5, atol=1e-7, err_msg=f"input {k}")


# ---------------------------------------------------------------- autograd semantics

def leaf(*shape, seed=0):
    return Tensor(np.random.default_rng(seed).uniform(-2, 2, shape).astype(np.float32), requires_grad=True)


def close(t, want, **kw):
    np.testing.assert_allclose(t.numpy(), np.asarray(want, dtype=np.float32), **(kw or GRAD_TOL))


def test_backward_accumulates_and_grad_none_resets():
    x = leaf(2, 3)
    xv = x.numpy()
    (x * 3).sum().backward()
    close(x.grad, np.full((2, 3), 3.0))
    (x * x).sum().backward()            # adds into .grad; x used twice gives 2x
    close(x.grad, 3 + 2 * xv)
    x.grad = None
    (x * x * x).sum().backward()
    close(x.grad, 3 * xv ** 2)
    assert tuple(x.grad.shape) == (2, 3) and dtype_name(x.grad.dtype) == "float32"


def test_gradient_leaves_grad_untouched():
    x, y = leaf(3, 4), leaf(4, seed=1)
    xv, yv = x.numpy(), y.numpy()
    loss = (x * y).sum()
    gx, gy = loss.gradient(x, y)
    assert x.grad is None and y.grad is None
    close(gx, np.broadcast_to(yv, (3, 4)))
    close(gy, xv.sum(0))
    h = x * 2                                       # a non-leaf target, like torch.autograd.grad
    gh, gx = (h * h).sum().gradient(h, x)
    close(gh, 4 * xv)
    close(gx, 8 * xv)
    assert x.grad is None
    x.grad = Tensor(np.ones((3, 4), np.float32))    # an existing .grad is not touched either
    (gx2,) = (x * x).sum().gradient(x, gradient=Tensor(np.float32(2.0)))
    close(gx2, 4 * xv)
    close(x.grad, np.ones((3, 4)))


DETACH = {  # name: (loss of x, expected x.grad from the numpy value of x)
    "leaf": (lambda x: (x.detach() * x).sum(), lambda v: v),
    "non_leaf": (lambda x: ((x * 2).detach() * x + x * 2).sum(), lambda v: 2 * v + 2),
    "realized_non_leaf": (lambda x: ((x * 2).realize().detach() * x).sum(), lambda v: 2 * v),
    "only_path": (lambda x: (x.detach() * 3).sum() + (x * 2).sum(), lambda v: np.full(v.shape, 2.0)),
}


@pytest.mark.parametrize("case", list(DETACH))
def test_detach_stops_gradient(case):
    loss_fn, want = DETACH[case]
    x = leaf(3, 4)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), x.numpy())
    loss_fn(x).backward()
    close(x.grad, want(x.numpy().astype(np.float64)))


def test_no_grad_context():
    x = leaf(3, 4)
    with lazygrad.no_grad():
        y = x * 2 + 1
        assert not y.requires_grad
        with lazygrad.no_grad():
            pass
        assert not (x.exp()).requires_grad     # a nested no_grad leaves grad mode off
    z = x * 2
    assert z.requires_grad and not z.is_leaf
    np.testing.assert_allclose(y.numpy(), x.numpy() * 2 + 1, rtol=1e-6)


def test_no_grad_decorator():
    @lazygrad.no_grad()
    def double(t):
        return t * 2

    x = leaf(3, 4)
    y = double(x)
    assert not y.requires_grad
    assert (x * 2).requires_grad       # grad mode is back on after the call
    np.testing.assert_allclose(y.numpy(), x.numpy() * 2)


def test_no_grad_restored_after_exception():
    x = leaf(2)
    with pytest.raises(ZeroDivisionError):
        with lazygrad.no_grad():
            1 / 0
    assert (x * 2).requires_grad


def test_requires_grad_propagation():
    x = leaf(3, 4)
    c = Tensor(np.ones((3, 4), np.float32))
    assert x.requires_grad and x.is_leaf
    assert not c.requires_grad and c.is_leaf
    for y in (x + c, c * x, x.sum(), x.reshape(12), x[1], x.exp(), Tensor.cat([c, x]), x.where(c > 0, c)):
        assert y.requires_grad and not y.is_leaf
    assert not (c + c).requires_grad
    with lazygrad.no_grad():
        assert not (x + c).requires_grad and not x.sum().requires_grad
    assert c.requires_grad_() is c and c.requires_grad and c.is_leaf
    assert Tensor(np.ones(2, np.float32), requires_grad=True).requires_grad
    for y in (x > 0, x == c, (x * 2).int()):   # bool/int results never require grad (torch)
        assert not y.requires_grad, f"a {dtype_name(y.dtype)} result must not require grad"


def test_only_leaves_that_require_grad_get_grad():
    x, unused = leaf(3, 4), leaf(2, seed=1)
    c = Tensor(np.ones((3, 4), np.float32))
    h = x * 2
    (h * 3 + c).sum().backward()
    assert h.grad is None                # non-leaf
    assert c.grad is None                # does not require grad
    assert unused.grad is None           # not in the graph
    close(x.grad, np.full((3, 4), 6.0))


def test_grad_through_realized_intermediate():
    x = leaf(3, 4)
    h = x * 2
    h.realize()
    (h * h).sum().backward()
    close(x.grad, 8 * x.numpy())
    x.grad = None
    h2 = x.exp()
    h2.numpy()                           # numpy() realizes too
    (h2 * x).sum().backward()
    xv = x.numpy().astype(np.float64)
    close(x.grad, np.exp(xv) * (xv + 1))


def test_backward_twice_on_realized_loss():
    """Realizing the loss or a gradient must keep the graph that a second backward (retain_graph) needs."""
    x = leaf(3, 4)
    xv = x.numpy().astype(np.float64)
    loss = (x.exp() * x).sum()
    np.testing.assert_allclose(loss.item(), (np.exp(xv) * xv).sum(), rtol=1e-5)
    loss.backward(retain_graph=True)
    close(x.grad, np.exp(xv) * (xv + 1))
    loss.backward()
    close(x.grad, 2 * np.exp(xv) * (xv + 1))


def test_assign_under_no_grad_updates_leaf():
    p = leaf(2, 3)
    pv = p.numpy()
    with lazygrad.no_grad():
        p.assign(p * 2)
        p.realize()
    np.testing.assert_allclose(p.numpy(), pv * 2, rtol=1e-6)
    assert p.requires_grad and p.is_leaf


def test_sgd_steps():
    """The optimizer pattern: backward, update under no_grad, reset .grad, backward again at the new value."""
    p = leaf(2, 3)
    want = p.numpy().astype(np.float64)
    for _ in range(3):
        (p * p).sum().backward()
        close(p.grad, 2 * want)
        with lazygrad.no_grad():
            p.assign(p - 0.25 * p.grad)
        p.realize()
        p.grad = None
        want = want - 0.25 * 2 * want
        close(p, want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- errors

def ones(*shape, requires_grad=False):
    return Tensor(np.ones(shape, np.float32), requires_grad=requires_grad)


def assign_leaf():
    p = ones(2, 3, requires_grad=True)
    p.assign(p - 1)


def int_requires_grad_():
    Tensor(np.zeros((2, 3), np.int32)).requires_grad_()


ERRORS = {  # id: (build fn, exception types, substrings the message must contain)
    "backward_non_scalar": (lambda: (ones(2, 3, requires_grad=True) * 2).backward(), RuntimeError, ["(2, 3)"]),
    "gradient_non_scalar": (lambda: (ones(2, 3, requires_grad=True) * 2).gradient(ones(2, 3)), RuntimeError, ["(2, 3)"]),
    "backward_no_requires_grad": (lambda: (ones(2, 3) * 2).backward(), RuntimeError, ["(2, 3)", "require"]),
    "backward_scalar_no_requires_grad": (lambda: (ones(2, 3) * 2).sum().backward(), RuntimeError, ["require"]),
    "int_requires_grad": (lambda: Tensor([1, 2], requires_grad=True), RuntimeError, ["(2,)"]),
    "int_requires_grad_": (int_requires_grad_, RuntimeError, ["(2, 3)"]),
    "assign_leaf_requires_grad": (assign_leaf, RuntimeError, ["(2, 3)"]),
    "backward_gradient_shape": (lambda: (ones(2, 3, requires_grad=True) * 2).backward(gradient=ones(3, 2)),
                                (RuntimeError, ValueError), ["(2, 3)", "(3, 2)"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_autograd_errors(case):
    build, exc, parts = ERRORS[case]
    with pytest.raises(exc) as excinfo:
        build()
    msg = str(excinfo.value)
    for part in parts:
        assert part in msg, f"{part!r} missing from: {msg!r}"
