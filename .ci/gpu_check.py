"""The GPU check: everything GPU-side of mimic-edge, measured in one run on a single-GPU Linux
machine that may have no network. `bash .ci/gpu_check.sh OUT_DIR` runs this file with the
chosen Python (see the .sh); standard library only, Python 3.8+, so that it runs on whatever
image it meets before anything is installed.

Steps, each in its own process with a time limit (seconds, on an H100/H200): `environment`
(ENVIRONMENT_LIMIT_S: the versions of Python, torch, CUDA, the GPU and the modules, and
nvidia-smi), `install` (INSTALL_LIMIT_S: mimic_edge importable with its kernels/ and export/
subpackages: as it is (an editable .venv), else `pip install --no-deps --no-build-isolation
--no-index --target` from a copy of the sources, else a staged folder, no build at all: an
image's setuptools may predate bdist_wheel), then STEPS below, each with its limit and what it
measures (docs/benchmarks.md has them as a table; a test keeps the two equal). The whole script
ends within BUDGET_S = 530 s, under 9 minutes, and a step never starts with less time left than
it needs to say anything.

On a slower machine (the CPU dry run in the tests: 2 shared cores), --time-scale multiplies the
budget and every limit.

Every step runs from a scratch folder (never the repo root: there the source mimic_edge/, which
lacks kernels/ and export/, would shadow the installed one) with PYTHONSAFEPATH=1. A step whose
requirements are missing (a GPU, a module) is recorded as skipped with the reason, never run to
crash. Outputs in OUT_DIR: summary.json (every step's status, seconds, limit and reason,
rewritten after each step), a log per step, the steps' JSON/XML, and artifacts/ (the validation
reports and engine sidecars of what the bench exported). Exit 1 when a step failed or ran out
of time, 0 otherwise (skipped steps included).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 530  # the whole script, on an H100/H200: under 9 minutes with start-up
MIN_STEP_S = 10  # a step with less time left than this is skipped, not started
# After a step's limit: SIGINT to its process group, so that pytest (KeyboardInterrupt) writes its
# junit XML and summary of what finished; then SIGTERM, then SIGKILL to whatever is left.
INTERRUPT_GRACE_S = 15
KILL_GRACE_S = 5

# What the project installs as mimic_edge (pyproject's package-dir), for staging without a build.
PACKAGE_DIRS = {"mimic_edge": "mimic_edge", "mimic_edge/kernels": "kernels", "mimic_edge/export": "export"}
SOURCE_FILES = ("pyproject.toml", "README.md", *sorted(set(PACKAGE_DIRS.values())))

# module → its distribution, for versions and for the skip reasons
PROBED = {"torch": "torch", "triton": "triton", "numpy": "numpy", "onnx": "onnx", "onnxruntime": "onnxruntime",
          "onnxslim": "onnxslim", "safetensors": "safetensors", "tqdm": "tqdm", "pytest": "pytest",
          "tensorrt": "tensorrt", "torch_tensorrt": "torch-tensorrt", "cuda": "cuda-python"}

PROBE = r"""
import importlib, importlib.metadata, json, platform, sys
found = {"python": platform.python_version(), "executable": sys.executable, "modules": {}, "notes": {}}
def version(dist, module):
    for name in (dist, module.__name__):
        try:
            return importlib.metadata.version(name)
        except Exception:
            pass
    return str(getattr(module, "__version__", "unknown"))
for name, dist in PROBED.items():
    try:
        if name == "cuda":  # cuda-python: the runtime bindings under their >= 12.6 name or the older one
            try:
                module = importlib.import_module("cuda.bindings.runtime")
            except ImportError:
                module = importlib.import_module("cuda.cudart")
        else:
            module = importlib.import_module(name)
        if name == "tensorrt" and getattr(module, "__file__", None) is None:
            found["modules"][name] = None
            found["notes"][name] = "only type stubs (tensorrt-stubs), not TensorRT"
            continue
        found["modules"][name] = version(dist, module)
    except Exception as e:  # ImportError, or a library that is installed but broken
        found["modules"][name] = None
        if not isinstance(e, ModuleNotFoundError):
            found["notes"][name] = f"{type(e).__name__}: {e}"
found["gpu"] = None
if found["modules"].get("torch"):
    import torch
    found["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        found["gpu"] = {"name": torch.cuda.get_device_name(), "compute_capability": f"{major}.{minor}",
                        "count": torch.cuda.device_count()}
if found["modules"].get("onnxruntime"):
    import onnxruntime
    found["onnxruntime_providers"] = onnxruntime.get_available_providers()
with open(sys.argv[1], "w") as f:
    json.dump(found, f)
"""


@dataclass
class Step:
    name: str
    limit_s: int  # on an H100/H200
    what: str
    args: list  # the command after the Python executable; {out}, {work}, {repo}, {limit} are filled in
    gpu: bool = False
    modules: tuple = ()  # needed to start at all
    tensorrt: bool = False  # needs TensorRT and cuda-python (real ones)
    outputs: tuple = ()  # files in OUT_DIR the step writes, checked afterwards


# -rA: every test's outcome in the summary (not -q's dots), so a log cut short still says what passed
PYTEST = ["-m", "pytest", "-p", "no:cacheprovider", "-rA", "--rootdir", "{repo}", "-c", "{repo}/pyproject.toml"]
BENCH = ["-m", "mimic_edge.cli", "bench", "--cache-dir", "{work}/cache"]
AOTI_MODULES = ("torch", "triton", "numpy", "safetensors", "onnx", "onnxslim", "onnxruntime")

# Limits, from estimates (no GPU has run this yet; the first run's summary.json replaces them):
#   kernel_tests    25-40 Triton specialisations compiled at ~1.5-2.5 s each, the tests themselves ~10 s: 95
#   tensorrt_tests  three engines (fp32, fp16, int8: tests/conftest.py builds one per precision per
#                   session) at 15-45 s each for the 3-BiLSTM graph, the int8 calibration ~5 s, the C++
#                   example's build ~15 s: 125
#   bench_cuda      eager and Triton rows in seconds, then engine builds (2 models x 3 precisions) until the
#                   budget cuts them (rows run cheapest first): 60
#   fusion_head_bench / lstm_encoder_bench: do_bench runs of 50 ms x 4 providers x dtypes x batches: 25 / 35
#   aoti_compile    the CUDA package: torch.export ~5 s (CPU measured: 4 s), Inductor's compile with the
#                   Triton kernels 2-4x the CPU compile's 15 s (2-core CPU, measured), validation ~5 s: 70
#   aoti_cuda       the cached package timed beside eager, Triton and the cached fp16 engine: 20
#   bench_cpu       batch 1, two backends: 15
STEPS = [
    Step("kernel_tests", 95, "tests/kernels and tests/models with real Triton kernels",
         PYTEST + ["{repo}/tests/kernels", "{repo}/tests/models", "--junitxml", "{out}/kernel_tests.xml"],
         gpu=True, modules=("torch", "triton", "numpy", "pytest"), outputs=("kernel_tests.xml",)),
    Step("tensorrt_tests", 125, "engine builds (fp32, fp16, int8, one each) validated against PyTorch, the "
         "TensorRT predictor's profile checks and threads, the C++ example",
         PYTEST + ["-m", "tensorrt", "{repo}/tests/export/test_tensorrt.py",
                   "{repo}/tests/runtime/test_tensorrt_predictor.py", "{repo}/tests/examples/test_cpp_tensorrt.py",
                   "--junitxml", "{out}/tensorrt_tests.xml"],
         gpu=True, tensorrt=True, modules=("torch", "numpy", "onnx", "onnxruntime", "onnxslim", "safetensors", "pytest"),
         outputs=("tensorrt_tests.xml",)),
    Step("bench_cuda", 60, "mimic-edge bench on CUDA: MIMIC and MISA, preset mosi, eager, the Triton kernels, ONNX "
         "Runtime (CUDA EP), TensorRT fp32/fp16/int8 engines and torch-tensorrt, batch 1-1024",
         BENCH + ["--device", "cuda", "--presets", "mosi", "--models", "mimic,misa",
                  "--backends", "eager,triton,ort-fp32,ort-fp16,trt-fp32,trt-fp16,trt-int8,torch-tensorrt",
                  "--batch-sizes", "1,8,64,1024", "--iters", "100", "--budget-s", "{limit-20}",
                  "--json", "{out}/bench_cuda.json", "--csv", "{out}/bench_cuda.csv"],
         gpu=True, modules=("torch", "numpy"), outputs=("bench_cuda.json",)),  # rows that export need more: skipped
    Step("fusion_head_bench", 25, "the fused Triton fusion head against eager and torch.compile'd PyTorch",
         ["{repo}/benchmarks/kernels/fusion_head.py", "--out", "{out}/fusion_head.json", "--budget-s", "{limit-15}"],
         gpu=True, modules=("torch", "triton"), outputs=("fusion_head.json",)),
    Step("lstm_encoder_bench", 35, "the Triton BiLSTM encoder against cuDNN nn.LSTM (B 1-1024, fp32, with and "
         "without lengths) and MIMIC end to end, eager vs Triton encoder + head",
         ["{repo}/benchmarks/kernels/lstm_encoder.py", "--out", "{out}/lstm_encoder.json", "--dtypes", "fp32",
          "--model-providers", "eager,triton", "--budget-s", "{limit-15}"],
         gpu=True, modules=("torch", "triton"), outputs=("lstm_encoder.json",)),
    # The package's compile alone, so that its minutes cannot cut the timed rows: one batch-64 call,
    # which makes the bench export (and cache) the package with the ranges aoti_cuda asks for.
    Step("aoti_compile", 70, "the AOTInductor CUDA package (Triton BiLSTM encoders and fused head) compiled and "
         "validated against PyTorch, into the bench's cache",
         BENCH + ["--device", "cuda", "--presets", "mosi", "--models", "mimic", "--backends", "aoti",
                  "--batch-sizes", "64", "--iters", "1", "--warmup", "0", "--json", "{out}/aoti_compile.json"],
         gpu=True, modules=AOTI_MODULES, outputs=("aoti_compile.json",)),
    Step("aoti_cuda", 20, "the cached CUDA package timed against eager, the Triton kernels and the TensorRT fp16 "
         "engine (cached by bench_cuda; skipped without TensorRT)",
         BENCH + ["--device", "cuda", "--presets", "mosi", "--models", "mimic", "--backends", "eager,triton,trt-fp16,aoti",
                  "--batch-sizes", "1,64", "--iters", "100", "--budget-s", "{limit-10}", "--json", "{out}/aoti_cuda.json"],
         gpu=True, modules=AOTI_MODULES, outputs=("aoti_cuda.json",)),
    Step("bench_cpu", 15, "mimic-edge bench on the host CPU: MIMIC, eager and ONNX Runtime fp32, batch 1",
         BENCH + ["--device", "cpu", "--presets", "mosi", "--models", "mimic", "--backends", "eager,ort-fp32",
                  "--batch-sizes", "1", "--iters", "30", "--warmup", "5", "--budget-s", "{limit-10}",
                  "--json", "{out}/bench_cpu.json"],
         modules=("torch", "numpy"), outputs=("bench_cpu.json",)),
]
ENVIRONMENT_LIMIT_S = 30
INSTALL_LIMIT_S = 55  # 3 import checks of 10 s and pip's 25 s, at worst


def skip_reason(step: Step, probe: dict | None) -> str | None:
    """Why `step` cannot run with what the probe found (None: it can); every reason, not the first."""
    if probe is None:  # the probe itself failed: try the step rather than guess
        return None
    modules = probe.get("modules", {})
    reasons = []
    if step.gpu and modules.get("torch") and not probe.get("gpu"):
        reasons.append("no CUDA GPU (torch.cuda.is_available() is False)")
    needed = list(step.modules) + (["tensorrt", "cuda"] if step.tensorrt else [])
    for name in needed:
        if not modules.get(name):
            note = probe.get("notes", {}).get(name)
            reasons.append(f"{PROBED.get(name, name)} is not installed" + (f" ({note})" if note else ""))
    return "; ".join(dict.fromkeys(reasons)) or None


def stage_package(repo: Path, dest: Path) -> Path:
    """mimic_edge laid out as installed, copied into `dest` (no build step): the fallback install."""
    for package, source in PACKAGE_DIRS.items():
        shutil.copytree(repo / source, dest / package, ignore=shutil.ignore_patterns("__pycache__"),
                        dirs_exist_ok=True)
    return dest


def plan_step(step: Step, reason: str | None, installed: bool, left_s: float, time_scale: float,
              budget_s: float) -> tuple[str | None, float]:
    """(why the step is skipped, or None; its limit). A step cut at its limit must still end within
    the budget, grace periods included; with less than MIN_STEP_S of that left it is not started."""
    if not installed:
        reason = "mimic_edge could not be installed (see install)"
    left = left_s - INTERRUPT_GRACE_S - KILL_GRACE_S
    if reason is None and left < MIN_STEP_S:
        reason = f"no time left of the script's {budget_s:.0f} s budget"
    return reason, min(step.limit_s * time_scale, left)


def fill(args: list, **values) -> list:
    """Format {out}, {work}, {repo}, {limit-N} (the step's limit minus N seconds, at least 5)."""
    limit = values.pop("limit")
    filled = []
    for arg in args:
        if arg.startswith("{limit-"):
            arg = str(max(5, int(limit) - int(arg[len("{limit-"):-1])))
        filled.append(arg.format(**values))
    return filled


class Summary:
    """summary.json, rewritten atomically after every step."""

    def __init__(self, path: Path, record: dict):
        self.path, self.record = path, record
        self.record.setdefault("steps", [])
        self.write()

    def add(self, step: dict) -> dict:
        self.record["steps"].append(step)
        self.write()
        return step

    def write(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.record, indent=2) + "\n")
        os.replace(tmp, self.path)


@dataclass
class Runner:
    python: str
    out: Path
    work: Path
    deadline: float
    env: dict = field(default_factory=dict)
    time_scale: float = 1.0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, command: list, limit_s: float) -> dict:
        """Run `command` with its output in OUT_DIR/<name>.log (and on our stdout), killed with its
        whole process group after `limit_s`. The step record: status ok / failed / timeout."""
        log = self.out / f"{name}.log"
        print(f"== {name} (limit {limit_s:.0f} s)", flush=True)
        start = time.monotonic()
        with open(log, "w") as f:
            f.write("$ " + " ".join(command) + "\n")
            f.flush()
            proc = subprocess.Popen(command, cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            reader = threading.Thread(target=_copy_lines, args=(proc.stdout, f), daemon=True)
            reader.start()
            timed_out = False
            try:
                proc.wait(timeout=limit_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _interrupt_group(proc)
            _kill_group(proc)  # also what a finished step left behind (e.g. torch.compile's workers)
            reader.join(timeout=KILL_GRACE_S)
        seconds = round(time.monotonic() - start, 1)
        record = {"name": name, "seconds": seconds, "limit_s": round(limit_s), "log": log.name}
        if timed_out:
            return {**record, "status": "timeout", "reason": f"killed after its limit of {limit_s:.0f} s"}
        if proc.returncode != 0:
            return {**record, "status": "failed", "reason": f"exit {proc.returncode}: {_last_line(log)}"}
        return {**record, "status": "ok", "reason": ""}


def _copy_lines(stream, log) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        log.write(line)
        log.flush()
        sys.stdout.write(line)
        sys.stdout.flush()


def _interrupt_group(proc: subprocess.Popen) -> None:
    """SIGINT to the step's process group; wait up to INTERRUPT_GRACE_S for it to save and exit."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=INTERRUPT_GRACE_S)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the step's process group, SIGKILL to whatever is left after KILL_GRACE_S."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return  # the step and all its children are gone
    try:
        proc.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if len(lines) > 1 else "(no output)"


def environment(runner: Runner, summary: Summary) -> dict | None:
    """versions.json and gpu.csv; the probe's findings, or None when the probe failed."""
    smi = shutil.which("nvidia-smi")
    if smi:
        ran = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv"],
                             capture_output=True, text=True, timeout=20)
        (runner.out / "gpu.csv").write_text(ran.stdout + ran.stderr)
    script, found = runner.work / "probe.py", runner.work / "probe.json"
    script.write_text(f"PROBED = {PROBED!r}\n" + PROBE)
    limit = min(ENVIRONMENT_LIMIT_S * runner.time_scale, runner.left())
    record = runner.run("environment", [runner.python, str(script), str(found)], limit)
    probe = None
    if record["status"] == "ok":
        probe = json.loads(found.read_text())
        probe["nvidia_smi"] = smi is not None
        (runner.out / "versions.json").write_text(json.dumps(probe, indent=2) + "\n")
    summary.add({**record, "what": "versions, GPU and what is installed", "gpu": (probe or {}).get("gpu")})
    return probe


def install(runner: Runner, summary: Summary) -> dict:
    """Make mimic_edge (with kernels/ and export/) importable for the steps; sets PYTHONPATH."""
    start = time.monotonic()
    check = [runner.python, "-c", "import importlib.util as u, mimic_edge; "
             "missing = [m for m in ('mimic_edge.kernels', 'mimic_edge.export', 'mimic_edge.cli') if u.find_spec(m) is None]; "
             "print(mimic_edge.__file__); raise SystemExit(f'missing: {missing}' if missing else 0)"]

    def importable(site: Path | None) -> tuple:
        env = dict(runner.env)
        if site is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
        try:
            ran = subprocess.run(check, cwd=runner.work, env=env, capture_output=True, text=True,
                                 timeout=10 * runner.time_scale)  # imports mimic_edge only, not torch
        except subprocess.TimeoutExpired:
            return False, "the import check timed out", env
        return ran.returncode == 0, (ran.stdout + ran.stderr).strip(), env

    notes = []
    ok, where, env = importable(None)
    method = "already importable"
    if not ok:
        notes.append(f"not importable as it is: {_last(where)}")
        site = runner.work / "site"
        source = runner.work / "source"  # pip builds in the source folder: a copy keeps the checkout clean
        source.mkdir()
        for name in SOURCE_FILES:
            path = REPO / name
            if path.is_dir():
                shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            elif path.is_file():
                shutil.copy2(path, source / name)
        pip = [runner.python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
               "--disable-pip-version-check", "--quiet", "--target", str(site), str(source)]
        try:
            ran = subprocess.run(pip, cwd=runner.work, env=runner.env, capture_output=True, text=True,
                                 timeout=25 * runner.time_scale)
            pip_ok, pip_said = ran.returncode == 0, (ran.stdout + ran.stderr).strip()
        except subprocess.TimeoutExpired:
            pip_ok, pip_said = False, "timed out"
        (runner.out / "install.log").write_text("$ " + " ".join(pip) + "\n" + pip_said + "\n")
        method = "pip install --target"
        if pip_ok:
            ok, where, env = importable(site)
        if not ok:
            notes.append(f"pip install failed: {_pip_error(pip_said)}" if not pip_ok
                         else f"pip's install not importable: {_last(where)}")
            shutil.rmtree(site, ignore_errors=True)
            ok, where, env = importable(stage_package(REPO, site))
            method = "staged folder (no build)"
    runner.env = env
    record = {"name": "install", "status": "ok" if ok else "failed", "seconds": round(time.monotonic() - start, 1),
              "limit_s": round(INSTALL_LIMIT_S * runner.time_scale), "log": "install.log" if (runner.out / "install.log").exists() else None,
              "reason": "" if ok else where[-300:], "what": "mimic_edge importable with kernels/ and export/",
              "method": method, "mimic_edge": where.splitlines()[0] if ok else None, "notes": notes}
    print(f"== install: {record['status']} ({method}) {record['mimic_edge'] or record['reason']}", flush=True)
    return summary.add(record)


def _last(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1][:300] if lines else "(no output)"


def _pip_error(text: str) -> str:
    """The line of pip's output that says what went wrong (e.g. "error: invalid command
    'bdist_wheel'" from a setuptools without wheel support), not its generic wrapper lines."""
    generic = ("subprocess-exited-with-error", "metadata-generation-failed", "This error originates")
    errors = [line.strip() for line in text.splitlines() if "error" in line.lower() and not any(g in line for g in generic)]
    return (errors[0] if errors else _last(text))[:300]


def outputs_of(step: Step, out: Path) -> dict:
    """What the step's JSON outputs hold (bench: rows by status, finished), checked to parse."""
    found = {}
    for name in step.outputs:
        path = out / name
        if not path.is_file():
            found[name] = "missing"
        elif name.endswith(".json"):
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as e:
                found[name] = f"invalid JSON: {e}"
                continue
            rows = data.get("rows", []) if isinstance(data, dict) else []
            statuses = [str(r.get("status", "")).split(":")[0] for r in rows]
            found[name] = {"rows": len(rows), **{s: statuses.count(s) for s in sorted(set(statuses))},
                           "finished": data.get("finished") if isinstance(data, dict) else None}
        else:
            found[name] = "written"
    return found


def collect_artifact_reports(work: Path, out: Path) -> list:
    """The validation reports and engine sidecars the bench wrote into its cache: small, and the
    record of what each exported artifact and engine scored against PyTorch."""
    copied = []
    for path in sorted((work / "cache").glob("*/*.json")):
        if path.name.endswith((".validation.json", ".engine.json")):
            dest = out / "artifacts" / path.parent.name / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            copied.append(str(dest.relative_to(out)))
    return copied


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder for summary.json, logs and results (created)")
    parser.add_argument("--python", default=sys.executable, help="the Python the steps run with (default: this one)")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help=f"the whole script (default {BUDGET_S})")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply the budget and every step's limit (a machine slower than an H100 host)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch folder (staged package, cache)")
    args = parser.parse_args(argv)

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mimic-gpu-check-"))
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRITON_INTERPRET")}
    env.update(PYTHONSAFEPATH="1", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    if args.time_scale <= 0 or args.budget_s <= 0:
        parser.error("--time-scale and --budget-s must be positive")
    budget = args.budget_s * args.time_scale
    runner = Runner(args.python, out, work, started + budget, env, args.time_scale)
    summary = Summary(out / "summary.json", {
        "repo": str(REPO), "python": args.python, "budget_s": budget, "time_scale": args.time_scale,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "finished": False})
    try:
        probe = environment(runner, summary)
        installed = install(runner, summary)
        for step in STEPS:
            reason, limit = plan_step(step, skip_reason(step, probe), installed["status"] == "ok", runner.left(),
                                      args.time_scale, budget)
            if reason is not None:
                print(f"== {step.name}: skipped: {reason}", flush=True)
                summary.add({"name": step.name, "status": "skipped", "seconds": 0,
                             "limit_s": round(step.limit_s * args.time_scale),
                             "reason": reason, "what": step.what, "log": None})
                continue
            command = [args.python] + fill(step.args, out=str(out), work=str(work), repo=str(REPO), limit=limit)
            record = runner.run(step.name, command, limit)
            summary.add({**record, "what": step.what, "outputs": outputs_of(step, out)})
        summary.record["artifacts"] = collect_artifact_reports(work, out)
    finally:
        summary.record.update(finished=True, seconds=round(time.monotonic() - started, 1))
        summary.write()
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    steps = summary.record["steps"]
    print("\n" + "\n".join(f"{s['name']:18} {s['status']:8} {s['seconds']:6.1f} s  {s['reason']}" for s in steps))
    return 1 if any(s["status"] in ("failed", "timeout") for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
