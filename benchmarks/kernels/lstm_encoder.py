"""Benchmark of MIMIC's three BiLSTM encoders on a CUDA GPU (paper Eq. 1, kernels/lstm.py):
cuDNN nn.LSTM (the model's path) against the Triton recurrence kernel; and of MIMIC end to
end: eager, torch.compile'd, and on Triton kernels (encoders + fused head), eager and compiled.

    python benchmarks/kernels/lstm_encoder.py --out benchmarks/results/lstm_encoder.json
    python benchmarks/kernels/lstm_encoder.py --dtypes fp32,bf16 --batch-sizes 1,8 --parts encoder --warps 8

Encoder rows (preset mosi: d = 300, 74, 47; L = 50 per modality), per dtype, provider, batch
size B and lengths ("full": none given; "ragged": per-sample lengths in [1, 50], for which the
model's nn.LSTM path runs each LSTM twice, the kernel once): GPU time by
triton.testing.do_bench (L2 flushed before each run; p20, p50, p80), host time per call (a loop
of calls, then one synchronize: what a Python caller waits, launch overhead included), and the
kernel's max error against the fp32 reference on the same inputs. Model rows (preset mosi, L =
50, fp32): the same times for `model(text, audio, vision)` in inference mode, and the output's
max error against eager (PyTorch's defaults: cuDNN's fp32 LSTMs in TF32, recorded as
`cudnn_rnn_fp32_precision`). The compiled providers use `--compile-mode` (default reduce-overhead:
CUDA graphs, what a latency-bound caller at B = 1 wants), one dynamic-batch graph each.
Plus an empty Triton kernel's launch, and the issue's targets (MIMIC at B = 1: ≤ 0.1 ms on
Triton kernels, faster than eager). TensorRT and AOTInductor (.pt2) rows are not here:
`mimic-edge bench` measures them in the same gpu_check run (steps bench_cuda and aoti_cuda).

The JSON is rewritten after every row, so a run cut short keeps what it measured; rows left
when --budget-s is spent are recorded as skipped. Without a GPU: says so and exits 0.
Exit 1 when the kernel's error exceeds its dtype's tolerance or a Triton provider fails.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from mimic_edge.bench.kernel_bench import empty_launch, gpu_times_us, host_time_us
from mimic_edge.bench.report import machine_info
from mimic_edge.io import atomic_write_json

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# max |h − h_fp32| accepted from the kernel (|h| < 1: absolute). fp32: 3×TF32 dots, the
# interpreter measures 2.4e-7; tf32/fp16: unit roundoff u = 4.9e-4, bf16: 3.9e-3; about 4u
TOLERANCES = {"fp32": 1e-5, "tf32": 2e-3, "fp16": 2e-3, "bf16": 1.6e-2}
ENCODER_PROVIDERS = ("cudnn", "triton")
MODEL_PROVIDERS = ("eager", "triton", "compiled", "triton-compiled")  # the compiles last: they take the most time
DIMS = (300, 74, 47)  # preset mosi
SEQ_LEN = 50


def encoder_inputs(batch: int, dtype: torch.dtype, lengths: str):
    """nn.LSTM modules (their default initialisation), inputs (B, 50, d_m) and lengths, on CUDA."""
    torch.manual_seed(batch)
    modules = [torch.nn.LSTM(d, 32, batch_first=True, bidirectional=True).cuda().to(dtype) for d in DIMS]
    xs = [torch.randn(batch, SEQ_LEN, d, device="cuda", dtype=dtype) for d in DIMS]
    ns = [torch.randint(1, SEQ_LEN + 1, (batch,), device="cuda") for _ in DIMS] if lengths == "ragged" else [None] * 3
    return modules, xs, ns


def setup_encoder(provider: str, modules, xs, ns):
    """A no-argument call of the three BiLSTMs for `provider`, in inference mode (no autograd records)."""
    if provider == "cudnn":
        from mimic_edge.models.common import bilstm

        def call():
            return [bilstm(lstm, x, n)[0] for lstm, x, n in zip(modules, xs, ns)]
    else:
        from mimic_edge.kernels import bilstm_encoders

        weights = [[w for d in lstm.all_weights for w in d] for lstm in modules]

        def call():
            return bilstm_encoders(xs, weights, ns)

    def fn():
        with torch.inference_mode():
            return call()

    return fn


def setup_model(provider: str, compile_mode: str):
    """MIMIC (preset mosi, seeded weights, eval) for `provider`, one per run, reused for every B."""
    from mimic_edge import build_model

    torch.manual_seed(0)
    eager = build_model("mimic").cuda().eval()
    if provider in ("eager", "compiled"):
        model = eager
    else:
        model = build_model("mimic", encoder="triton", fusion_head="triton").cuda().eval()
        model.load_state_dict(eager.state_dict())
    if provider.endswith("compiled"):
        model = torch.compile(model, mode=compile_mode, dynamic=True)
    return model, eager


def encoder_error(got: list[torch.Tensor], modules, xs, ns) -> float:
    """max |got − the fp32 reference| on the same inputs (cuDNN in IEEE fp32, not its default TF32)."""
    from mimic_edge.kernels import bilstm_encoders_reference

    weights = [[w.detach().float() for d in lstm.all_weights for w in d] for lstm in modules]
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        expected = bilstm_encoders_reference([x.float() for x in xs], weights, ns)
    return max(float((g.float() - e).abs().max()) for g, e in zip(got, expected))


def timed(fn, args) -> dict:
    p20, p50, p80 = gpu_times_us(fn, args.warmup_ms, args.rep_ms)
    return {"p20_us": p20, "p50_us": p50, "p80_us": p80, "host_us": host_time_us(fn, p50)}


def measure_encoder(provider: str, dtype_name: str, lengths: str, batch: int, args) -> dict:
    """One encoder row's numbers; the kernel's error is checked against its tolerance."""
    modules, xs, ns = encoder_inputs(batch, DTYPES[dtype_name], lengths)
    fn = setup_encoder(provider, modules, xs, ns)
    err = encoder_error(fn(), modules, xs, ns)  # also the warm-up: compiles here
    result = {**timed(fn, args), "max_err": err}
    if provider == "triton" and not err <= TOLERANCES[dtype_name]:
        result["status"] = f"ok, but error above tolerance {TOLERANCES[dtype_name]:.0e}"
    return result


def measure_model(model, eager, batch: int, args) -> dict:
    """One model row's numbers: MIMIC on (B, 50, d_m) inputs, error relative to eager's output scale."""
    from mimic_edge.config import MODALITIES

    g = torch.Generator(device="cuda").manual_seed(batch)
    xs = [torch.randn(batch, SEQ_LEN, eager.config.dims[m], device="cuda", generator=g) for m in MODALITIES]

    def fn():
        with torch.inference_mode():
            return model(*xs)

    with torch.inference_mode():
        expected = eager(*xs)
    err = float((fn() - expected).abs().max() / expected.abs().max())  # also the warm-up: compiles here
    return {**timed(fn, args), "max_err": err}


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets for MIMIC at B = 1 on Triton kernels, from the measured rows."""
    ok = {(r["provider"], r["batch_size"]): r for r in rows if r["part"] == "model" and r["status"] == "ok"}
    checks = []
    for provider in ("triton", "triton-compiled"):
        row = ok.get((provider, 1))
        if not row:
            continue
        checks.append({"provider": provider, "batch_size": 1, "target": "<= 100 us (p50)",
                       "value_us": row["p50_us"], "met": row["p50_us"] <= 100.0})
        base = ok.get(("eager", 1))
        if base:
            ratio = base["p50_us"] / row["p50_us"]
            checks.append({"provider": provider, "batch_size": 1, "target": "faster than eager (cuDNN)",
                           "ratio": ratio, "met": ratio > 1.0})
    return checks


def print_row(row: dict) -> None:
    label = (f"{row['part']:<7} {row['dtype']:>5} {row['provider']:<16} {row.get('lengths', 'full'):<6} "
             f"{row['batch_size']:>5}")
    if not row["status"].startswith("ok"):
        print(f"{label}  {row['status']}")
        return
    print(f"{label} {row['p50_us']:>9.1f} {row['p20_us']:>8.1f}-{row['p80_us']:<8.1f} {row['host_us']:>9.1f} "
          f"{row['max_err']:>9.1e}  {'' if row['status'] == 'ok' else row['status']}")


def run(args) -> int:
    os.environ["TRITON_INTERPRET"] = "0"  # real kernels: before the first Triton kernel is defined
    started = time.perf_counter()
    record = {"machine": machine_info("cuda"), "args": vars(args), "rows": [], "empty_launch_us": None, "targets": [],
              "cudnn_rnn_fp32_precision": torch.backends.cudnn.rnn.fp32_precision}
    failed = False

    def save():
        record["targets"] = targets(record["rows"])
        atomic_write_json(args.out, record)

    def attempt(row: dict, measure) -> None:
        nonlocal failed
        if time.perf_counter() - started > args.budget_s:
            row["status"] = f"skipped: time budget ({args.budget_s:.0f} s) spent"
        else:
            try:
                row.update({"status": "ok", **measure()})
            except Exception as error:  # a provider that cannot run is a row, not a crash
                row["status"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
            finally:
                torch.cuda.empty_cache()
            failed = failed or row["provider"].startswith("triton") and row["status"] != "ok"
        record["rows"].append(row)
        print_row(row)
        save()

    from mimic_edge.kernels import lstm

    lstm.GPU_BLOCK_B = args.block_b or lstm.GPU_BLOCK_B  # read at each launch: other settings for comparison
    lstm.GPU_WARPS = args.warps or lstm.GPU_WARPS
    record["launch"] = {"block_b": lstm.GPU_BLOCK_B, "num_warps": lstm.GPU_WARPS}
    print(f"{record['machine']['gpu']}, torch {torch.__version__}, triton {record['machine']['triton']}, "
          f"kernel: {lstm.GPU_BLOCK_B} samples × {lstm.GPU_WARPS} warps per program")
    empty = empty_launch()
    empty()
    record["empty_launch_us"] = gpu_times_us(empty, args.warmup_ms, args.rep_ms)[1]
    print(f"empty Triton kernel: {record['empty_launch_us']:.1f} µs GPU")
    print(f"{'part':<7} {'dtype':>5} {'provider':<16} {'len':<6} {'B':>5} {'p50 µs':>9} {'p20-p80 µs':>17} "
          f"{'host µs':>9} {'max err':>9}")
    if "encoder" in args.parts:
        for dtype_name in args.dtypes:
            # fp32 rows: IEEE fp32 for cuDNN too (its fp32 LSTMs default to TF32) and 3×TF32 dots in
            # the kernel; tf32 rows: TF32 for both
            tf32 = dtype_name == "tf32"
            torch.set_float32_matmul_precision("high" if tf32 else "highest")
            with torch.backends.cudnn.flags(enabled=True, allow_tf32=tf32):
                for lengths in ("ragged", "full"):
                    for provider in ENCODER_PROVIDERS:
                        for batch in args.batch_sizes:
                            row = {"part": "encoder", "dtype": dtype_name, "provider": provider, "lengths": lengths,
                                   "batch_size": batch}
                            attempt(row, lambda: measure_encoder(provider, dtype_name, lengths, batch, args))
        torch.set_float32_matmul_precision("highest")
    if "model" in args.parts:
        for provider in args.model_providers:
            models = []  # built on the provider's first row, reused for every B
            for batch in args.batch_sizes:
                def measure():
                    models[:] = models or setup_model(provider, args.compile_mode)
                    return measure_model(*models, batch, args)

                attempt({"part": "model", "dtype": "fp32", "provider": provider, "batch_size": batch}, measure)
    for check in record["targets"]:
        value = f"{check['value_us']:.1f} µs" if "value_us" in check else f"{check['ratio']:.2f}x"
        print(f"target {check['provider']} B={check['batch_size']}: {check['target']}: {value}, "
              f"{'met' if check['met'] else 'NOT met'}")
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s)")
    return 1 if failed else 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python benchmarks/kernels/lstm_encoder.py --out benchmarks/results/lstm_encoder.json\n"
               "  python benchmarks/kernels/lstm_encoder.py --dtypes fp32,tf32,bf16,fp16 --parts encoder --batch-sizes 1,1024")
    parser.add_argument("--out", default="benchmarks/results/lstm_encoder.json", help="JSON file to write")
    parser.add_argument("--batch-sizes", default="1,8,64,1024",
                        type=lambda text: [int(b) for b in text.split(",")], help="comma-separated")
    parser.add_argument("--dtypes", default="fp32,bf16", type=lambda text: text.split(","),
                        help=f"encoder rows: comma-separated, among {', '.join(DTYPES)} (model rows: fp32)")
    parser.add_argument("--parts", default="encoder,model", type=lambda text: text.split(","),
                        help="encoder, model or both")
    parser.add_argument("--model-providers", default=",".join(MODEL_PROVIDERS), type=lambda text: text.split(","),
                        help=f"model rows: comma-separated, among {', '.join(MODEL_PROVIDERS)}")
    parser.add_argument("--compile-mode", default="reduce-overhead", help="torch.compile mode of the compiled providers")
    parser.add_argument("--block-b", type=int, default=None, choices=(16, 32, 64),
                        help="samples per kernel program (default: the kernel's, 16; others spill, see "
                             "benchmarks/results/lstm_encoder-ptxas-*.md)")
    parser.add_argument("--warps", type=int, default=None, choices=(1, 2, 4, 8),
                        help="warps per kernel program (default: the kernel's, 4)")
    parser.add_argument("--warmup-ms", type=int, default=25, help="do_bench warm-up time")
    parser.add_argument("--rep-ms", type=int, default=100, help="do_bench measuring time")
    parser.add_argument("--budget-s", type=float, default=150.0,
                        help="stop measuring after this many seconds; the rest is recorded as skipped")
    args = parser.parse_args(argv)
    unknown = [d for d in args.dtypes if d not in DTYPES]
    if unknown:
        parser.error(f"unknown dtype(s) {unknown}: expected some of {list(DTYPES)}")
    parts = [p for p in args.parts if p not in ("encoder", "model")]
    if parts:
        parser.error(f"unknown part(s) {parts}: expected encoder, model or both")
    providers = [p for p in args.model_providers if p not in MODEL_PROVIDERS]
    if providers:
        parser.error(f"unknown model provider(s) {providers}: expected some of {list(MODEL_PROVIDERS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing measured (the BiLSTM encoder's benchmark needs one)")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
