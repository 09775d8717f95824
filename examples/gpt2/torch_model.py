"""The same GPT-2 in PyTorch, parameter for parameter (names as in model.py): the oracle for the tests and the
baseline of bench/gpt2_train.py."""
import math
import torch
import torch.nn.functional as F


class TorchGPT(torch.nn.Module):
  """`attention`: "sdpa" (torch's fused scaled_dot_product_attention, flash on a GPU) or "math" (the T x T scores
  materialized, softmax, then the product with v, as lazygrad computes it today)."""
  def __init__(self, cfg, attention: str = "sdpa"):
    super().__init__()
    if attention not in ("sdpa", "math"): raise ValueError(f"attention must be 'sdpa' or 'math', got {attention!r}")
    self.cfg, self.attention = cfg, attention
    C, V = cfg.n_embd, cfg.vocab_size
    self.params = torch.nn.ParameterDict()
    def p(name, *shape): self.params[name.replace(".", "__")] = torch.nn.Parameter(torch.zeros(*shape))
    p("wte.weight", V, C); p("wpe.weight", cfg.block_size, C)
    for i in range(cfg.n_layer):
      for ln in ("ln_1", "ln_2"): p(f"h.{i}.{ln}.weight", C); p(f"h.{i}.{ln}.bias", C)
      p(f"h.{i}.attn.c_attn.weight", 3 * C, C); p(f"h.{i}.attn.c_attn.bias", 3 * C)
      p(f"h.{i}.attn.c_proj.weight", C, C); p(f"h.{i}.attn.c_proj.bias", C)
      p(f"h.{i}.mlp.c_fc.weight", 4 * C, C); p(f"h.{i}.mlp.c_fc.bias", 4 * C)
      p(f"h.{i}.mlp.c_proj.weight", C, 4 * C); p(f"h.{i}.mlp.c_proj.bias", C)
    p("ln_f.weight", C); p("ln_f.bias", C)

  def w(self, name): return self.params[name.replace(".", "__")]

  @classmethod
  def from_lazygrad(cls, model):
    ref = cls(model.config)
    with torch.no_grad():
      for name, t in model.state_dict().items():
        if name != "lm_head.weight": ref.w(name).copy_(torch.tensor(t.numpy()))
    return ref

  def forward(self, idx, targets=None):
    cfg, w = self.cfg, self.w
    B, T = idx.shape
    C, H = cfg.n_embd, cfg.n_head
    x = w("wte.weight")[idx] + w("wpe.weight")[torch.arange(T)]
    for i in range(cfg.n_layer):
      h = F.layer_norm(x, (C,), w(f"h.{i}.ln_1.weight"), w(f"h.{i}.ln_1.bias"))
      q, k, v = F.linear(h, w(f"h.{i}.attn.c_attn.weight"), w(f"h.{i}.attn.c_attn.bias")).split(C, dim=2)
      q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
      y = self._attend(q, k, v).transpose(1, 2).reshape(B, T, C)
      x = x + F.linear(y, w(f"h.{i}.attn.c_proj.weight"), w(f"h.{i}.attn.c_proj.bias"))
      h = F.layer_norm(x, (C,), w(f"h.{i}.ln_2.weight"), w(f"h.{i}.ln_2.bias"))
      h = F.gelu(F.linear(h, w(f"h.{i}.mlp.c_fc.weight"), w(f"h.{i}.mlp.c_fc.bias")), approximate="tanh")
      x = x + F.linear(h, w(f"h.{i}.mlp.c_proj.weight"), w(f"h.{i}.mlp.c_proj.bias"))
    x = F.layer_norm(x, (C,), w("ln_f.weight"), w("ln_f.bias"))
    logits = x @ w("wte.weight").T
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T), ignore_index=-1)
    return logits, loss

  def _attend(self, q, k, v):
    if self.attention == "sdpa": return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v
