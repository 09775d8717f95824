"""The static HTML report (lazygrad.debug.report, `python -m lazygrad.report`, LAZYGRAD_REPORT): what it collects,
that it is written whatever happens to the run, and that a real browser renders it."""
import importlib.util, os, re, runpy, shutil, struct, subprocess, sys, warnings
from collections import Counter
from pathlib import Path
import numpy as np
import pytest
from lazygrad import Tensor, helpers
from lazygrad.debug import report
from lazygrad.runtime import realize as engine

ROOT = Path(__file__).parents[1]
PROGRAM = ROOT / "tests" / "programs" / "train_steps.py"
HAS_DOT = shutil.which("dot") is not None
BROWSER = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "chrome")) if p), None)


class Launches:
  """An observer of its own: the kernels every realize launches, to check the report against."""
  def __init__(self): self.names = Counter()
  def kernel(self, item, bufs, scalars): self.names[item.kernel.name] += 1


def run_program(path: Path):
  engine._schedule_cache.clear(); engine._program_cache.clear()   # a process that runs the program for the first time
  launches = Launches()
  helpers.observers.append(launches)
  try:
    with report(path) as r: runpy.run_path(str(PROGRAM), run_name="__main__")
  finally: helpers.observers.remove(launches)
  return r, launches.names


def kernel_rows(page: str) -> list[tuple[str, int]]:
  """(name, launches) per row of the report's kernel table."""
  table = page[page.index("id='kernel-table'"):page.index("</table>", page.index("id='kernel-table'"))]
  return [(name, int(n)) for name, n in re.findall(r"<tr><td><a href='#k\d+'>([^<]+)</a></td><td>[^<]*</td>"
                                                   r"<td class='n'>(\d+)</td>", table)]


def test_report_lists_every_kernel_with_its_stages_caches_and_jit_calls(tmp_path, capsys):
  r, launched = run_program(tmp_path / "report.html")
  page = (tmp_path / "report.html").read_text()
  rows = kernel_rows(page)
  # every kernel that ran, with as many launches as an independent observer saw (replays launch without realizing)
  assert sum(n for _, n in rows) == sum(launched.values())
  assert len(rows) == len(r.kernels) and {name for name, _ in rows} == set(launched)
  for k in r.kernels.values():   # each kernel's AST, uops and user lines are on the page
    assert f"id='k{k.number}'" in page and k.ast.splitlines()[0] in page
    assert k.uops.splitlines()[0] in page and "train_steps.py:" in "".join(k.lines)
  if os.environ.get("LAZYGRAD_DEVICE") == "triton-interp":   # Triton source with this run's user lines
    assert all(k.source for k in r.kernels.values()) and "@ train_steps.py:" in page
  # the jitted step: run as plain code, captured, replayed
  assert [(f, a) for f, a, *_ in r.jit_calls] == [("step", "run"), ("step", "capture"), ("step", "replay")]
  assert ">replay</td>" in page and "the second call with this signature" in page
  # compiler stages and caches: the second (captured) step hits the schedule and program caches the first missed
  stages = r.stage_seconds()
  outcomes = Counter((kind, hit) for kind, _, hit, _, _ in r.lookups)
  lowered = outcomes["disk" if os.environ.get("LAZYGRAD_DEVICE") == "triton-interp" else "program", False] > 0
  assert stages["schedule"] > 0 and stages["kernels (run)"] > 0 and ("lower" in stages) == lowered
  assert outcomes["schedule", True] >= 1 and outcomes["schedule", False] >= 2 and outcomes["program", True] >= 1
  assert "a graph structure not scheduled before" in page and "compiled earlier in this process" in page
  # self-contained: nothing is fetched
  assert not re.search(r"<(link|img|iframe)\b|\bsrc=", page)
  if HAS_DOT: assert page.count("<svg") >= len(r.kernels) + 2 * len(r.realizes)


def test_the_command_line_writes_the_report_even_when_the_script_fails(tmp_path):
  script = tmp_path / "fails.py"
  script.write_text("import numpy as np\nfrom lazygrad import Tensor\n"
                    "print((Tensor(np.ones((3, 4), np.float32)) * 2).sum().item())\n"
                    "raise SystemExit('the script gave up')\n")
  out = subprocess.run([sys.executable, "-m", "lazygrad.report", "-o", str(tmp_path / "r.html"), str(script)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
  assert out.returncode != 0 and "the script gave up" in out.stderr and "24.0" in out.stdout
  assert "lazygrad report:" in out.stderr
  rows = kernel_rows((tmp_path / "r.html").read_text())
  assert len(rows) == 1 and rows[0][1] == 1


def test_the_environment_variable_writes_the_report_at_exit(tmp_path):
  env = {**os.environ, "PYTHONPATH": str(ROOT), "LAZYGRAD_REPORT": str(tmp_path / "env.html")}
  code = "import numpy as np, lazygrad\nprint(lazygrad.Tensor(np.arange(6.0, dtype=np.float32)).exp().sum().item())"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
  assert out.returncode == 0, out.stderr
  assert len(kernel_rows((tmp_path / "env.html").read_text())) == 1


def test_a_report_that_cannot_be_written_warns_and_the_run_goes_on(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("")
  with pytest.warns(UserWarning, match="cannot write"):
    with report(blocker / "report.html"):
      value = (Tensor(np.ones(4, np.float32)) + 1).numpy()
  np.testing.assert_array_equal(value, 2)


def test_reporting_changes_no_result(tmp_path):
  x = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
  def f(): return Tensor(x).softmax(-1).log().mean(0).numpy()
  plain = f()
  with warnings.catch_warnings(), report(tmp_path / "r.html"):
    reported = f()
  np.testing.assert_array_equal(plain, reported)


def png_size(path: Path) -> tuple[int, int]:
  data = path.read_bytes()
  assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
  return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(BROWSER is None and not os.environ.get("LAZYGRAD_REQUIRE_BROWSER"),
                    reason="no Chromium here (.ci/run installs it)")
def test_a_headless_browser_renders_the_report(tmp_path):
  assert BROWSER is not None, "LAZYGRAD_REQUIRE_BROWSER is set but no chromium is on PATH"
  r, _ = run_program(tmp_path / "report.html")
  url = (tmp_path / "report.html").as_uri()
  flags = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}"]
  dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
  assert dom.returncode == 0, dom.stderr[-2000:]
  # the page's script ran to its end and counted the rendered kernel rows
  assert f'data-rendered="{len(r.kernels)} kernels"' in dom.stdout, dom.stdout[:2000]
  assert all(f'id="k{k.number}"' in dom.stdout for k in r.kernels.values())
  shot = tmp_path / "report.png"
  subprocess.run(flags + ["--window-size=1280,1600", f"--screenshot={shot}", url], capture_output=True, timeout=120)
  assert png_size(shot) == (1280, 1600) and shot.stat().st_size > 20_000   # a page with content, not a blank one


@pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                    reason="needs triton")
def test_the_disk_cache_misses_in_a_first_process_and_hits_in_a_second(tmp_path):
  env = {**os.environ, "PYTHONPATH": str(ROOT), "LAZYGRAD_DEVICE": "triton-interp", "TRITON_INTERPRET": "1",
         "LAZYGRAD_CACHE": str(tmp_path / "cache")}
  pages = []
  for run in ("cold", "warm"):
    out = subprocess.run([sys.executable, "-m", "lazygrad.report", "-o", str(tmp_path / f"{run}.html"), str(PROGRAM)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    pages.append((tmp_path / f"{run}.html").read_text())
  cold, warm = pages
  assert "no file at" in cold and "source read from" not in cold
  assert "source read from" in warm and "no file at" not in warm
  assert ">render</td>" in cold and ">render</td>" not in warm   # the warm process renders nothing
