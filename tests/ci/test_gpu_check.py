""".ci/gpu_check.sh: its steps' budget, skip reasons, the no-build install and the step
timeout, in-process; and a CPU dry run of the whole script in a bare environment (slow)."""
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gpu_check", REPO / ".ci" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check  # dataclasses look their module up there
_spec.loader.exec_module(gpu_check)

ROW_KEYS = {"model", "preset", "backend", "precision", "batch_size", "params", "flops", "p50_ms", "p99_ms", "status"}
GPU_STEPS = ("kernel_tests", "tensorrt_tests", "bench_cuda", "fusion_head_bench", "lstm_encoder_bench", "aoti_compile",
             "aoti_cuda")


def test_steps_fit_in_nine_minutes_each_with_its_limit():
    limits = [gpu_check.ENVIRONMENT_LIMIT_S, gpu_check.INSTALL_LIMIT_S] + [s.limit_s for s in gpu_check.STEPS]
    assert sum(limits) <= gpu_check.BUDGET_S <= 9 * 60
    assert [s.name for s in gpu_check.STEPS if s.gpu] == list(GPU_STEPS)
    assert all(s.what and s.limit_s >= gpu_check.MIN_STEP_S for s in gpu_check.STEPS)


def test_the_docs_table_lists_every_step_with_its_limit():
    table = (REPO / "docs" / "benchmarks.md").read_text()
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| ") and line.count("|") == 4]
    documented = {name.split("(")[0].strip(): int(limit) for name, limit in rows if limit.strip().isdigit()}
    expected = {"environment": gpu_check.ENVIRONMENT_LIMIT_S, "install": gpu_check.INSTALL_LIMIT_S,
                **{s.name: s.limit_s for s in gpu_check.STEPS}}
    assert documented == expected


def probe(gpu=None, **modules):
    found = dict.fromkeys(gpu_check.PROBED, "1.0")
    found.update(modules)
    return {"gpu": gpu, "modules": found, "notes": {"tensorrt": "only type stubs (tensorrt-stubs), not TensorRT"}
            if modules.get("tensorrt", "1.0") is None else {}}


def step(name):
    return next(s for s in gpu_check.STEPS if s.name == name)


def test_skip_reasons_name_everything_missing():
    cpu_only = probe(gpu=None, pytest=None, tensorrt=None, cuda=None)
    assert gpu_check.skip_reason(step("tensorrt_tests"), cpu_only) == (
        "no CUDA GPU (torch.cuda.is_available() is False); pytest is not installed; tensorrt is not installed "
        "(only type stubs (tensorrt-stubs), not TensorRT); cuda-python is not installed")
    assert gpu_check.skip_reason(step("bench_cpu"), cpu_only) is None
    assert gpu_check.skip_reason(step("bench_cpu"), probe(torch=None)) == "torch is not installed"
    h100 = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "count": 1}
    assert all(gpu_check.skip_reason(s, probe(gpu=h100)) is None for s in gpu_check.STEPS)
    assert gpu_check.skip_reason(step("tensorrt_tests"), probe(gpu=h100, cuda=None)) == "cuda-python is not installed"
    assert gpu_check.skip_reason(step("kernel_tests"), None) is None  # the probe failed: try rather than guess


def test_limits_are_filled_into_the_commands():
    args = gpu_check.fill(["--out", "{out}/x.json", "--budget-s", "{limit-20}", "{limit-15}"], out="/o", limit=150.0)
    assert args == ["--out", "/o/x.json", "--budget-s", "130", "135"]
    assert gpu_check.fill(["{limit-20}"], limit=12.0) == ["5"]  # never below 5 s


def test_staged_package_imports_without_a_build(tmp_path):
    """The fallback install: kernels/ and export/ inside mimic_edge, importable from anywhere but
    the repo root, with no pip and no setuptools involved."""
    site = gpu_check.stage_package(REPO, tmp_path / "site")
    assert not list(site.rglob("__pycache__")), "staged a cache of the checkout's bytecode"
    code = ("import importlib.util as u, mimic_edge, mimic_edge.export.precisions as f; "
            "print(mimic_edge.__file__); print(u.find_spec('mimic_edge.kernels').origin); print(len(f.PRECISIONS))")
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    package, kernels, precisions = ran.stdout.split()
    assert Path(package) == site / "mimic_edge" / "__init__.py"
    assert Path(kernels) == site / "mimic_edge" / "kernels" / "__init__.py" and int(precisions) >= 3


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc (Linux)")
def test_a_step_past_its_limit_is_killed_with_its_children(tmp_path):
    runner = gpu_check.Runner(sys.executable, tmp_path, tmp_path, time.monotonic() + 60, dict(os.environ))
    code = ("import subprocess, sys, time; "
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print('child', child.pid, flush=True); time.sleep(60)")
    start = time.monotonic()
    record = runner.run("sleepy", [sys.executable, "-c", code], limit_s=2)
    assert record["status"] == "timeout" and record["reason"] == "killed after its limit of 2 s"
    assert time.monotonic() - start < 2 + gpu_check.KILL_GRACE_S + 3
    (child,) = [int(line.split()[1]) for line in (tmp_path / "sleepy.log").read_text().splitlines()
                if line.startswith("child ")]
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the step's child outlived it"


def test_a_step_past_its_limit_is_interrupted_first_so_it_keeps_what_finished(tmp_path):
    """pytest writes its junit XML and summary on SIGINT (KeyboardInterrupt), not on SIGTERM."""
    runner = gpu_check.Runner(sys.executable, tmp_path, tmp_path, time.monotonic() + 60, dict(os.environ))
    saved = tmp_path / "results.xml"
    code = ("import pathlib, time\n"
            "try:\n    time.sleep(60)\n"
            f"except KeyboardInterrupt:\n    pathlib.Path({str(saved)!r}).write_text('<testsuite/>')\n")
    record = runner.run("interrupted", [sys.executable, "-c", code], limit_s=2)
    assert record["status"] == "timeout" and saved.read_text() == "<testsuite/>"


def test_pytest_steps_list_every_outcome_and_write_junit_xml():
    steps = [s for s in gpu_check.STEPS if "pytest" in s.args]
    for step in steps:
        command = " ".join(map(str, step.args)) + " "
        assert "-rA" in command and "--junitxml" in command and " -q " not in command, step.name


def test_failed_step_says_its_exit_code_and_last_line(tmp_path):
    runner = gpu_check.Runner(sys.executable, tmp_path, tmp_path, time.monotonic() + 60, dict(os.environ))
    record = runner.run("broken", [sys.executable, "-c", "print('working'); raise SystemExit('no GPU in sight')"], 30)
    assert record["status"] == "failed" and record["reason"] == "exit 1: no GPU in sight"


# ---------------------------------------------------------------------------------------------
# The dry run: the real script in a fresh venv with CPU torch, triton and the project's runtime
# dependencies (this venv's versions, so pip's cache serves them), without pytest and tqdm, as a
# bare image might be; the project itself installed the script's way (pip --no-index, or staged).

DRY_RUN_PACKAGES = ("triton", "numpy", "onnx", "onnxruntime", "onnxslim", "safetensors")


def _pinned(name: str) -> str:
    return f"{name}=={importlib.metadata.version(name).split('+')[0]}"  # 2.13.0+cpu → torch==2.13.0


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    python3 = shutil.which("python3")
    if python3 is None:
        pytest.skip("no python3 on PATH to build the bare environment with")
    venv = tmp_path_factory.mktemp("bare") / "venv"
    made = subprocess.run([python3, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=120)
    if made.returncode != 0:
        pytest.skip(f"python3 -m venv failed (no ensurepip?): {made.stderr.strip()[-300:]}")
    python = venv / "bin" / "python"
    for packages in ([_pinned("torch")], [_pinned(p) for p in DRY_RUN_PACKAGES]):  # CPU torch first
        ran = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
                             capture_output=True, text=True, timeout=900)
        if ran.returncode != 0:
            pytest.skip(f"could not install {packages} with pip (no network?): {ran.stderr.strip()[-300:]}")
    return python


@pytest.mark.slow
def test_cpu_dry_run_of_the_gpu_check(bare_python, tmp_path):
    out = tmp_path / "out"
    build_before = (REPO / "build").exists()
    env = {**os.environ, "PYTHON": str(bare_python)}
    env.pop("PYTHONPATH", None)
    # 2 shared cores are ~4x slower than an H100 host's CPU: the limits scale, the steps do not change
    ran = subprocess.run(["bash", str(REPO / ".ci" / "gpu_check.sh"), str(out), "--time-scale", "4"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] is True and summary["seconds"] < summary["budget_s"]
    steps = {s["name"]: s for s in summary["steps"]}
    assert list(steps) == ["environment", "install"] + [s.name for s in gpu_check.STEPS]
    assert steps["environment"]["status"] == "ok" and steps["environment"]["gpu"] is None
    install = steps["install"]
    assert install["status"] == "ok" and install["method"] in ("pip install --target", "staged folder (no build)")
    assert not install["mimic_edge"].startswith(str(REPO)), "the source folder shadowed the install"
    for name in GPU_STEPS:
        assert steps[name]["status"] == "skipped"
        assert steps[name]["reason"].startswith("no CUDA GPU (torch.cuda.is_available() is False)")
    assert "pytest is not installed" in steps["kernel_tests"]["reason"]
    assert "tensorrt is not installed" in steps["tensorrt_tests"]["reason"]

    cpu = steps["bench_cpu"]
    assert cpu["status"] == "ok" and cpu["outputs"]["bench_cpu.json"] == {"rows": 2, "ok": 2, "finished": True}
    bench = json.loads((out / "bench_cpu.json").read_text())  # without tqdm: no progress bar, no crash
    assert [(r["backend"], r["status"]) for r in bench["rows"]] == [("eager", "ok"), ("ort-fp32", "ok")]
    assert all(ROW_KEYS <= r.keys() and r["p50_ms"] > 0 for r in bench["rows"])
    versions = json.loads((out / "versions.json").read_text())
    assert versions["modules"]["torch"].startswith(importlib.metadata.version("torch").split("+")[0])
    assert versions["modules"]["tqdm"] is None and versions["modules"]["pytest"] is None
    assert summary["artifacts"] == [a for a in summary["artifacts"] if a.endswith(".validation.json")] != []
    assert (REPO / "build").exists() == build_before  # pip built from a copy, not in the checkout


def test_a_step_is_not_started_with_less_than_its_minimum_time_left():
    """Grace periods are reserved: a step cut at its limit still ends in the budget; below
    MIN_STEP_S of what remains it is skipped with the reason, not started."""
    step = gpu_check.Step("kernel_tests", 110, "the kernel tests", [])
    grace = gpu_check.INTERRUPT_GRACE_S + gpu_check.KILL_GRACE_S
    assert gpu_check.plan_step(step, None, True, 1000.0, 1.0, 530) == (None, 110)
    assert gpu_check.plan_step(step, None, True, 60.0, 1.0, 530) == (None, 60.0 - grace)  # cut to what is left
    assert gpu_check.plan_step(step, None, True, 1000.0, 2.0, 530) == (None, 220)  # a slower machine's scale
    reason, _ = gpu_check.plan_step(step, None, True, grace + gpu_check.MIN_STEP_S - 0.1, 1.0, 530)
    assert reason == "no time left of the script's 530 s budget"
    assert gpu_check.plan_step(step, None, True, grace + gpu_check.MIN_STEP_S, 1.0, 530)[0] is None
    assert gpu_check.plan_step(step, "needs a CUDA GPU", True, 1000.0, 1.0, 530)[0] == "needs a CUDA GPU"
    assert gpu_check.plan_step(step, None, False, 1000.0, 1.0, 530)[0].startswith("mimic_edge could not be installed")


@pytest.mark.slow  # the real environment probe and install check (imports torch): ~15 s
def test_a_step_past_its_limit_in_a_whole_run_keeps_every_finished_result(tmp_path, monkeypatch, capsys):
    """The whole script on this CPU with stub steps: one that finishes, one that sleeps past its
    limit, one after it. The summary keeps the first's result, records the timeout, and the run
    goes on to the third; the exit status says a step ran out of time."""
    def step(name, code, limit, outputs=()):
        return gpu_check.Step(name, limit, f"stub {name}", ["-c", code, "{out}"], outputs=outputs)

    # no braces in the code: fill() formats every argument ({out})
    write = "import json, sys; json.dump(dict(rows=[dict(status='ok')], finished=True), open(sys.argv[1] + '/NAME', 'w'))"
    monkeypatch.setattr(gpu_check, "STEPS", [
        step("first", write.replace("NAME", "first.json"), 30, ("first.json",)),
        step("sleeper", "import time; print('started', flush=True); time.sleep(120)", 3),
        step("third", write.replace("NAME", "third.json"), 30, ("third.json",)),
    ])
    out = tmp_path / "out"
    assert gpu_check.main([str(out), "--budget-s", "300"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    steps = {s["name"]: s for s in summary["steps"]}
    assert summary["finished"] is True and list(steps)[2:] == ["first", "sleeper", "third"]
    assert steps["first"]["status"] == "ok" and steps["first"]["outputs"]["first.json"] == {"rows": 1, "ok": 1,
                                                                                           "finished": True}
    assert steps["sleeper"]["status"] == "timeout" and steps["sleeper"]["seconds"] < 3 + gpu_check.INTERRUPT_GRACE_S
    assert "started" in (out / steps["sleeper"]["log"]).read_text()
    assert steps["third"]["status"] == "ok" and (out / "third.json").is_file()
