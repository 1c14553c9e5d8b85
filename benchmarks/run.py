"""End-to-end benchmark: the real `armsledger run` on generated corpora, against bare spaCy.

For each size (documents), in a fresh work folder:

1. build the corpus (benchmarks/build_corpus.py);
2. full run: `armsledger run --json` in its own process (Prefect's temporary
   server, empty extraction cache): wall time, documents/s, words/s, peak RSS
   of the run's process (the temporary server's own process is not counted);
3. bare spaCy: in another process, the same pipeline (`load_extractor(...).nlp`,
   with the project's entity ruler and components) over the same texts with
   `nlp.pipe`, timed without the model load: words/s, and the ratio
   end-to-end / bare. It runs once before the full run and once after, and the
   ratio is taken against their mean time: on a shared machine the pace of the
   same work drifts by a tenth or more within minutes, and a baseline on one
   side of the full run only measures that drift too. The ratio against each
   of the two is printed as well;
4. +1 document: one new document added, run again (a new release), three
   times over (a new document each time): the median time as a ratio of the
   full run, and each time. One run's time moved by up to 2.7 s (14.38 and
   17.09 s for the same code) with what the machine did just before: the
   median of three is the figure, all three are printed;
5. no change: run again (no release): time as a ratio of the full run.

    python benchmarks/run.py                      # 200 and 1,000 documents
    python benchmarks/run.py --sizes 1000,5000,20000 --out benchmarks/results.json

Words are whitespace-separated tokens of the ingested texts (the n_words of the
documents table), the same count for both sides. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_corpus  # noqa: E402


def machine() -> dict[str, object]:
    info: dict[str, object] = {
        "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024**2, 1)
                break
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


# The code under test: a frozen copy, so that edits made to the checkout while the benchmark runs (a new rule
# changes the extractor's fingerprint and empties the cache) do not reach it. Set by main().
CODE: Path | None = None
LOG: Path | None = None
# One-document runs after the full run, each adding a new document; the median is the figure (an odd number).
PLUS_ONE_RUNS = 3


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ARMSLEDGER_"))}
    env.update({"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    if CODE is not None:
        env["PYTHONPATH"] = f"{CODE / 'src'}{os.pathsep}{CODE}"
        env["ARMSLEDGER_HOME"] = str(CODE)
    env.update(extra or {})
    return env


def snapshot_code(work: Path) -> Path:
    """Copies src/, flows/, expectations/ and pyproject.toml of this checkout into work/code, compiled."""
    project = HERE.parent
    code = work / "code"
    shutil.rmtree(code, ignore_errors=True)
    for name in ("src", "flows", "expectations"):
        shutil.copytree(project / name, code / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy2(project / "pyproject.toml", code / "pyproject.toml")
    # Compiled as `make env` compiles the installed modules, so that no measured run compiles them.
    compileall.compile_dir(code, quiet=1)
    return code


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Runs command; (wall seconds, peak RSS in bytes of that process, stdout). Raises on failure."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    # communicate() reaped the child; ru_maxrss of RUSAGE_CHILDREN is the largest child so far, so
    # each measured command runs alone in its own process and the figure is taken from its own report.
    if LOG is not None:
        with LOG.open("a", encoding="utf-8") as log:
            log.write(f"\n===== {' '.join(command)} ({elapsed:.1f} s)\n{stderr}")
    if process.returncode not in (0,):
        raise RuntimeError(f"{command[0]} failed ({process.returncode}):\n{stderr[-4000:]}")
    peak = 0
    for line in stderr.splitlines():
        if line.startswith("PEAK_RSS_KIB="):
            peak = int(line.split("=", 1)[1]) * 1024
    return elapsed, peak, stdout


def run_pipeline(raw: Path, processed: Path, home: Path, extra_env: dict[str, str] | None = None) -> dict[str, object]:
    env = child_env({"PREFECT_HOME": str(home), **(extra_env or {})})
    command = [sys.executable, str(HERE / "run.py"), "--child-run", str(raw), str(processed)]
    elapsed, peak, stdout = timed(command, env)
    summary = json.loads(stdout)
    return {"seconds": round(elapsed, 2), "peak_rss_mib": round(peak / 1024**2, 1), "published": summary["published"],
            "documents": summary["documents"], "extracted": summary["extracted"],
            "extraction_cached": summary["extraction_cached"], "reason": summary["reason"]}


def child_run(raw: str, processed: str) -> None:
    """`armsledger run --json` in this process, as the console command runs it, then its peak RSS on stderr."""
    import atexit

    from armsledger.cli import main

    atexit.register(lambda: print(f"PEAK_RSS_KIB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}",
                                  file=sys.stderr, flush=True))
    sys.argv = ["armsledger", "run", "--raw", raw, "--processed", processed, "--json"]
    main()


def child_bare(raw: str) -> None:
    """Bare nlp.pipe over the ingested texts of raw/ with the project's pipeline; JSON on stdout."""
    from armsledger import pipeline
    from armsledger.config import load_settings
    from armsledger.extract.document import PIPE_BATCH_SIZE

    settings = load_settings(Path(raw), Path(tempfile.mkdtemp()))
    documents = pipeline.read_raw(settings).documents
    texts = [d.text for d in documents]
    nlp = pipeline.load_extractor(settings).nlp
    for _ in nlp.pipe(texts[:5]):  # warm up
        pass
    started = time.perf_counter()
    tokens = 0
    # The extractor's own batch size: spaCy's default (256) is slower on this pipeline, which would flatter the ratio.
    for doc in nlp.pipe(texts, batch_size=PIPE_BATCH_SIZE):
        tokens += len(doc)
    elapsed = time.perf_counter() - started
    words = sum(d.n_words for d in documents)
    print(json.dumps({"seconds": round(elapsed, 2), "documents": len(texts), "words": words, "tokens": tokens,
                      "words_per_second": round(words / elapsed, 1), "pipeline": nlp.pipe_names,
                      "batch_size": PIPE_BATCH_SIZE}))
    print(f"PEAK_RSS_KIB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)


def bench(size: int, work: Path, seed: int) -> dict[str, object]:
    folder = work / f"docs-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    raw, processed, home = folder / "raw", folder / "processed", folder / "prefect-home"
    paths = build_corpus.build(raw, size, seed=seed)
    words = sum(len(p.read_text(encoding="utf-8").split()) for p in paths)
    print(f"[{size}] corpus: {size} documents, {words:,} words", flush=True)

    if DASK_ONLY:
        return {"documents": size, "words": words, "dask": run_on_dask(raw, folder, size, words)}

    bare_before = run_bare(raw)
    print(f"[{size}] bare nlp.pipe, before the full run: {bare_before}", flush=True)

    full = run_pipeline(raw, processed, home)
    assert full["published"] and full["extracted"] == size, full
    full["docs_per_second"] = round(size / full["seconds"], 2)
    full["words_per_second"] = round(words / full["seconds"], 1)
    print(f"[{size}] full run: {full}", flush=True)

    bare_after = run_bare(raw)
    print(f"[{size}] bare nlp.pipe, after the full run: {bare_after}", flush=True)
    bare = bracketed(bare_before, bare_after)

    dask = None
    if DASK_WORKERS:
        dask = run_on_dask(raw, folder, size, words)
        print(f"[{size}] full run on {DASK_WORKERS} Dask workers: {dask}", flush=True)

    plus_one_runs = []
    for number in range(PLUS_ONE_RUNS):
        build_corpus.build(raw, 1, seed=seed, start=size + number)
        run = run_pipeline(raw, processed, home)
        assert run["published"] and run["extracted"] == 1, run
        print(f"[{size}] +1 document ({number + 1} of {PLUS_ONE_RUNS}): {run}", flush=True)
        plus_one_runs.append(run)
    plus_one = sorted(plus_one_runs, key=lambda r: r["seconds"])[PLUS_ONE_RUNS // 2]

    unchanged = run_pipeline(raw, processed, home)
    assert not unchanged["published"] and unchanged["extracted"] == 0, unchanged
    print(f"[{size}] no change: {unchanged}", flush=True)

    return {
        "documents": size, "words": words, "full": full, "bare_nlp_pipe": bare,
        "end_to_end_over_bare": round(full["words_per_second"] / bare["words_per_second"], 3),
        "end_to_end_over_each_bare": [round(full["words_per_second"] / b["words_per_second"], 3)
                                      for b in (bare_before, bare_after)],
        "plus_one": plus_one, "plus_one_over_full": round(plus_one["seconds"] / full["seconds"], 4),
        "plus_one_seconds_each": [r["seconds"] for r in plus_one_runs],
        "no_change": unchanged, "no_change_over_full": round(unchanged["seconds"] / full["seconds"], 4),
        **({"dask": dask} if dask else {}),
    }


def run_bare(raw: Path) -> dict[str, object]:
    """Bare nlp.pipe over raw/'s texts in its own process (child_bare), with that process's peak RSS."""
    _, peak, stdout = timed([sys.executable, str(HERE / "run.py"), "--child-bare", str(raw)], child_env())
    bare = json.loads(stdout)
    bare["peak_rss_mib"] = round(peak / 1024**2, 1)
    return bare


def bracketed(before: dict[str, object], after: dict[str, object]) -> dict[str, object]:
    """The baseline of a full run timed between two bare runs: their mean time, as words/s."""
    seconds = (before["seconds"] + after["seconds"]) / 2
    return {"seconds": round(seconds, 2), "documents": before["documents"], "words": before["words"],
            "words_per_second": round(before["words"] / seconds, 1), "runs": [before, after]}


DASK_WORKERS = 0
DASK_ONLY = False


def run_on_dask(raw: Path, folder: Path, size: int, words: int) -> dict[str, object]:
    """The full run again, into a fresh processed/, twice against a real Prefect server: once with the default
    runner and once on a LocalCluster of DASK_WORKERS single-threaded worker processes (same server, so the
    temporary server's start-up is in neither). After the default runner's full run, one more document is
    added and run on the same server (a scheduled run's case), then removed again."""
    import socket

    from distributed import LocalCluster

    home = folder / "prefect-server-home"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    server_env = child_env({"PREFECT_HOME": str(home), "PREFECT_SERVER_API_PORT": str(port)})
    prefect = Path(sys.executable).with_name("prefect")
    server = subprocess.Popen([str(prefect), "server", "start", "--port", str(port)], env=server_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx

        for _ in range(240):
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        results = {}
        for runner in ("default", "dask"):
            processed = folder / f"processed-{runner}"
            shutil.rmtree(processed, ignore_errors=True)
            extra = {"PREFECT_API_URL": api, "PREFECT_LOCAL_STORAGE_PATH": str(processed / "cache" / "prefect")}
            if runner == "default":
                results[runner] = run_pipeline(raw, processed, home, extra)
                # One more document, on the same server and processed/: what a scheduled run that finds one
                # new text costs. The document goes away again before the Dask run.
                added = build_corpus.build(raw, 1, seed=0, start=size + 1)
                results["plus_one_default"] = run_pipeline(raw, processed, home, extra)
                for path in added:
                    path.unlink()
                    build_corpus.sidecar_of(path).unlink()
                continue
            saved = dict(os.environ)
            os.environ.update(child_env(extra))  # what the worker processes inherit
            try:
                with LocalCluster(n_workers=DASK_WORKERS, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
                    results[runner] = run_pipeline(
                        raw, processed, home, {**extra, "ARMSLEDGER_DASK_ADDRESS": cluster.scheduler_address}
                    )
            finally:
                os.environ.clear()
                os.environ.update(saved)
        for runner in ("default", "dask"):
            results[runner]["words_per_second"] = round(words / results[runner]["seconds"], 1)
        results["speedup"] = round(results["default"]["seconds"] / results["dask"]["seconds"], 3)
        results["plus_one_default_over_full"] = round(
            results["plus_one_default"]["seconds"] / results["default"]["seconds"], 4)
        same = all(
            (folder / "processed-default" / "releases" / v / f).read_bytes()
            == (folder / "processed-dask" / "releases" / v / f).read_bytes()
            # the Dask run's release against the default runner's first one (it has a +1 release after it)
            for v in [json.loads((folder / "processed-dask" / "releases" / "latest.json").read_text())["version"]]
            for f in ("documents.parquet", "events.parquet", "transfers.parquet", "citations.parquet")
        )
        results["same_tables"] = same
        return results
    finally:
        server.terminate()
        server.wait(timeout=60)


def table(results: list[dict[str, object]]) -> str:
    head = ("| documents | words | wall s | docs/s | words/s | peak RSS MiB | bare nlp.pipe words/s (before, after) "
            "| ratio (before, after) | +1 doc s, median of 3 (ratio; each) | no change s (ratio) |\n|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for r in results:
        f, b, p, u = r["full"], r["bare_nlp_pipe"], r["plus_one"], r["no_change"]
        each_bare = ", ".join(f"{run['words_per_second']:,.0f}" for run in b["runs"])
        each_ratio = ", ".join(f"{ratio:.2f}" for ratio in r["end_to_end_over_each_bare"])
        rows.append(
            f"| {r['documents']:,} | {r['words']:,} | {f['seconds']} | {f['docs_per_second']} | "
            f"{f['words_per_second']:,.0f} | {f['peak_rss_mib']} | {b['words_per_second']:,.0f} ({each_bare}) | "
            f"{r['end_to_end_over_bare']:.2f} ({each_ratio}) | {p['seconds']} ({r['plus_one_over_full']:.1%}; "
            f"{', '.join(str(x) for x in r.get('plus_one_seconds_each', [p['seconds']]))}) | "
            f"{u['seconds']} ({r['no_change_over_full']:.1%}) |"
        )
    return head + "\n".join(rows) + "\n"


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "--child-run":
        child_run(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) >= 2 and sys.argv[1] == "--child-bare":
        child_bare(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000", help="Comma-separated corpus sizes (default: 200,1000).")
    parser.add_argument("--work", type=Path, default=None, help="Work folder (default: a temporary one, removed).")
    parser.add_argument("--seed", type=int, default=20241125)
    parser.add_argument("--out", type=Path, default=None, help="Also write the results as JSON here.")
    parser.add_argument("--dask-workers", type=int, default=0,
                        help="Also time the full run on a local Dask cluster of this many workers (and the default "
                        "runner again), both against a real `prefect server start`.")
    parser.add_argument("--dask-only", action="store_true",
                        help="With --dask-workers: only the default-versus-Dask comparison, nothing else.")
    parser.add_argument("--live-code", action="store_true",
                        help="Run the checkout's code as it is, not a frozen copy (edits during the run then count).")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "").replace(",", "")) for s in args.sizes.split(",") if s.strip()]
    work = args.work or Path(tempfile.mkdtemp(prefix="armsledger-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    global CODE, LOG, DASK_WORKERS, DASK_ONLY
    DASK_WORKERS = args.dask_workers
    DASK_ONLY = args.dask_only and DASK_WORKERS > 0
    if not args.live_code:
        CODE = snapshot_code(work)
    LOG = work / "runs.log"
    info = machine()
    info["commit"] = _git("rev-parse", "--short", "HEAD")
    info["uncommitted_changes"] = bool(_git("status", "--porcelain"))
    print(f"machine: {info}", flush=True)
    results = []
    try:
        for size in sizes:
            results.append(bench(size, work, args.seed))
            if args.out:
                args.out.write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    if DASK_ONLY:
        for r in results:
            d = r["dask"]
            print(f"{r['documents']:,} documents: default {d['default']['seconds']} s, {DASK_WORKERS} Dask workers "
                  f"{d['dask']['seconds']} s, speed-up {d['speedup']}, same tables: {d['same_tables']}; "
                  f"+1 document with the default runner {d['plus_one_default']['seconds']} s "
                  f"({d['plus_one_default_over_full']:.1%} of its full run)")
        return
    print(table(results))


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


if __name__ == "__main__":
    main()
