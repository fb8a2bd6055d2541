"""Run in the serve venv by tests/test_serve.py: N one-sample requests sent at once (binary tensors,
tritonclient), SIGTERM to the server once some wait in its queue (its metrics say so), then
every request's outcome, as JSON: {"pending_at_signal", "outcomes": [[batch, out] or "error"]}."""
import json
import os
import signal
import sys
import time
import urllib.request

import gevent
import numpy as np
import tritonclient.http as http

url, metrics, model, server_pid, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
dims = {"text": 300, "audio": 74, "vision": 47}
rng = np.random.default_rng(0)


def request():
    inputs = []
    for m, d in dims.items():
        tensor = http.InferInput(m, [1, 50, d], "FP32")
        tensor.set_data_from_numpy(rng.standard_normal((1, 50, d), dtype=np.float32), binary_data=True)
        inputs.append(tensor)
    return inputs


def pending() -> float:
    with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("nv_inference_pending_request_count{"))


client = http.InferenceServerClient(url, concurrency=n)
calls = [client.async_infer(model, request()) for _ in range(n)]
deadline, waiting = time.monotonic() + 30, 0.0
while waiting < 3 and time.monotonic() < deadline:
    waiting = pending()
    gevent.sleep(0.005)  # tritonclient's async requests are greenlets: they are sent while this one waits
os.kill(server_pid, signal.SIGTERM)
outcomes = []
for call in calls:
    try:
        outcomes.append(list(call.get_result().as_numpy("score").shape))
    except Exception as e:  # what a request cut off by the shutdown gets
        outcomes.append(f"error: {str(e).splitlines()[0][:200]}")
print(json.dumps({"pending_at_signal": waiting, "outcomes": outcomes}))
