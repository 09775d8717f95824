"""A dump directory: every realize written to files as it happens, stage by stage, with a standalone repro script
per kernel. `with lazygrad.debug.dump("dir"):` or LAZYGRAD_DUMP=dir in the environment.

Layout: `dir/realize-0001/graph.txt` (the lazy graph), `schedule.txt`, then one folder per kernel,
`k00-<name>/`: `ast.txt`, `kernel.pkl` (the kernel AST) and `inputs.npz` (every buffer it is launched with, before
it runs) are written before the kernel is lowered, `uops.txt` and `source.py` (with the user's lines) once it is,
and `repro.py`, which runs the kernel on its saved inputs on the numpy interpreter and on the device it ran on and
compares the outputs. Files are written as each stage finishes, so a stage that fails leaves the ones before it. A
directory that cannot be written is said once, as a warning; the run goes on as if nothing were dumped."""
from __future__ import annotations
import contextlib, io, pickle, warnings
from pathlib import Path
import numpy as np
from ..ir.node import graph_text
from ..codegen.schedule import schedule_text
from ..helpers import observers

REPRO = '''"""Repro of kernel {name} ({lines}), dumped by lazygrad: runs the saved kernel AST on its saved inputs on the numpy
interpreter and, where it can run here, on {device}; compares the outputs. Run: python repro.py"""
import pathlib, pickle
import numpy as np
from lazygrad.runtime.buffer import Buffer
from lazygrad.runtime.device import get_device
from lazygrad.runtime.realize import compile_kernel

here = pathlib.Path(__file__).parent
kernel = pickle.loads((here / "kernel.pkl").read_bytes())
saved = np.load(here / "inputs.npz")
scalars = saved["scalars"].tolist()


def run(device_name):
  dev = get_device(device_name)
  bufs = [Buffer(dev, spec.dtype, spec.size, dev.from_numpy(saved[f"b{{i}}"].view(spec.dtype.np)))
          for i, spec in enumerate(kernel.bufs)]
  compile_kernel(kernel, dev)(bufs, scalars)
  return [b.numpy().astype(np.float64) for b in bufs[:kernel.n_out]]


reference = run("numpy")
print(f"kernel {{kernel.name}}: numpy interpreter ran it; {{kernel.n_out}} output(s)")
if "{device}" != "numpy":
  try: got = run("{device}")
  except Exception as e: print(f"{device}: cannot run here: {{type(e).__name__}}: {{e}}")
  else:
    for i, (g, r) in enumerate(zip(got, reference)):
      print(f"output {{i}}: max |{device} - numpy| = {{np.nanmax(np.abs(g - r), initial=0.0):.3g}}")
'''


class Dump:
  """The observer that writes each realize's stages under `root`."""

  def __init__(self, root):
    self.root, self.count, self.failed = Path(root), 0, False
    self.here: Path | None = None
    self.kernels: dict[int, Path] = {}

  def _write(self, path: Path, data):
    if self.failed: return
    try:
      path.parent.mkdir(parents=True, exist_ok=True)
      if isinstance(data, str): path.write_text(data)
      else: path.write_bytes(data)
    except OSError as e:
      self._give_up(f"cannot write {path} ({type(e).__name__}: {e})")

  def _give_up(self, why: str):
    self.failed = True
    warnings.warn(f"lazygrad dump: {why}; nothing more is dumped, the run goes on", stacklevel=3)

  def graph(self, targets):
    self.count += 1
    self.here, self.kernels = self.root / f"realize-{self.count:04d}", {}
    self._write(self.here / "graph.txt", graph_text(targets) + "\n")

  def schedule(self, items, order):
    self._write(self.here / "schedule.txt", schedule_text(items, order) + "\n")
    self.index = {id(it): i for i, it in enumerate(items)}

  def kernel(self, item, bufs, scalars):
    folder = self.here / f"k{self.index.get(id(item), len(self.kernels)):02d}-{item.kernel.name}"
    self.kernels[id(item)] = folder
    self._write(folder / "ast.txt", item.kernel.text + "\n")
    try: pickled = pickle.dumps(item.kernel)
    except RecursionError: return self._give_up(f"kernel {item.kernel.name} is too deep to pickle for its repro")
    self._write(folder / "kernel.pkl", pickled)
    arrays = {f"b{i}": np.ascontiguousarray(b.numpy()).view(np.uint8) for i, b in enumerate(bufs)}   # raw bytes
    npz = io.BytesIO()
    np.savez(npz, scalars=np.array(scalars, dtype=np.float64), **arrays)
    self._write(folder / "inputs.npz", npz.getvalue())
    device = item.outputs[0].device
    lines = item.lines(range(len(item.kernel.nodes)))
    self._write(folder / "repro.py", REPRO.format(name=item.kernel.name, lines=lines, device=device))

  def compiled(self, item, prg):
    folder = self.kernels.get(id(item))
    if folder is None: return
    self._write(folder / "uops.txt", prg.prog.text + "\n")
    if getattr(prg, "source", None): self._write(folder / "source.py", item.annotated(prg.source))


@contextlib.contextmanager
def dump(directory):
  """Write every realize inside the block to `directory` (see the module docstring)."""
  d = install(directory)
  try: yield d
  finally: observers.remove(d)


def install(directory) -> Dump:
  """Dump every realize from now on (LAZYGRAD_DUMP does this when lazygrad is imported)."""
  d = Dump(directory)
  observers.append(d)
  return d

