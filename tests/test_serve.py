"""`mimic-edge serve` on the real Triton Inference Server (PyTriton), in a venv of its own (PyTriton
pins numpy < 2): an ONNX artifact with lengths answers concurrent requests of different lengths,
padded to one, each score equal to `predict` on the request alone; readiness, metrics, and a
SIGTERM that exits 0. The venv is made from this interpreter, so the server meets the libpython
trap that `mimic_edge.serve` works around (a pyenv or conda build beside the system's)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES
from mimic_edge.export import PRECISIONS, ExportConfig, export
from mimic_edge.runtime import load

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # a venv with PyTriton (~30 s from a local index), a server start (~10 s)
SERVE_PACKAGES = ["numpy<2", "nvidia-pytriton==0.7.0", "onnxruntime==1.19.2"]


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory, project_wheel) -> Path:
    """The venv's bin folder: PyTriton, onnxruntime and the project's wheel (its core needs only those)."""
    venv = tmp_path_factory.mktemp("serve") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    installed = subprocess.run([*pip, *SERVE_PACKAGES], capture_output=True, text=True, timeout=900)
    if installed.returncode != 0:
        pytest.skip(f"could not install {SERVE_PACKAGES} with pip (no network?): {installed.stderr.strip()[-300:]}")
    subprocess.run([*pip, "--no-deps", str(project_wheel)], check=True, capture_output=True)
    return venv / "bin"


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@dataclass
class Server:
    process: subprocess.Popen
    http: int
    metrics: int
    env: dict


def start_server(serve_venv: Path, artifact: Path, cwd: Path, *options: str) -> Server:
    """`mimic-edge serve ARTIFACT` as model "mimic" on free ports, once its model reports ready."""
    http, grpc, metrics = free_ports(3)
    env = {"PATH": f"{serve_venv}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    process = subprocess.Popen([str(serve_venv / "mimic-edge"), "serve", str(artifact), "--model-name", "mimic",
                                "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
                                *options], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while get(f"http://127.0.0.1:{http}/v2/models/mimic/ready")[0] != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not become ready: {process.communicate(timeout=30)[0][-3000:]}")
        time.sleep(0.5)
    return Server(process, http, metrics, env)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return getattr(e, "code", 0), ""


def infer(port: int, model: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """One request in the KServe v2 HTTP protocol, which Triton speaks."""
    body = {"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32" if x.dtype == np.float32 else "INT64",
                        "data": x.ravel().tolist()} for name, x in inputs.items()]}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/{model}/infer", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        output = json.loads(response.read())["outputs"][0]
    return np.array(output["data"], np.float32).reshape(output["shape"])


def test_served_scores_equal_predict_alone_under_concurrency(serve_venv, artifacts, tmp_path):
    checkpoint = str(artifacts.checkpoint).removesuffix(".safetensors")
    artifact = export(ExportConfig(checkpoint=checkpoint, lengths=True, out=str(tmp_path), valid_samples=64),
                      log=lambda _: None).onnx_path
    started = start_server(serve_venv, artifact, tmp_path, "--max-queue-delay-us", "20000", "--max-batch", "16")
    server, http, metrics, env = started.process, started.http, started.metrics, started.env
    try:
        rng = np.random.default_rng(0)
        requests = []
        for i in range(24):  # each padded to 50 steps, its own lengths per modality
            x = {m: rng.standard_normal((1, 50, d), dtype=np.float32) for m, d in artifacts.model.config.dims.items()}
            n = {m: int(rng.integers(1, 51)) for m in MODALITIES}
            requests.append((x, n))
        served = [None] * len(requests)

        def client(indices):
            for i in indices:
                x, n = requests[i]
                served[i] = infer(http, "mimic", {**x, **{LENGTHS_INPUTS[m]: np.array([[n[m]]], np.int64)
                                                         for m in MODALITIES}})

        threads = [threading.Thread(target=client, args=(range(k, len(requests), 8),)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        local = load(artifact)
        alone = np.concatenate([local.predict(*(x[m][:, :n[m]] for m in MODALITIES)) for x, n in requests])
        # another onnxruntime (1.19.2 there) and other batches: fp32's bound for any two fp32 runs
        np.testing.assert_allclose(np.concatenate(served), alone, rtol=0, atol=PRECISIONS["fp32"].thresholds.max_abs)
        text = get(f"http://127.0.0.1:{metrics}/metrics")[1]
        counts = {name: sum(float(line.split()[-1]) for line in text.splitlines()
                            if line.startswith(name + "{") and 'model="mimic"' in line)
                  for name in ("nv_inference_request_success", "nv_inference_exec_count")}
        assert counts["nv_inference_request_success"] == len(requests), counts
        # executions ≤ requests: batches of several requests formed (how many depends on timing)
        assert 1 <= counts["nv_inference_exec_count"] <= len(requests), counts
        print(f"{len(requests)} requests in {counts['nv_inference_exec_count']:.0f} executions, max |served - alone| "
              f"{np.abs(np.concatenate(served) - alone).max():.2g}")

        # the load generator (benchmarks/serving/load.py), short, against the same server
        generator = subprocess.run([str(serve_venv / "python"), str(REPO / "benchmarks" / "serving" / "load.py"),
                               "--url", f"127.0.0.1:{http}", "--model", "mimic", "--concurrency", "1,4",
                               "--requests", "12", "--metrics-url", f"127.0.0.1:{metrics}", "--json",
                               str(tmp_path / "load.json")], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert generator.returncode == 0, generator.stdout + generator.stderr
        record = json.loads((tmp_path / "load.json").read_text())
        assert record["lengths"] is True and [level["concurrency"] for level in record["levels"]] == [1, 4]
        for level in record["levels"]:
            assert level["errors"] == 0 and level["p50_ms"] > 0 and 1 <= level["executions"] <= 12
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=120)[0]
    assert server.returncode == 0, output[-3000:]


def test_sigterm_answers_the_requests_waiting_in_the_queue(serve_venv, artifacts, tmp_path):
    """Requests accepted before SIGTERM are answered (the server drains its queue, up to --drain-s),
    then it exits 0: twelve one-sample requests held in the queue by a batcher waiting up to 5 s
    to fill a batch of 64 (so they wait whatever the machine's speed), SIGTERM once at least
    three wait there."""
    started = start_server(serve_venv, artifacts.onnx("fp32"), tmp_path, "--max-batch", "64",
                           "--max-queue-delay-us", "5000000")
    server, http, metrics, env = started.process, started.http, started.metrics, started.env
    try:
        client = subprocess.run([str(serve_venv / "python"), str(REPO / "tests" / "serve_drain_client.py"),
                                 f"127.0.0.1:{http}", f"127.0.0.1:{metrics}", "mimic", str(server.pid), "12"],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert client.returncode == 0, client.stderr[-3000:]
        result = json.loads(client.stdout)
        output = server.communicate(timeout=120)[0]
    finally:
        if server.poll() is None:
            server.kill()
    assert result["pending_at_signal"] >= 3, result  # the signal came with requests queued
    assert result["outcomes"] == [[1, 1]] * 12, result["outcomes"]
    assert server.returncode == 0, output[-3000:]
