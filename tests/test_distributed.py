"""Data parallelism over torch.distributed (gloo between CPU processes, the numpy device): collectives on lazygrad
tensors, parameters broadcast from rank 0, gradients averaged in buckets; two ranks train to the same weights as one
process on the whole batches."""
import os, socket, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from lazygrad import Tensor, distributed as dist

WORKER = Path(__file__).parent / "programs" / "ddp_worker.py"


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run(tmp_path, world: int | None):
  env = {**os.environ, "LAZYGRAD_DEVICE": "numpy", "PYTHONPATH": str(Path(__file__).parents[1])}
  env.pop("RANK", None); env.pop("WORLD_SIZE", None)
  procs = []
  if world is None:
    procs.append(subprocess.Popen([sys.executable, str(WORKER), str(tmp_path)], env=env))
  else:
    port = _free_port()
    for r in range(world):
      rank_env = {**env, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                  "MASTER_PORT": str(port)}
      procs.append(subprocess.Popen([sys.executable, str(WORKER), str(tmp_path)], env=rank_env))
  assert all(p.wait(timeout=300) == 0 for p in procs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
  _run(two, 2)
  _run(one, None)
  return [dict(np.load(two / f"rank{r}.npz")) for r in range(2)], dict(np.load(one / "rankalone.npz"))


def test_collectives_on_lazygrad_tensors(runs):
  (r0, r1), _ = runs
  for r in (r0, r1):
    assert int(r["world"]) == 2
    np.testing.assert_array_equal(r["sum"], [3.0] * 4)      # 1 + 2
    np.testing.assert_array_equal(r["max"], [1.0, 0.0])
    np.testing.assert_array_equal(r["bcast"], [6.0] * 3)    # rank 1's


def test_parameters_start_from_rank_0_and_a_rank_that_differed_is_told(runs):
  (r0, r1), _ = runs
  assert int(r0["differed"]) == 0 and int(r0["warned"]) == 0
  assert int(r1["differed"]) > 0 and int(r1["warned"]) == 1


def test_two_ranks_train_to_the_same_weights_as_one_process(runs):
  (r0, r1), alone = runs
  for key in [k for k in alone if k.startswith("p")]:
    np.testing.assert_array_equal(r0[key], r1[key])                     # the ranks agree exactly
    np.testing.assert_allclose(r0[key], alone[key], rtol=1e-5, atol=1e-6)   # and match one process on whole batches
  np.testing.assert_allclose(r0["losses"], alone["losses"], rtol=1e-5)


def test_gradient_buckets_are_summed_while_the_backward_runs(runs):
  """Each step, some buckets' all-reduces start before the backward's last kernel (the first layer's gradients are
  still being computed while the last layer's travel)."""
  (r0, r1), alone = runs
  assert (r0["overlapped"] > 0).all() and (r1["overlapped"] > 0).all()
  assert (alone["overlapped"] == 0).all()   # one process: nothing to sum


def test_without_torchrun_it_is_one_process_with_a_note(monkeypatch):
  monkeypatch.delenv("RANK", raising=False); monkeypatch.delenv("WORLD_SIZE", raising=False)
  with pytest.warns(UserWarning, match="not launched by torchrun"): assert dist.init() == 1
  t = Tensor([1.0, 2.0])
  assert dist.all_reduce(t) is t and dist.world_size() == 1 and dist.is_main()


def test_a_view_is_refused_with_a_fix(monkeypatch):
  monkeypatch.setitem(dist._state, "world", 2)   # as if launched: the check comes before any collective
  with pytest.raises(dist.DistributedError, match="contiguous"):
    dist.all_reduce(Tensor([[1.0, 2.0], [3.0, 4.0]]).realize()[:, 1])


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "no-jit"])
def test_train_py_on_two_ranks_matches_one_process_with_the_global_batch(tmp_path, jit):
  """examples/gpt2/train.py under torchrun's environment: two ranks of batch 2 give one process's loss curve with
  batch 4 (same seed, no dropout); only rank 0 logs and writes the checkpoint; resuming on one process works and
  says the world changed."""
  sys.path.insert(0, str(Path(__file__).parent))
  from test_train_cli import write_dataset, TINY
  data = write_dataset(tmp_path / "data")
  script = Path(__file__).parents[1] / "examples" / "gpt2" / "train.py"
  opts = TINY + ["--data", str(data), "--steps", "4", "--eval-interval", "4"] + ([] if jit else ["--no-jit"])
  def launch(world, batch, ckpt, extra=()):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    env.pop("RANK", None); env.pop("WORLD_SIZE", None)
    port, procs = _free_port(), []
    for r in range(world):
      e = env if world == 1 else {**env, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(world),
                                  "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
      argv = [sys.executable, str(script), *opts, "--batch", str(batch), "--ckpt-dir", str(ckpt), *extra]
      procs.append(subprocess.Popen(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    return [o[0] for o in outs]
  def losses(text): return [float(line.split("loss ")[1].split()[0]) for line in text.splitlines() if " loss " in line and "/" in line]
  two = launch(2, 2, tmp_path / "two")
  one = launch(1, 4, tmp_path / "one")
  assert two[1] == "" and "2 ranks (global batch 4)" in two[0]   # rank 1 is silent
  assert len(losses(one[0])) == 4
  np.testing.assert_allclose(losses(two[0]), losses(one[0]), rtol=1e-5)
  assert (tmp_path / "two" / "ckpt.safetensors").exists()
  resumed = launch(1, 4, tmp_path / "two", ["--resume", "--steps", "5"])
  assert "was written by 2 rank(s)" in resumed[0] and "step     5/5" in resumed[0]


def test_a_rank_that_never_joins_ends_in_a_clear_error_not_a_hang():
  env = {**os.environ, "LAZYGRAD_DEVICE": "numpy", "PYTHONPATH": str(Path(__file__).parents[1]), "RANK": "0",
         "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
  code = "from lazygrad import distributed as d; d.init(timeout_s=3)"
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
  assert out.returncode != 0 and "DistributedError" in out.stderr and "could not join" in out.stderr, out.stderr[-800:]
