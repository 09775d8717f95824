"""examples/gpt2/train.py as a user runs it: bad options, data and checkpoints end in a one-line message (SystemExit),
never a traceback from inside lazygrad; --resume takes the model from the checkpoint and continues exactly."""
import contextlib, io, json, math, shutil, sys, tempfile
from pathlib import Path
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from lazygrad.nn import load_safetensors, save_safetensors

sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "gpt2"))
import train  # noqa: E402

VOCAB = "abcdefghij \n"
TINY = ["--config", "tiny", "--n-layer", "1", "--n-head", "2", "--n-embd", "8", "--seq", "4", "--batch", "2",
        "--eval-interval", "1", "--eval-iters", "1", "--log-interval", "1", "--device", "numpy"]


def write_dataset(folder: Path, n_train=500, n_val=50, meta=True, high=len(VOCAB)) -> Path:
  """train.bin and val.bin of uint16 ids (as prepare.py writes them) and a character vocabulary in meta.json."""
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  rng.integers(0, high, n_train).astype(np.uint16).tofile(folder / "train.bin")
  rng.integers(0, high, n_val).astype(np.uint16).tofile(folder / "val.bin")
  if meta: (folder / "meta.json").write_text(json.dumps({"encoding": "char", "vocab_size": len(VOCAB), "itos": list(VOCAB)}))
  return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path: return write_dataset(tmp_path_factory.mktemp("data"))


def run(argv) -> tuple[list | None, str]:
  """(losses, "") when train.py trains, (None, its message) when it exits; anything else propagates."""
  err = io.StringIO()
  try:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err): return train.main(argv), ""
  except SystemExit as e:
    msg = e.code if isinstance(e.code, str) else err.getvalue()   # argparse: code 2, the message on stderr
    assert e.code != 0 and "error: " in msg, f"SystemExit({e.code!r}) without a message for {argv}"
    return None, msg.strip().splitlines()[-1]


def error_of(argv) -> str:
  losses, msg = run(argv)
  assert losses is None, f"{argv} trained instead of stopping with an error"
  return msg


@pytest.mark.parametrize("option, value, expect", [
  ("--batch", "0", "--batch must be >= 1, got 0"), ("--batch", "-3", "--batch must be >= 1, got -3"),
  ("--eval-interval", "0", "--eval-interval must be >= 1"), ("--log-interval", "0", "--log-interval must be >= 1"),
  ("--eval-iters", "0", "--eval-iters must be >= 1"), ("--steps", "-1", "--steps must be >= 0, got -1"),
  ("--seq", "0", "--seq must be >= 1"), ("--n-layer", "0", "--n-layer must be >= 1"),
  ("--dropout", "1", "--dropout must be in [0, 1), got 1.0"), ("--dropout", "-0.1", "--dropout must be in [0, 1)"),
  ("--dropout", "nan", "--dropout must be in [0, 1), got nan"),
  ("--grad-clip", "-1", "--grad-clip must be >= 0, got -1.0"), ("--lr", "-0.1", "--lr must be >= 0"),
  ("--lr", "inf", "--lr must be a finite number, got inf"), ("--min-lr", "-0.001", "--min-lr must be >= 0"),
  ("--warmup", "-1", "--warmup must be >= 0"), ("--weight-decay", "-0.1", "--weight-decay must be >= 0"),
  ("--time-limit", "0", "--time-limit must be a positive number of seconds, got 0.0"),
  ("--time-limit", "-5", "--time-limit must be a positive"), ("--seed", "-1", "--seed must be >= 0, got -1"),
])
def test_bad_option_values(data, option, value, expect):
  assert expect in error_of(["--data", str(data), "--steps", "1"] + TINY + [option, value])


def test_bad_data_folder(tmp_path):
  assert f"--data {tmp_path / 'nope'}: no such folder" in error_of(["--data", str(tmp_path / "nope")] + TINY)
  (tmp_path / "half").mkdir()
  (tmp_path / "half" / "train.bin").write_bytes(b"\0\0" * 100)
  assert "no val.bin in it" in error_of(["--data", str(tmp_path / "half")] + TINY)
  (tmp_path / "half" / "val.bin").write_bytes(b"\0\0\0")
  assert "val.bin has 3 bytes, not a non-empty array of uint16 token ids" in error_of(["--data", str(tmp_path / "half")] + TINY)


def test_head_count_must_divide_the_width(data):
  msg = error_of(["--data", str(data)] + TINY + ["--n-embd", "64", "--n-head", "5"])
  assert "n_embd 64 is not divisible by n_head 5" in msg


def test_sequence_length_must_fit_the_block_and_the_data(data):
  assert "--seq 100000 is longer than the model's block size 64" in error_of(["--data", str(data)] + TINY + ["--seq", "100000"])
  # val.bin has 50 tokens: windows of 48 + 1 fit, of 49 + 1 do not
  msg = error_of(["--data", str(data)] + TINY + ["--seq", "49"])
  assert "sequence length 49 leaves no window" in msg and "val.bin, which has 50 tokens; use --seq 48 or less" in msg
  assert run(["--data", str(data), "--steps", "1"] + TINY + ["--seq", "48"])[0]


def test_vocabulary_must_cover_the_data(data, tmp_path):
  msg = error_of(["--data", str(data)] + TINY + ["--vocab-size", "10"])
  assert "--vocab-size 10 is smaller than the data's vocabulary of 12 (meta.json)" in msg
  # without meta.json the data's vocabulary is its largest id + 1; the default model vocabulary is GPT-2's
  big = write_dataset(tmp_path / "ids", meta=False, high=60000)
  top = 1 + max(int(np.fromfile(big / f, np.uint16).max()) for f in ("train.bin", "val.bin"))
  msg = error_of(["--data", str(big)] + TINY)
  assert f"the model's vocabulary of 50304 (GPT-2's) is smaller than the data's {top}" in msg
  assert run(["--data", str(big), "--steps", "1"] + TINY + ["--vocab-size", str(top)])[0]


def test_memory_for_absurd_sizes_is_refused_before_allocating(data):
  msg = error_of(["--data", str(data)] + TINY + ["--batch", str(10**12)])
  assert "batch 1000000000000 x seq 4" in msg and "lower --batch, --seq or the model's size" in msg


def ckpt_args(data, ckpt, steps, *extra):
  return ["--data", str(data), "--steps", str(steps), "--ckpt-dir", str(ckpt), "--warmup", "1"] + TINY + list(extra)


def test_resume_takes_the_model_from_the_checkpoint(data, tmp_path):
  run(ckpt_args(data, tmp_path, 2, "--n-layer", "2"))
  resume = ["--data", str(data), "--steps", "3", "--ckpt-dir", str(tmp_path), "--resume", "--seq", "4", "--batch", "2",
            "--device", "numpy"]
  for given, expect in [(["--n-layer", "1"], "--n-layer 1 gives n_layer 1, but the checkpoint"),
                        (["--n-layer", "3"], "--n-layer 3 gives n_layer 3"),
                        (["--n-embd", "16"], "--n-embd 16 gives n_embd 16"),
                        (["--n-head", "4"], "--n-head 4 gives n_head 4"),
                        (["--vocab-size", "100"], "--vocab-size 100 gives vocab_size 128"),
                        (["--config", "mini"], "--config mini gives ")]:
    msg = error_of(resume + given)
    assert expect in msg and str(tmp_path / "ckpt.safetensors") in msg and f"leave {given[0]} out" in msg
  trainer = train.Trainer(train.parse_args(resume))
  assert len(trainer.model.h) == 2 and trainer.step == 2


def test_resume_continues_exactly_and_in_place(data, tmp_path):
  full, _ = run(ckpt_args(data, tmp_path / "a", 5))
  first, _ = run(ckpt_args(data, tmp_path / "b", 2))
  trainer = train.Trainer(train.parse_args(ckpt_args(data, tmp_path / "b", 5, "--resume")))
  fresh = train.Trainer(train.parse_args(ckpt_args(data, tmp_path / "c", 5)))
  # the loaded values went into the tensors the model and optimizers were built with (a jit capture keeps them)
  before = [t.node.buffer for t in fresh.state().values()]
  fresh.load(*load_safetensors(tmp_path / "b" / "ckpt.safetensors"))
  assert all(t.node.buffer is b for t, b in zip(fresh.state().values(), before))
  with contextlib.redirect_stdout(io.StringIO()): rest = trainer.run()
  np.testing.assert_allclose(first + rest, full, rtol=1e-6)


def test_optimizer_state_is_saved_by_parameter_name(data, tmp_path):
  run(ckpt_args(data, tmp_path, 1))
  tensors, meta = load_safetensors(tmp_path / "ckpt.safetensors")
  assert tensors["opt.m.wte.weight"].shape == tensors["model.wte.weight"].shape == (64, 8)
  assert tensors["opt.v.h.0.attn.c_attn.bias"].shape == (24,) and int(meta["step"]) == 1
  del tensors["opt.v.h.0.mlp.c_fc.weight"]
  tensors["opt.m.ln_f.bias"] = np.zeros(3, np.float32)
  save_safetensors(tensors, tmp_path / "ckpt.safetensors", meta)
  msg = error_of(ckpt_args(data, tmp_path, 2, "--resume"))
  assert "1 tensors missing (opt.v.h.0.mlp.c_fc.weight)" in msg and "wrong shapes: opt.m.ln_f.bias (3,)" in msg


def test_corrupted_or_missing_checkpoint(data, tmp_path):
  assert "--resume needs --ckpt-dir" in error_of(["--data", str(data), "--resume"] + TINY)
  assert "no checkpoint at" in error_of(ckpt_args(data, tmp_path, 2, "--resume"))
  run(ckpt_args(data, tmp_path, 1))
  ckpt = tmp_path / "ckpt.safetensors"
  ckpt.write_bytes(ckpt.read_bytes()[:-10])
  assert f"--resume: {ckpt}: tensor" in error_of(ckpt_args(data, tmp_path, 2, "--resume"))


@pytest.fixture(scope="module")
def trained_ckpt(data, tmp_path_factory) -> Path:
  """A checkpoint folder from a one-step run with the TINY model."""
  folder = tmp_path_factory.mktemp("trained")
  run(ckpt_args(data, folder, 1))
  return folder


FILE_AS_DIR = "a-file"
# values to put in place of TINY's or the defaults: usable ones and nonsense (zeros, negatives, huge, nan, bad paths)
VALUES = {
  "--batch": [-1, 0, 3, 10**12], "--seq": [-5, 0, 1, 48, 49, 10**5], "--n-layer": [-1, 0, 2, 10**9],
  "--n-head": [0, 1, 3, 4], "--n-embd": [-8, 0, 12, 16, 10**9], "--vocab-size": [-1, 0, 5, 12, 64, 10**12],
  "--steps": [-1, 0, 2], "--lr": [-1.0, 0.0, 0.1, 1e30, math.nan, math.inf], "--min-lr": [-1.0, 1.0, math.nan],
  "--warmup": [-1, 0, 10**9], "--weight-decay": [-0.1, 0.0, 10.0, math.nan], "--grad-clip": [-1.0, 0.0, 1e-6, math.inf],
  "--dropout": [-0.1, 0.5, 1.0, math.nan], "--eval-interval": [-1, 0, 2, 10**9], "--eval-iters": [-1, 0, 2],
  "--log-interval": [-1, 0, 10**9], "--time-limit": [-1.0, 0.0, 1e-9, math.nan], "--precision": ["bf16"],
  "--seed": [-1, 0, 2**70], "--config": ["mini"], "--data": ["missing", "empty"],
  "--ckpt-dir": ["fresh", "trained", FILE_AS_DIR], "--device": ["nonsense"], "--resume": [True], "--no-jit": [True],
}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(sorted(VALUES)), max_size=3, unique=True).flatmap(
         lambda keys: st.fixed_dictionaries({k: st.sampled_from(VALUES[k]) for k in keys})))
def test_any_arguments_train_or_exit_with_a_message(data, trained_ckpt, options):
  with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    paths = {"missing": tmp / "missing", "empty": tmp, "fresh": tmp / "ckpt", "trained": tmp / "trained",
             FILE_AS_DIR: tmp / "file"}
    shutil.copytree(trained_ckpt, tmp / "trained")
    (tmp / "file").write_text("not a folder")
    argv = ["--data", str(data), "--steps", "1"] + TINY
    argv += [k if v is True else f"{k}={paths.get(v, v)}" for k, v in options.items()]
    run(argv)     # trains, or exits with a message (checked there); any other exception fails

