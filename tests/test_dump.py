"""The dump directory (lazygrad.debug.dump, LAZYGRAD_DUMP): files per stage and per kernel, written as each stage
finishes, and standalone repro scripts that run a kernel on its saved inputs."""
import os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import lazygrad
from lazygrad import Tensor
from lazygrad.debug import dump
from lazygrad.runtime import realize as engine

ROOT = Path(__file__).parents[1]
INTERP = os.environ.get("TRITON_INTERPRET") == "1"


def softmax_step(device):
  x = Tensor(np.arange(32, dtype=np.float32).reshape(4, 8) / 7, device=device)
  return ((x * 2).softmax(-1) + 1).sum(0)


def run_repro(path: Path) -> str:
  out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
  assert out.returncode == 0, out.stderr
  return out.stdout


def test_dump_writes_each_stage_and_a_repro_per_kernel(tmp_path):
  plain = softmax_step("numpy").numpy()
  with dump(tmp_path):
    dumped = softmax_step("numpy").numpy()
  np.testing.assert_array_equal(dumped, plain)   # dumping changes nothing
  (run,) = tmp_path.iterdir()
  assert (run / "graph.txt").read_text().startswith("%0:") and "schedule:" in (run / "schedule.txt").read_text()
  kernels = sorted(p for p in run.iterdir() if p.is_dir())
  assert kernels and all({"ast.txt", "kernel.pkl", "inputs.npz", "uops.txt", "repro.py"} <= {f.name for f in k.iterdir()}
                         for k in kernels)
  assert "numpy interpreter ran it" in run_repro(kernels[0] / "repro.py")


@pytest.mark.skipif(not INTERP, reason="Triton is not in interpreter mode in this process")
def test_repro_compares_the_device_with_numpy(tmp_path):
  with dump(tmp_path):
    softmax_step("triton-interp").numpy()
  (run,) = tmp_path.iterdir()
  kernel = sorted(p for p in run.iterdir() if p.is_dir())[0]
  assert "# mul @ test_dump.py" in (kernel / "source.py").read_text()   # the user's lines, attached
  report = run_repro(kernel / "repro.py")
  diffs = [float(line.rsplit("=", 1)[1]) for line in report.splitlines() if "max |triton-interp - numpy|" in line]
  assert diffs and max(diffs) < 1e-5, report


def test_a_failing_stage_leaves_the_files_before_it(tmp_path, monkeypatch):
  def broken(kernel, device, tiling=None): raise RuntimeError("lowering failed")
  monkeypatch.setattr(engine, "compile_kernel", broken)
  with dump(tmp_path), pytest.raises(RuntimeError, match="lowering failed"):
    softmax_step("numpy").numpy()
  (run,) = tmp_path.iterdir()
  (kernel,) = [p for p in run.iterdir() if p.is_dir()]
  names = {f.name for f in kernel.iterdir()}
  assert {"ast.txt", "kernel.pkl", "inputs.npz", "repro.py"} <= names and "uops.txt" not in names


def test_an_unwritable_directory_is_said_once_and_the_run_goes_on(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with dump(blocker / "dump"), pytest.warns(UserWarning, match="cannot write") as caught:
    out = softmax_step("numpy").numpy()
    softmax_step("numpy").numpy()
  assert len([w for w in caught if "lazygrad dump" in str(w.message)]) == 1
  np.testing.assert_allclose(out, softmax_step("numpy").numpy())


def test_the_environment_variable_dumps_a_script(tmp_path):
  script = tmp_path / "script.py"
  script.write_text("import numpy as np\nfrom lazygrad import Tensor\nprint((Tensor(np.ones(4, np.float32)) * 3).sum().item())\n")
  out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "LAZYGRAD_DUMP": str(tmp_path / "d"),
                            "LAZYGRAD_DEVICE": "numpy"})
  assert out.returncode == 0 and out.stdout.strip() == "12.0", out.stderr
  assert list((tmp_path / "d").glob("realize-*/k00-*/repro.py"))
