"""Load on a served model (`mimic-edge serve`, or tritonserver on a `--format triton` repository):
N requests from C concurrent clients per concurrency level, each request one or more samples of
random lengths per modality padded to one length (with their lengths, for a model that takes
them), through tritonclient's HTTP client. Per level: requests/s, samples/s, latency p50/p99,
and from the server's Prometheus metrics the executions, so the mean batch the dynamic batcher
formed. perf_analyzer is not on PyPI: this is the project's own, on tritonclient.

    python benchmarks/serving/load.py --url localhost:8000 --model mimic --concurrency 1,4,16 --requests 200 \\
        --metrics-url localhost:8002 --json benchmarks/results/serving-<machine>-<date>.json

Run it where tritonclient is installed (the serve extra's venv has it). Client and server on one
machine share its cores: say so beside the numbers.
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import threading
import time
import urllib.request

import numpy as np

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES, OUTPUT_NAME
from mimic_edge.io import atomic_write_json
from mimic_edge.runtime.host import cpu_name, int8_isa


def model_inputs(client, model: str) -> dict[str, list]:
    """Input name → dims (batch first), from the served model's metadata."""
    return {i["name"]: [int(d) for d in i["shape"]] for i in client.get_model_metadata(model)["inputs"]}


def make_request(rng, dims: dict[str, int], samples: int, seq_len: int, lengths: bool) -> dict[str, np.ndarray]:
    x = {m: rng.standard_normal((samples, seq_len, d), dtype=np.float32) for m, d in dims.items()}
    if lengths:
        x.update({LENGTHS_INPUTS[m]: rng.integers(1, seq_len + 1, (samples, 1)).astype(np.int64) for m in MODALITIES})
    return x


def executions(metrics_url: str | None, model: str) -> float | None:
    """nv_inference_exec_count of `model`, or None without a metrics URL."""
    if not metrics_url:
        return None
    with urllib.request.urlopen(f"http://{metrics_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("nv_inference_exec_count{") and f'model="{model}"' in line)


def run_level(url: str, model: str, requests: list[dict], concurrency: int) -> dict:
    import tritonclient.http as http

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(batch: list[dict]) -> None:
        connection = http.InferenceServerClient(url)
        for request in batch:
            inputs = []
            for name, array in request.items():
                item = http.InferInput(name, list(array.shape), "FP32" if array.dtype == np.float32 else "INT64")
                item.set_data_from_numpy(array)
                inputs.append(item)
            start = time.perf_counter()
            try:
                connection.infer(model, inputs, outputs=[http.InferRequestedOutput(OUTPUT_NAME)])
            except Exception as e:  # a refused request is a result to report, not a crash
                with lock:
                    errors.append(str(e).splitlines()[0])
                continue
            with lock:
                latencies.append((time.perf_counter() - start) * 1e3)

    threads = [threading.Thread(target=client, args=(requests[k::concurrency],)) for k in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    ordered = sorted(latencies)
    samples = sum(len(r[MODALITIES[0]]) for r in requests)
    return {"concurrency": concurrency, "requests": len(requests), "errors": len(errors), "first_error": errors[:1],
            "seconds": seconds, "requests_per_s": len(latencies) / seconds, "samples_per_s": samples / seconds,
            "p50_ms": statistics.median(ordered) if ordered else None,
            "p99_ms": ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--url", default="localhost:8000", help="the server's HTTP address (default: localhost:8000)")
    parser.add_argument("--model", required=True, help="the served model's name")
    parser.add_argument("--concurrency", default="1,4,16", type=lambda t: [int(c) for c in t.split(",")])
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level (default: 200)")
    parser.add_argument("--samples", type=int, default=1, help="samples per request (default: 1)")
    parser.add_argument("--seq-len", type=int, default=50, help="the padded length of every request (default: 50)")
    parser.add_argument("--metrics-url", default=None, help="the server's metrics address, for the batches formed")
    parser.add_argument("--json", metavar="FILE", help="write the levels and the machine")
    args = parser.parse_args(argv)
    if min(args.concurrency) < 1 or args.requests < 1 or args.samples < 1 or args.seq_len < 1:
        parser.error("--concurrency, --requests, --samples and --seq-len must be positive")

    import tritonclient.http as http

    names = model_inputs(http.InferenceServerClient(args.url), args.model)
    dims = {m: names[m][-1] for m in MODALITIES}
    lengths = all(LENGTHS_INPUTS[m] in names for m in MODALITIES)
    rng = np.random.default_rng(0)
    levels = []
    for concurrency in args.concurrency:
        requests = [make_request(rng, dims, args.samples, args.seq_len, lengths) for _ in range(args.requests)]
        before = executions(args.metrics_url, args.model)
        level = run_level(args.url, args.model, requests, concurrency)
        after = executions(args.metrics_url, args.model)
        if before is not None:
            level["executions"] = after - before
            level["mean_batch_requests"] = (level["requests"] - level["errors"]) / max(after - before, 1)
        levels.append(level)
        print(f"concurrency {concurrency:>3}: {level['requests_per_s']:8.1f} req/s, p50 {level['p50_ms']:.2f} ms, "
              f"p99 {level['p99_ms']:.2f} ms" + (f", {level['mean_batch_requests']:.1f} requests per execution"
                                                 if "executions" in level else "")
              + (f", {level['errors']} errors ({level['first_error'][0]})" if level["errors"] else ""))
    record = {"machine": {"cpu": cpu_name(), "int8_isa": int8_isa(), "python": platform.python_version(),
                          "date": time.strftime("%Y-%m-%d")},
              "args": {k: v for k, v in vars(args).items() if k != "json"}, "lengths": lengths, "levels": levels}
    if args.json:
        atomic_write_json(args.json, record)
    return 1 if any(level["errors"] for level in levels) else 0


if __name__ == "__main__":
    sys.exit(main())
