"""mimic_edge.bench.timing: percentiles, call counts, memory."""
from mimic_edge.bench.timing import interleaved_runs, memory_in_use_mb, percentile, time_runs


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile([3.0], 99) == 3.0


def test_percentile_rank_rounds_up():
    """ceil, not round or floor: p99 of 150 is the 149th (round: 148), p50 of 3 the 2nd (floor: 1st),
    p1 of 150 the 2nd (floor: 1st)."""
    values = list(range(1, 151))
    assert percentile(values, 99) == 149 and percentile([1, 2, 3], 50) == 2 and percentile(values, 1) == 2
    assert percentile(values, 100) == 150 and percentile(values, 0) == 1


def test_time_runs_times_each_call_after_warmup():
    calls = []
    times = time_runs(lambda: calls.append(1), warmup=2, iters=5, device="cpu")
    assert len(calls) == 7 and len(times) == 5 and all(t >= 0 for t in times)


def test_memory_in_use_sees_what_is_held_not_what_was_freed():
    before = memory_in_use_mb("cpu")
    block = bytearray(64 * 2**20)
    held = memory_in_use_mb("cpu")
    del block
    after = memory_in_use_mb("cpu")
    assert held - before >= 63  # 64 MB allocated (and zeroed: the pages are touched)
    assert after - before < 1  # freed: no longer held, whatever the allocator keeps for later


def test_interleaved_runs_alternate_the_calls_in_rounds():
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b")}
    times = interleaved_runs(calls, warmup=1, rounds=3, iters=2)
    assert order == ["a", "b"] + ["a", "a", "b", "b"] * 3  # warm-up, then the rounds in turn
    assert {k: len(v) for k, v in times.items()} == {"a": 6, "b": 6} and all(t >= 0 for v in times.values() for t in v)


def test_memory_in_use_on_cuda_is_the_devices_not_torchs(monkeypatch):
    """TensorRT and ONNX Runtime allocate outside torch: the device's memory in use counts them."""
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty"))  # held, not cached
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (70 * 2**30, 80 * 2**30))  # (free, total)
    assert memory_in_use_mb("cuda") == 10 * 1024 and calls == ["sync", "empty"]
