"""Throughput benchmark of brian_dendrite (784-500-10, real MNIST, the paper's phases).

Prints, per target (Cython runtime, cpp_standalone, the numpy rate model): ms per
training example, ms per 250-ms test image, synaptic events per example and ns
per event, cold and warm build (compile) times and peak RSS. Every measurement
runs in a fresh process (Brian2's device is global state; peak RSS is per
process); figures are medians over the repeated chunks of one process. These
machines are shared and noisy: compare ratios from one run, not absolute times
across runs.

    python benchmarks/benchmark.py --data-dir ../shared/data/mnist
    python benchmarks/benchmark.py --targets cpp_standalone --chunk 1000 --chunks 4
    python benchmarks/benchmark.py --profile --chunk 1000 --chunks 2   # where the time goes
    # the rate model against another source tree (e.g. `git archive HEAD | tar -x -C /tmp/rate_old`),
    # alternating the two in fresh processes, with one BLAS thread:
    python benchmarks/benchmark.py --targets rate --rate-baseline /tmp/rate_old --ab-rounds 6
    python benchmarks/benchmark.py --targets cpp_standalone --generic-pathways   # Brian2's generic synapse code
    python benchmarks/benchmark.py --targets cpp_standalone --scalar-exp   # the rate loops with scalar exp
    # the standalone warm start (import + construction on a cached build) against another tree:
    python benchmarks/benchmark.py --warm-baseline /tmp/old_tree --ab-rounds 6
    # the standalone training and test CPU time per example against another tree (alternating fresh
    # processes, each tree with its own cached build under --warm-root):
    python benchmarks/benchmark.py --standalone-baseline /tmp/old_tree --ab-rounds 6 --chunks 2

This is a measurement script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _events_per_example(net, images, labels) -> float:
    """Synaptic events per training example from one recorded chunk (spikes x fan-out)."""
    rec = net.record(images, labels, mode="train")
    sizes = rec.layer_sizes
    names = list(sizes)
    events = 0
    for k, layer in enumerate(names[:-1]):
        events += len(rec.spikes[layer].indices) * sizes[names[k + 1]]  # feedforward
    hidden = [n for n in names if n.startswith("hidden")]
    events += len(rec.spikes["output"].indices) * sum(sizes[h] for h in hidden)  # feedback
    return events / len(labels)


def _exp_option(args) -> dict:
    """``vector_exp=False`` with ``--scalar-exp``; nothing otherwise (a baseline tree may predate the option)."""
    return {"vector_exp": False} if args.scalar_exp else {}


def _warm_worker(args) -> dict:
    """Import the package and construct a standalone network on the build in ``args.build_dir``."""
    t0, c0 = time.perf_counter(), time.process_time()
    from brian_dendrite.model import load_model
    from brian_dendrite.simulation import SpikingNetwork

    t1, c1 = time.perf_counter(), time.process_time()
    import brian_dendrite

    params = load_model(args.model)
    net = SpikingNetwork(params, seed=0, chunk_size=args.chunk, device="cpp_standalone", build_dir=args.build_dir,
                         dense_pathways=not args.generic_pathways, **_exp_option(args))
    t2, c2 = time.perf_counter(), time.process_time()
    return {"target": "warm", "code": os.path.dirname(brian_dendrite.__file__), "import_s": t1 - t0,
            "import_cpu_s": c1 - c0, "construct_s": t2 - t1, "construct_cpu_s": c2 - c1, "build_s": net.build_seconds,
            "build_reused": getattr(net, "build_reused", None)}


def worker(args) -> dict:
    if args.target == "warm":
        return _warm_worker(args)
    import numpy as np

    from brian_dendrite.datasets import load_mnist
    from brian_dendrite.model import load_model

    params = load_model(args.model)
    train = load_mnist("train", data_dir=args.data_dir)
    test = load_mnist("test", data_dir=args.data_dir)
    out = {"target": args.target, "model": args.model, "chunk": args.chunk}
    n = args.chunk
    if args.target == "rate":
        import brian_dendrite
        from brian_dendrite.model import initial_weights
        from brian_dendrite.rate import RateNetwork

        out["code"] = os.path.dirname(brian_dendrite.__file__)
        net = RateNetwork(params, initial_weights(params, np.random.default_rng(0)))
        per, per_cpu = [], []
        for k in range(args.chunks):
            t0, c0 = time.perf_counter(), time.process_time()
            net.train(train.images[k * n : (k + 1) * n], train.labels[k * n : (k + 1) * n])
            per.append(1000 * (time.perf_counter() - t0) / n)
            per_cpu.append(1000 * (time.process_time() - c0) / n)
        t0 = time.perf_counter()
        net.test_error(test.images, test.labels)
        out["test_10000_images_s"] = time.perf_counter() - t0
        out["ms_per_train_example"] = float(np.median(per))
        out["cpu_ms_per_train_example"] = float(np.median(per_cpu))
        out["ms_per_test_image"] = 1000 * out["test_10000_images_s"] / 10000
        out["peak_rss_mb"] = _peak_rss_mb()
        return out
    from brian_dendrite.simulation import SpikingNetwork

    t0 = time.perf_counter()
    if args.target == "cpp_standalone":
        net = SpikingNetwork(params, seed=0, chunk_size=n, device="cpp_standalone", build_dir=args.build_dir,
                             profile=args.profile, dense_pathways=not args.generic_pathways, **_exp_option(args))
        out["build_s"] = net.build_seconds
    else:
        import brian2

        brian2.prefs.codegen.target = "cython"
        if args.build_dir:
            brian2.prefs.codegen.runtime.cython.cache_dir = args.build_dir
        net = SpikingNetwork(params, seed=0, chunk_size=n, test_chunk_size=args.test_images)
    out["setup_s"] = time.perf_counter() - t0
    per, per_cpu = [], []
    first = None
    for k in range(args.chunks):
        t0, c0 = time.perf_counter(), time.process_time()
        net.train_chunk(train.images[k * n : (k + 1) * n], train.labels[k * n : (k + 1) * n], key=(0, k))
        seconds = time.perf_counter() - t0
        # CPU time of the simulation: the binary's (standalone) or this process's (runtime)
        cpu = net.timings["binary_cpu_s"] if args.target == "cpp_standalone" else time.process_time() - c0
        if k == 0:
            first = seconds
        per.append(1000 * seconds / n)
        per_cpu.append(1000 * cpu / n)
    if args.profile:
        total = args.chunks * n
        out["profile_ms_per_example"] = {k: 1000 * v / total for k, v in net.profile_seconds.items()}
        # a test block with one image: 250 active steps, the rest idle (silent input)
        net.profile_seconds.clear()
        net.test(test.images[:1], test.labels[:1])
        steps = net.last_schedule.capacity
        out["profile_idle_us_per_step"] = {k: 1e6 * v / steps for k, v in net.profile_seconds.items()}
    # the first runtime chunk includes code generation and the Cython compile
    out["first_chunk_s"] = first
    from brian_dendrite.model import draw_phase_lengths

    phases = draw_phase_lengths(10**5, params.protocol, params.cell.dt, np.random.default_rng(1))
    out["steps_per_train_example"] = 2 * float(phases.mean())  # forward + target phase
    out["ms_per_train_example"] = float(np.median(per[1:] if len(per) > 1 else per))
    out["cpu_ms_per_train_example"] = float(np.median(per_cpu[1:] if len(per_cpu) > 1 else per_cpu))
    out["ms_per_train_example_all_chunks"] = per
    m = args.test_images
    t0 = time.perf_counter()
    net.test(test.images[:m], test.labels[:m])
    first_test = time.perf_counter() - t0

    def timed_test(images, labels):
        t0, c0 = time.perf_counter(), time.process_time()
        net.test(images, labels)
        cpu = net.timings["binary_cpu_s"] if args.target == "cpp_standalone" else time.process_time() - c0
        return time.perf_counter() - t0, cpu

    # A test runs in blocks of test_chunk_size images, each one run() of a fixed number of steps
    # (a partial block is padded with idle steps), so time one full block: no padding.
    block = net.test_chunk_size
    images, labels = test.images[m : m + block], test.labels[m : m + block]
    wall, cpu = timed_test(images, labels)
    out["test_block_images"] = block
    out["ms_per_test_image"] = 1000 * wall / block
    out["cpu_ms_per_test_image"] = 1000 * cpu / block
    # Per-step costs: an active test step (a full block / its steps) and an idle step (silent
    # input; the biases still drive some spikes), from a block holding one image and
    # block*250 - 250 idle steps.
    test_steps = int(round(float(params.protocol.test_duration / params.cell.dt)))
    _, cpu_one = timed_test(test.images[:1], test.labels[:1])
    active = cpu / (block * test_steps)
    idle_steps = block * test_steps - test_steps
    out["cpu_us_per_active_test_step"] = 1e6 * active
    out["cpu_us_per_idle_step"] = 1e6 * (cpu_one - test_steps * active) / idle_steps if idle_steps else float("nan")
    out["first_test_s"] = first_test
    if args.target != "cpp_standalone":
        ev = _events_per_example(net, train.images[:200], train.labels[:200])
        out["synaptic_events_per_example"] = ev
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _fill_events(results):
    """Events per example are counted on the runtime target (monitors); the work is the same."""
    ev = next((r["synaptic_events_per_example"] for r in results if r.get("synaptic_events_per_example")), None)
    for r in results:
        if ev and "ms_per_train_example" in r and r["target"] != "rate":
            r["synaptic_events_per_example"] = ev
            r["ns_per_event"] = 1e6 * r.get("cpu_ms_per_train_example", r["ms_per_train_example"]) / ev


def _run_worker(args, target: str, chunks: int, test_images: int, build: str, what: str, extra=(),
                env=None) -> dict | None:
    """One measurement in a fresh process (environment ``env``, default this one's); its JSON result, or None."""
    if args.generic_pathways:
        extra = (*extra, "--generic-pathways")
    if args.scalar_exp:
        extra = (*extra, "--scalar-exp")
    cmd = [sys.executable, __file__, "--worker", "--target", target, "--model", args.model, *extra,
           "--chunk", str(args.chunk), "--chunks", str(chunks), "--test-images", str(test_images),
           "--build-dir", build]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"{what} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rate_env(args, code_dir: str | None = None) -> dict:
    """The rate worker's environment: ``args.blas_threads`` BLAS threads, ``code_dir`` first on the path."""
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(args.blas_threads)
    if code_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join([code_dir, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _rate_ab(args) -> int:
    """The rate model of ``args.rate_baseline`` (A) against this tree's (B), alternating in fresh processes."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    codes = {"A (baseline)": os.path.abspath(args.rate_baseline), "B (this tree)": here}
    runs: dict[str, list[dict]] = {name: [] for name in codes}
    print(f"rate A/B, {args.model}, {args.ab_rounds} rounds x {args.chunks} chunks of {args.chunk} examples, "
          f"{args.blas_threads} BLAS thread(s); load average before {os.getloadavg()}")
    for k in range(args.ab_rounds):
        for name in (list(codes) if k % 2 == 0 else list(codes)[::-1]):  # alternate who goes first
            res = _run_worker(args, "rate", args.chunks, 0, tempfile.mkdtemp(prefix="bd-bench-rate-"),
                              f"rate {name}", env=_rate_env(args, codes[name]))
            if res is None:
                return 1
            runs[name].append(res)
            print(f"round {k}  {name:<14} {res['ms_per_train_example']:.4f} ms/example (cpu "
                  f"{res['cpu_ms_per_train_example']:.4f})  test {res['ms_per_test_image']:.4f} ms/image  "
                  f"[{res['code']}]", flush=True)
    keys = ("ms_per_train_example", "cpu_ms_per_train_example", "ms_per_test_image")
    med = {name: {key: statistics.median(r[key] for r in rs) for key in keys} for name, rs in runs.items()}
    print(f"\nmedians over rounds; load average after {os.getloadavg()}")
    print(f"{'code':<16}{'ms/train ex':>12}{'cpu ms/ex':>11}{'ms/test img':>12}")
    for name, m in med.items():
        print(f"{name:<16}{m['ms_per_train_example']:>12.4f}{m['cpu_ms_per_train_example']:>11.4f}"
              f"{m['ms_per_test_image']:>12.4f}")
    a, b = med.values()
    print(f"speed-up B/A: training {a['ms_per_train_example'] / b['ms_per_train_example']:.2f}x (wall), "
          f"{a['cpu_ms_per_train_example'] / b['cpu_ms_per_train_example']:.2f}x (cpu); test "
          f"{a['ms_per_test_image'] / b['ms_per_test_image']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": med}, f, indent=2)
    return 0


def _warm_ab(args) -> int:
    """Warm starts (cached build) of ``args.warm_baseline`` (A) and this tree (B), alternating fresh processes.

    Each code gets its own build directory under ``args.warm_root``, built (or
    brought up to date) by one untimed process first. Every timed process imports
    the package and constructs the network; the CPU time of the process and its
    children (``make``) comes from ``getrusage(RUSAGE_CHILDREN)``.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    codes = {"A (baseline)": os.path.abspath(args.warm_baseline), "B (this tree)": here}
    root = args.warm_root or tempfile.mkdtemp(prefix="bd-bench-warm-")
    builds = {name: os.path.join(root, "A" if name.startswith("A") else "B") for name in codes}
    print(f"warm start A/B, {args.model}, chunk {args.chunk}, {args.ab_rounds} rounds, builds under {root}; "
          f"load average before {os.getloadavg()}", flush=True)

    def one(name):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = _run_worker(args, "warm", 1, 0, builds[name], f"warm start {name}", env=_rate_env(args, codes[name]))
        if res is not None:
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            res["process_s"] = time.perf_counter() - t0
            res["process_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return res

    for name in codes:  # untimed: build, or bring the build up to date
        if one(name) is None:
            return 1
    runs: dict[str, list[dict]] = {name: [] for name in codes}
    for k in range(args.ab_rounds):
        for name in (list(codes) if k % 2 == 0 else list(codes)[::-1]):
            res = one(name)
            if res is None:
                return 1
            runs[name].append(res)
            print(f"round {k}  {name:<14} process {res['process_s']:.2f} s (cpu {res['process_cpu_s']:.2f})  "
                  f"import {res['import_s']:.2f}  construct {res['construct_s']:.2f} (cpu {res['construct_cpu_s']:.2f})"
                  f"  build {res['build_s']:.2f}  reused {res['build_reused']}", flush=True)
    keys = ("process_s", "process_cpu_s", "import_s", "construct_s", "construct_cpu_s", "build_s")
    med = {name: {key: statistics.median(r[key] for r in rs) for key in keys} for name, rs in runs.items()}
    print(f"\nmedians over rounds (seconds); load average after {os.getloadavg()}")
    print(f"{'code':<16}" + "".join(f"{key:>16}" for key in keys))
    for name, m in med.items():
        print(f"{name:<16}" + "".join(f"{m[key]:>16.2f}" for key in keys))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": med}, f, indent=2)
    return 0


def _standalone_ab(args) -> int:
    """Standalone training and test of ``args.standalone_baseline`` (A) and this tree (B), alternating fresh processes.

    Each code gets its own build directory under ``args.warm_root`` (built by an untimed
    first process, then reused); every timed process trains ``args.chunks`` chunks
    (median over chunks 2..) and tests one full test block, and reports the binary's
    CPU time (``getrusage`` of the child) per training example and per test image.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    codes = {"A (baseline)": os.path.abspath(args.standalone_baseline), "B (this tree)": here}
    root = args.warm_root or tempfile.mkdtemp(prefix="bd-bench-sa-")
    builds = {name: os.path.join(root, "A" if name.startswith("A") else "B") for name in codes}
    print(f"standalone A/B, {args.model}, {args.ab_rounds} rounds x {args.chunks} chunks of {args.chunk} examples, "
          f"builds under {root}; load average before {os.getloadavg()}", flush=True)

    def one(name, chunks):
        return _run_worker(args, "cpp_standalone", chunks, 1, builds[name], f"standalone {name}",
                           env=_rate_env(args, codes[name]))

    for name in codes:  # untimed: build, or bring the build up to date
        if one(name, 1) is None:
            return 1
    runs: dict[str, list[dict]] = {name: [] for name in codes}
    for k in range(args.ab_rounds):
        for name in (list(codes) if k % 2 == 0 else list(codes)[::-1]):
            res = one(name, args.chunks)
            if res is None:
                return 1
            runs[name].append(res)
            print(f"round {k}  {name:<14} train {res['ms_per_train_example']:.3f} ms/example (cpu "
                  f"{res['cpu_ms_per_train_example']:.3f})  test {res['ms_per_test_image']:.3f} ms/image (cpu "
                  f"{res['cpu_ms_per_test_image']:.3f})  idle step cpu {res['cpu_us_per_idle_step']:.2f} us  "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    keys = ("ms_per_train_example", "cpu_ms_per_train_example", "ms_per_test_image", "cpu_ms_per_test_image",
            "cpu_us_per_idle_step")
    med = {name: {key: statistics.median(r[key] for r in rs) for key in keys} for name, rs in runs.items()}
    print(f"\nmedians over rounds; load average after {os.getloadavg()}")
    print(f"{'code':<16}" + "".join(f"{key:>24}" for key in keys))
    for name, m in med.items():
        print(f"{name:<16}" + "".join(f"{m[key]:>24.3f}" for key in keys))
    a, b = med.values()
    print(f"ratio B/A (cpu): training {b['cpu_ms_per_train_example'] / a['cpu_ms_per_train_example']:.3f}, "
          f"test {b['cpu_ms_per_test_image'] / a['cpu_ms_per_test_image']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": med}, f, indent=2)
    return 0


def _profile(args) -> int:
    """One profiled standalone process; prints the code objects by ms per training example."""
    res = _run_worker(args, "cpp_standalone", args.chunks, 10, tempfile.mkdtemp(prefix="bd-bench-profile-"),
                      "profiled run", extra=("--profile",))
    if res is None:
        return 1
    prof = res.pop("profile_ms_per_example")
    total = sum(prof.values())
    print(f"profile of {args.model}, cpp_standalone, {args.chunks} chunks x {args.chunk} examples "
          f"(profiled binary: {res['cpu_ms_per_train_example']:.3f} CPU ms per example, "
          f"{total:.3f} ms per example inside code objects)")
    print(f"{'code object':<52}{'ms/example':>11}{'share':>8}")
    for name, ms in sorted(prof.items(), key=lambda kv: -kv[1]):
        print(f"{name:<52}{ms:>11.4f}{100 * ms / total:>7.1f}%")
    idle = res.pop("profile_idle_us_per_step")
    print(f"\nmostly idle steps (a test block with one image, then silent input): {sum(idle.values()):.2f} us per step "
          "inside code objects")
    print(f"{'code object':<52}{'us/step':>11}")
    for name, us in sorted(idle.items(), key=lambda kv: -kv[1])[:25]:
        print(f"{name:<52}{us:>11.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"run": res, "profile_ms_per_example": prof, "profile_idle_us_per_step": idle}, f, indent=2)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("BRIAN_DENDRITE_DATA"))
    parser.add_argument("--model", default="one_hidden")
    parser.add_argument("--targets", default="rate,cython,cpp_standalone")
    parser.add_argument("--chunk", type=int, default=1000, help="examples per run() / chunk")
    parser.add_argument("--chunks", type=int, default=4, help="chunks per process (median over chunks 2..)")
    parser.add_argument("--test-images", type=int, default=400)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--profile", action="store_true",
                        help="instead: time every code object of a cpp_standalone training run (Brian2 profile=True) "
                             "and print ms per example for each")
    parser.add_argument("--generic-pathways", action="store_true",
                        help="cpp_standalone: build with Brian2's generic synapse code (SpikingNetwork(dense_pathways=False)) "
                             "instead of the dense-row delivery of the all-to-all pathways")
    parser.add_argument("--scalar-exp", action="store_true",
                        help="cpp_standalone: the rate loops call glibc's scalar exp (SpikingNetwork(vector_exp=False)) "
                             "instead of the SIMD exp (libmvec); both trees of an A/B run")
    parser.add_argument("--rate-baseline", default=None, metavar="DIR",
                        help="instead: time the rate model of the source tree DIR (holding brian_dendrite/) "
                             "against this tree's, alternating fresh processes (--ab-rounds), and print medians")
    parser.add_argument("--ab-rounds", type=int, default=5, help="rounds of --rate-baseline (one run of each per round)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads of the rate worker (OPENBLAS/OMP/MKL_NUM_THREADS; default 1)")
    parser.add_argument("--warm-baseline", default=None, metavar="DIR",
                        help="instead: time the standalone warm start (import + construction on a cached build) of "
                             "the source tree DIR against this tree's, alternating fresh processes (--ab-rounds)")
    parser.add_argument("--warm-root", default=None, metavar="DIR",
                        help="--warm-baseline, --standalone-baseline: keep the two builds under DIR (default: a new "
                             "temporary directory)")
    parser.add_argument("--standalone-baseline", default=None, metavar="DIR",
                        help="instead: time cpp_standalone training and test (binary CPU per example and per test "
                             "image) of the source tree DIR against this tree's, alternating fresh processes "
                             "(--ab-rounds)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--target", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--build-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if args.profile:
        return _profile(args)
    if args.rate_baseline:
        return _rate_ab(args)
    if args.warm_baseline:
        return _warm_ab(args)
    if args.standalone_baseline:
        return _standalone_ab(args)
    results = []
    for target in args.targets.split(","):
        runs = ["warm"] if target == "rate" else ["cold", "warm"]
        build = tempfile.mkdtemp(prefix=f"bd-bench-{target}-")
        for phase in runs:
            res = _run_worker(args, target, args.chunks if phase == "warm" else 1, args.test_images, build,
                              f"{target} ({phase})", env=_rate_env(args) if target == "rate" else None)
            if res is None:
                return 1
            res["build"] = phase
            results.append(res)
            print(json.dumps(res), flush=True)
    _fill_events(results)
    print("\nsummary (medians; cold = empty build cache, warm = reused build; ns/event from CPU time)")
    print(f"{'target':<16}{'build':<6}{'ms/train ex':>12}{'cpu ms/ex':>10}{'ms/test img':>12}{'events/ex':>12}"
          f"{'ns/event':>10}{'compile s':>10}{'peak MB':>9}")
    for r in results:
        compile_s = r.get("build_s", r.get("first_chunk_s"))
        print(f"{r['target']:<16}{r['build']:<6}{r['ms_per_train_example']:>12.2f}"
              f"{r.get('cpu_ms_per_train_example', float('nan')):>10.2f}{r['ms_per_test_image']:>12.2f}"
              f"{r.get('synaptic_events_per_example', float('nan')):>12.0f}{r.get('ns_per_event', float('nan')):>10.2f}"
              f"{(compile_s if compile_s is not None else float('nan')):>10.1f}{r['peak_rss_mb']:>9.0f}")
    print("\nper-step CPU cost (us): an active 250-ms test step (one full test block / its steps), an idle step"
          " (silent input: the per-step work of all neuron groups and code objects, plus the spikes that the"
          " hidden and output biases alone cause), and the"
          " training cost per step (CPU per example / mean steps per example)")
    for r in results:
        if "cpu_us_per_idle_step" in r:
            train_step = 1000 * r["cpu_ms_per_train_example"] / r["steps_per_train_example"]
            print(f"{r['target']:<16}{r['build']:<6} test step {r['cpu_us_per_active_test_step']:>7.2f}   idle step "
                  f"{r['cpu_us_per_idle_step']:>7.2f}   training step {train_step:>7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
