#!/usr/bin/env python3
"""The cove benchmark driver. Run it through bench/run, which sets up the venv and builds.

For each workload it starts bench/fake-aws (loopback only) and runs every variant of the
workload in turn, repetition after repetition (A B F A B F ...: cove, botocove, the spawn
floor). Each run is measured with wait4(2): wall time, CPU (user + sys, the children it
reaped included) and peak RSS; the AWS calls it made come from the fake's /_fake/calls.
Every run's output is checked: one record per account x region, none lost, none twice.
Medians go to stdout as a table, and everything to bench/results/<timestamp>.json and
bench/results/latest.json.
"""

import argparse
import atexit
import datetime
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
COVE = ROOT / "target" / "release" / "cove"
FAKE = ROOT / "target" / "fake-aws" / "release" / "fake-aws"
FLOOR = ROOT / "target" / "fake-aws" / "release" / "spawn-floor"
BOTOCOVE_RUN = BENCH / "botocove_run.py"
TIME = "/usr/bin/time"
RESULTS = BENCH / "results"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
CHILD = ["true"]
RUN_TIMEOUT_S = 900  # no single cove or floor run may take longer than this
BOTOCOVE_W3_TIMEOUT_S = 600

# Every process this driver starts, so that any exit stops them.
LIVE = set()


def kill_all():
    for p in list(LIVE):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=5)
        except Exception:
            pass
        LIVE.discard(p)


atexit.register(kill_all)


def on_signal(signum, _frame):
    kill_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGHUP, on_signal)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The fake


class Fake:
    """bench/fake-aws on a free loopback port; dies with this driver (stdin EOF) or by itself."""

    def __init__(self, accounts, latency_ms, logdir, max_seconds):
        self.accounts = accounts
        self.latency_ms = latency_ms
        self.err = open(logdir / f"fake-{accounts}-{latency_ms}ms.log", "w")
        self.proc = subprocess.Popen(
            [str(FAKE), "--accounts", str(accounts), "--latency-ms", str(latency_ms),
             "--ous-per-level", "3", "--depth", "2",
             "--exit-on-stdin-eof", "--max-seconds", str(int(max_seconds))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
            start_new_session=True,
        )
        LIVE.add(self.proc)
        line = self.proc.stdout.readline().decode()
        try:
            self.endpoint = json.loads(line)["endpoint"]
        except (ValueError, KeyError):
            raise SystemExit(f"bench: the fake printed no endpoint (got {line!r}); see {self.err.name}")
        if not self.endpoint.startswith("http://127.0.0.1:"):
            raise SystemExit(f"bench: the fake is not on loopback: {self.endpoint}")

    def calls(self):
        with urllib.request.urlopen(self.endpoint + "/_fake/calls", timeout=10) as r:
            return json.load(r)

    def reset_max_in_flight(self):
        with urllib.request.urlopen(self.endpoint + "/_fake/reset-max-in-flight", timeout=10) as r:
            r.read()

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.terminate()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
        LIVE.discard(self.proc)
        self.err.close()


def call_delta(before, after):
    out = {}
    for op, n in after["calls"].items():
        d = n - before["calls"].get(op, 0)
        if d:
            out[op] = d
    throttled = sum(after["throttled"].values()) - sum(before["throttled"].values())
    return out, throttled


# --------------------------------------------------------------------------------------------
# Measuring one run


def measure(argv, env, out_path, err_path, timeout_s):
    """Runs argv to the end: wall from perf_counter, CPU from wait4(2) (microseconds; the
    children it reaped included), peak RSS from /usr/bin/time's %M. (The rusage maxrss that
    wait4 gives for a child forked from this Python process counts the Python RSS it had
    before exec; /usr/bin/time is small, so its %M is the tool's own peak.)"""
    rss_path = str(out_path) + ".time"
    argv = [TIME, "-o", rss_path, "-f", "%M"] + list(argv)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        LIVE.add(proc)
        timed_out = threading.Event()

        def expire():
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout_s, expire)
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # rusage of /usr/bin/time and all it reaped
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        LIVE.discard(proc)
    maxrss_kb = None
    try:
        with open(rss_path) as f:
            maxrss_kb = int(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": maxrss_kb / 1024.0 if maxrss_kb is not None else None,
        "exit_code": proc.returncode,
        "timed_out": timed_out.is_set(),
    }


def clean_env(endpoint, home, extra=None):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------------------------
# Checking one run's output


def check_output(path, kind, accounts, regions):
    """One record per account x region, all in Results, none twice. Returns (ok, detail)."""
    expected = accounts * len(regions)
    records = []
    summary = None
    try:
        if kind == "jsonl":
            with open(path, "rb") as f:
                for line in f:
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                    if "Summary" in obj:
                        summary = obj["Summary"]
                    else:
                        records.append((obj.get("Id"), obj.get("Region"), obj.get("Outcome")))
            if summary is None:
                return False, "no Summary line at the end of the jsonl output"
        else:
            with open(path, "rb") as f:
                doc = json.load(f)
            for key, outcome in (("Results", "Result"), ("Exceptions", "Exception"),
                                 ("FailedAssumeRole", "FailedAssumeRole")):
                for r in doc.get(key, []):
                    records.append((r.get("Id"), r.get("Region"), outcome))
    except (OSError, ValueError) as e:
        return False, f"unreadable output: {e}"
    unique = {(i, r) for i, r, _ in records}
    bad = [x for x in records if x[2] != "Result"]
    want = {(f"{200_000_000_000 + i:012d}", r) for i in range(accounts) for r in regions}
    problems = []
    if len(records) != expected:
        problems.append(f"{len(records)} records, expected {expected}")
    if len(unique) != len(records):
        problems.append(f"{len(records) - len(unique)} duplicated Id x Region")
    if unique != want:
        problems.append(f"{len(want - unique)} targets missing, {len(unique - want)} unexpected")
    if bad:
        problems.append(f"{len(bad)} not in Results (first: {bad[0]})")
    if summary is not None and summary.get("Results") != expected:
        problems.append(f"Summary says {summary}")
    if problems:
        return False, "; ".join(problems)
    return True, f"{len(records)} records, {len(unique)} unique Id x Region"


# --------------------------------------------------------------------------------------------
# Workloads


def variant(label, tool, accounts, regions, workers, latency_ms=50, output="json", timeout_s=RUN_TIMEOUT_S,
            skip_after_timeout=False):
    return {
        "label": label, "tool": tool, "accounts": accounts, "regions": REGIONS[:regions],
        "workers": workers, "latency_ms": latency_ms, "output": output,
        "targets": accounts * regions, "timeout_s": timeout_s,
        "skip_after_timeout": skip_after_timeout,
    }


def floor_variant(label, targets, workers, accounts, regions, latency_ms=50):
    v = variant(label, "spawn-floor", accounts, regions, workers, latency_ms)
    v["targets"] = targets
    return v


def workloads(jsonl, smoke):
    out = "jsonl" if jsonl else "json"
    if smoke:
        v = [variant("cove", "cove", 100, 2, 20, latency_ms=20),
             variant("botocove", "botocove", 100, 2, 20, latency_ms=20),
             floor_variant("spawn-floor", 200, 20, 100, 2, latency_ms=20)]
        if jsonl:
            v.insert(1, variant("cove jsonl", "cove", 100, 2, 20, latency_ms=20, output="jsonl"))
        return {"SMOKE": {"about": "100 accounts x 2 regions, 20 ms latency, workers 20 (no timing asserted)",
                          "variants": v}}
    return {
        "W1": {"about": "1,000 accounts x 1 region, 50 ms latency, workers 20",
               "variants": [variant("cove", "cove", 1000, 1, 20),
                            variant("botocove", "botocove", 1000, 1, 20),
                            floor_variant("spawn-floor", 1000, 20, 1000, 1)]},
        "W2": {"about": "1,000 accounts x 3 regions, 50 ms latency, workers 20",
               "variants": [variant("cove", "cove", 1000, 3, 20),
                            variant("botocove", "botocove", 1000, 3, 20),
                            floor_variant("spawn-floor", 3000, 20, 1000, 3)]},
        "W3": {"about": f"5,000 accounts x 1 region, 50 ms latency, workers 20, cove --output {out}; "
                        f"botocove with a {BOTOCOVE_W3_TIMEOUT_S} s timeout",
               "variants": [variant("cove", "cove", 5000, 1, 20, output=out),
                            variant("botocove", "botocove", 5000, 1, 20, timeout_s=BOTOCOVE_W3_TIMEOUT_S,
                                    skip_after_timeout=True),
                            floor_variant("spawn-floor", 5000, 20, 5000, 1)]},
        "W4": {"about": "W1 (1,000 x 1, 50 ms) with --workers 1, 20, 100, 500; cove only",
               "variants": [x for w in (1, 20, 100, 500) for x in (
                   variant(f"cove w={w}", "cove", 1000, 1, w),
                   floor_variant(f"spawn-floor w={w}", 1000, w, 1000, 1))]},
        "W5": {"about": f"10,000 accounts x 3 regions vs 1,000 x 3, 50 ms latency, workers 20, cove --output {out}",
               "variants": [variant("cove 10000x3", "cove", 10000, 3, 20, output=out),
                            variant("cove 1000x3", "cove", 1000, 3, 20, output=out),
                            floor_variant("spawn-floor 30000", 30000, 20, 10000, 3),
                            floor_variant("spawn-floor 3000", 3000, 20, 1000, 3)]},
    }


def command_for(v):
    regions = ",".join(v["regions"])
    if v["tool"] == "cove":
        argv = [str(COVE), "--workers", str(v["workers"]), "--region", regions]
        if v["output"] == "jsonl":
            argv += ["--output", "jsonl"]
        return argv + ["--"] + CHILD
    if v["tool"] == "botocove":
        return [sys.executable, str(BOTOCOVE_RUN), "--workers", str(v["workers"]),
                "--regions", regions, "--"] + CHILD
    return [str(FLOOR), "--count", str(v["targets"]), "--concurrency", str(v["workers"]), "--"] + CHILD


def run_workload(name, spec, reps, tmp):
    fakes = {}
    max_seconds = 4 * 3600
    for v in spec["variants"]:
        key = (v["accounts"], v["latency_ms"])
        if key not in fakes:
            fakes[key] = Fake(v["accounts"], v["latency_ms"], tmp, max_seconds)
    for v in spec["variants"]:
        v["runs"] = []
        v["checks"] = []
    try:
        for rep in range(reps):
            for v in spec["variants"]:
                if v.get("skipped"):
                    continue
                fake = fakes[(v["accounts"], v["latency_ms"])]
                home = tempfile.mkdtemp(dir=tmp, prefix="home-")
                extra = {"AWS_DEFAULT_REGION": "us-east-1"} if v["tool"] == "botocove" else None
                env = clean_env(fake.endpoint, home, extra)
                out_path = tmp / "run.out"
                err_path = tmp / "run.err"
                fake.reset_max_in_flight()
                before = fake.calls()
                m = measure(command_for(v), env, out_path, err_path, v["timeout_s"])
                after = fake.calls()
                calls, throttled = call_delta(before, after)
                m["max_assume_in_flight"] = after.get("max_in_flight", {}).get("sts:AssumeRole", 0) if calls.get("sts:AssumeRole") else 0
                m["aws_calls"] = sum(calls.values())
                m["aws_calls_by_op"] = calls
                m["throttled"] = throttled
                m["rep"] = rep + 1
                if m["timed_out"]:
                    ok, detail = False, f"timed out after {v['timeout_s']} s"
                elif v["tool"] == "spawn-floor":
                    ok = m["exit_code"] == 0
                    detail = open(out_path).read().strip() if ok else open(err_path).read()[-500:]
                else:
                    ok, detail = check_output(out_path, v["output"], v["accounts"], v["regions"])
                    if ok and m["exit_code"] != 0:
                        ok, detail = False, f"exit code {m['exit_code']}"
                    if ok and v["tool"] == "cove" and calls.get("sts:AssumeRole") != v["accounts"]:
                        ok, detail = False, f"{calls.get('sts:AssumeRole')} AssumeRole calls for {v['accounts']} accounts"
                if not ok and not m["timed_out"]:
                    detail += " | stderr: " + open(err_path, errors="replace").read()[-800:].replace("\n", " ")
                m["check_ok"], m["check"] = ok, detail
                v["runs"].append(m)
                log(f"{name} rep {rep + 1}/{reps} {v['label']:<20} wall {m['wall_s']:7.2f} s  cpu {m['cpu_s']:6.2f} s  "
                    f"rss {fmt(m['maxrss_mb'], '{:6.1f}')} MB  aws calls {m['aws_calls']:6d}  "
                    f"max AssumeRole in flight {m['max_assume_in_flight']:4d}  "
                    f"{'ok' if ok else 'CHECK FAILED'}: {detail[:300]}")
                if m["timed_out"] and v.get("skip_after_timeout"):
                    v["skipped"] = f"timed out after {v['timeout_s']} s in rep {rep + 1}; not repeated"
                shutil.rmtree(home, ignore_errors=True)
    finally:
        for f in fakes.values():
            f.stop()


def median(xs):
    return statistics.median(xs) if xs else None


def summarize(name, spec):
    rows = []
    floors = {}
    for v in spec["variants"]:
        runs = [r for r in v["runs"] if not r["timed_out"]]
        med = {k: median([r[k] for r in runs]) for k in ("wall_s", "cpu_s", "user_s", "sys_s", "maxrss_mb", "aws_calls")}
        med["max_assume_in_flight"] = median([r.get("max_assume_in_flight", 0) for r in runs])
        med["assume_calls"] = median([r["aws_calls_by_op"].get("sts:AssumeRole", 0) for r in runs])
        v["median"] = med
        v["all_checks_ok"] = bool(v["runs"]) and all(r["check_ok"] for r in v["runs"])
        if v["tool"] == "spawn-floor":
            floors[(v["targets"], v["workers"])] = v
    for v in spec["variants"]:
        med = v["median"]
        if v["tool"] == "cove":
            fl = floors.get((v["targets"], v["workers"]))
            assume_bound = v["accounts"] * v["latency_ms"] / 1000.0 / v["workers"]
            spawn_bound = fl["median"]["wall_s"] if fl else None
            floor_s = max(assume_bound, spawn_bound or 0.0)
            list_pages = math.ceil((v["accounts"] + 1) / 20)
            serial_s = (1 + list_pages) * v["latency_ms"] / 1000.0
            child_cpu = fl["median"]["cpu_s"] if fl else None
            v["floor"] = {
                "assume_bound_s": assume_bound,
                "spawn_bound_s": spawn_bound,
                "floor_s": floor_s,
                "wall_over_floor": med["wall_s"] / floor_s if med["wall_s"] and floor_s else None,
                "serial_listing_s": serial_s,
                "floor_with_listing_s": floor_s + serial_s,
                # A client that assumes while it lists can do no better than the larger of the
                # two bounds and the serial listing itself.
                "streaming_floor_s": max(floor_s, serial_s),
                "wall_over_streaming_floor": med["wall_s"] / max(floor_s, serial_s) if med["wall_s"] else None,
                "wall_over_floor_with_listing": med["wall_s"] / (floor_s + serial_s) if med["wall_s"] else None,
                "cpu_ms_per_target": 1000 * med["cpu_s"] / v["targets"] if med["cpu_s"] is not None else None,
                "spawn_floor_cpu_ms_per_target": 1000 * child_cpu / v["targets"] if child_cpu is not None else None,
                "cpu_ms_per_target_excl_child": (1000 * (med["cpu_s"] - child_cpu) / v["targets"])
                if child_cpu is not None and med["cpu_s"] is not None else None,
            }
        rows.append(v)
    return rows


def fmt(x, spec="{:.2f}"):
    return "-" if x is None else spec.format(x)


def table(results):
    head = ["workload", "variant", "targets", "workers", "wall s", "CPU s", "CPU ms/tgt", "excl child",
            "RSS MB", "AWS calls", "assume ∥", "floor s", "wall/floor", "check"]
    lines = []
    for name, spec in results["workloads"].items():
        for v in spec["variants"]:
            m = v["median"]
            f = v.get("floor", {})
            lines.append([
                name, v["label"] + ("" if v["tool"] != "cove" or v["output"] == "json" else f" ({v['output']})"),
                f"{v['targets']:,}", str(v["workers"]), fmt(m["wall_s"]), fmt(m["cpu_s"]),
                fmt(1000 * m["cpu_s"] / v["targets"] if m["cpu_s"] is not None else None, "{:.3f}"),
                fmt(f.get("cpu_ms_per_target_excl_child"), "{:.3f}"),
                fmt(m["maxrss_mb"], "{:.1f}"), fmt(m["aws_calls"], "{:,.0f}"),
                fmt(m.get("max_assume_in_flight") or None, "{:.0f}"),
                fmt(f.get("floor_s")), fmt(f.get("wall_over_floor"), "{:.2f}x"),
                ("ok" if v["all_checks_ok"] else ("TIMEOUT" if v.get("skipped") else "FAIL")) + f" ({len(v['runs'])} runs)",
            ])
    widths = [max(len(str(r[i])) for r in [head] + lines) for i in range(len(head))]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in lines:
        out.append("| " + " | ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                                     for i, (c, w) in enumerate(zip(r, widths))) + " |")
    return "\n".join(out)


def find(results, workload, label):
    spec = results["workloads"].get(workload)
    if not spec:
        return None
    for v in spec["variants"]:
        if v["label"] == label:
            return v
    return None


def targets(results):
    """The issue's targets, reported as pass/fail (never asserted)."""
    verdicts = []

    def add(name, passed, detail):
        verdicts.append({"target": name, "pass": passed, "detail": detail})

    cove2, boto2 = find(results, "W2", "cove"), find(results, "W2", "botocove")
    if cove2 and boto2 and cove2["median"]["wall_s"] and boto2["median"]["wall_s"]:
        r = cove2["median"]["wall_s"] / boto2["median"]["wall_s"]
        add("W2 cove wall <= 1/8 of botocove's", r <= 1 / 8,
            f"cove {cove2['median']['wall_s']:.2f} s / botocove {boto2['median']['wall_s']:.2f} s = {r:.3f} "
            f"(target <= 0.125; botocove is {1 / r:.1f}x slower)")
    if cove2 and cove2.get("floor"):
        f = cove2["floor"]
        add("W2 cove wall <= 1.25 x floor", f["wall_over_floor"] <= 1.25,
            f"cove {cove2['median']['wall_s']:.2f} s / floor {f['floor_s']:.2f} s "
            f"(max of assume bound {f['assume_bound_s']:.2f} s, spawn bound {fmt(f['spawn_bound_s'])} s) = "
            f"{f['wall_over_floor']:.2f}x. The serial calls (GetCallerIdentity + ListAccounts pages) take "
            f"{f['serial_listing_s']:.2f} s: listed before assuming, the floor is {f['floor_with_listing_s']:.2f} s "
            f"(cove {f['wall_over_floor_with_listing']:.2f}x); listed while assuming, {f['streaming_floor_s']:.2f} s "
            f"(cove {f['wall_over_streaming_floor']:.2f}x). At most "
            f"{fmt(cove2['median'].get('max_assume_in_flight'), '{:.0f}')} AssumeRole calls were in flight at once "
            f"with --workers {cove2['workers']}")
    for w in ("W1", "W2"):
        c = find(results, w, "cove")
        if c and c.get("floor") and c["floor"]["cpu_ms_per_target_excl_child"] is not None:
            f = c["floor"]
            add(f"{w} cove client CPU per target <= 1 ms excluding the child",
                f["cpu_ms_per_target_excl_child"] <= 1.0,
                f"({c['median']['cpu_s']:.3f} s cove - {f['spawn_floor_cpu_ms_per_target'] * c['targets'] / 1000:.3f} s "
                f"spawn-floor) / {c['targets']:,} targets = {f['cpu_ms_per_target_excl_child']:.3f} ms "
                f"(cove total {f['cpu_ms_per_target']:.3f} ms/target)")
    big, ref = find(results, "W5", "cove 10000x3"), find(results, "W5", "cove 1000x3")
    if big and big["median"]["maxrss_mb"]:
        add("W5 cove peak RSS <= 40 MB at 10,000 x 3", big["median"]["maxrss_mb"] <= 40,
            f"{big['median']['maxrss_mb']:.1f} MB")
        if ref and ref["median"]["maxrss_mb"]:
            r = big["median"]["maxrss_mb"] / ref["median"]["maxrss_mb"]
            add("W5 peak RSS at 10,000 x 3 within 1.5x of 1,000 x 3", r <= 1.5,
                f"{big['median']['maxrss_mb']:.1f} MB / {ref['median']['maxrss_mb']:.1f} MB = {r:.2f}x")
    sweep = [find(results, "W4", f"cove w={w}") for w in (1, 20, 100, 500)]
    if all(sweep) and all(v["median"]["wall_s"] for v in sweep):
        walls = [v["median"]["wall_s"] for v in sweep]
        steps = []
        good = True
        for a, b in zip(sweep, sweep[1:]):
            wa, wb = a["median"]["wall_s"], b["median"]["wall_s"]
            fa = a["floor"]
            # Improving, or already at the bound (within 1.25x of its floor including the serial
            # listing) and not getting worse by more than 10 %.
            at_bound = wa <= 1.25 * fa["floor_with_listing_s"]
            ok = wb < 0.95 * wa or (at_bound and wb <= 1.10 * wa)
            good &= ok
            steps.append(f"w={a['workers']}->{b['workers']}: {wa:.2f}->{wb:.2f} s"
                         f"{'' if ok else ' (NOT improving)'}{' (at bound)' if at_bound and not wb < 0.95 * wa else ''}")
        add("W4 wall improves with workers until the bound", good, "; ".join(steps))
        w100 = sweep[2]
        add("W4 100 workers loses and duplicates no target", w100["all_checks_ok"],
            "; ".join(sorted({r["check"] for r in w100["runs"]})))
    return verdicts


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception as e:
            return f"({e})"
    return {
        "nproc": sh("nproc"),
        "free_h": sh("free -h"),
        "cpu_model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cove_version": sh(f"{COVE} --version"),
        "botocove_version": sh(f"{sys.executable} -m pip show botocove 2>/dev/null | grep ^Version"),
        "git_commit": sh(f"git -C {ROOT} rev-parse --short HEAD") + (" (dirty tree)" if sh(f"git -C {ROOT} status --porcelain -- src Cargo.toml Cargo.lock") else ""),
    }


def print_report(results):
    print(f"cove benchmark, {results['started']}, {results['reps']} rep(s), medians; "
          f"child command: {' '.join(results['child_command'])}")
    print(f"machine: {results['machine']['nproc']} cores, {results['machine']['cpu_model']}; "
          f"{results['machine']['cove_version']}; botocove {results['machine']['botocove_version'].replace('Version: ', '')}")
    print(results["cove_output_note"])
    print()
    print(table(results))
    if results["targets"]:
        print()
        for t in results["targets"]:
            print(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['detail']}")
    print()


def report(path):
    """Re-summarizes a results file (with this version's summary) and prints it."""
    results = json.loads(path.read_text())
    for name, spec in results["workloads"].items():
        summarize(name, spec)
    results["targets"] = [] if results.get("smoke") else targets(results)
    print_report(results)
    return 0


def main():
    ap = argparse.ArgumentParser(description="cove vs botocove against bench/fake-aws")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each variant (default 3)")
    ap.add_argument("--smoke", action="store_true",
                    help="100 accounts x 2 regions, 1 rep, both tools; checks outputs, asserts no timing")
    ap.add_argument("--only", default=None, help="comma-separated workloads, e.g. W1,W4")
    ap.add_argument("--report", metavar="RESULTS_JSON", default=None,
                    help="print the table and targets of an earlier run's results file; run nothing")
    args = ap.parse_args()
    if args.report:
        return report(Path(args.report))

    help_text = subprocess.run([str(COVE), "--help"], capture_output=True, text=True).stdout
    jsonl = "jsonl" in help_text
    jsonl_note = ("cove --help lists --output jsonl: W3 and W5 run cove with --output jsonl" if jsonl else
                  "cove --help does not list --output jsonl: W3 and W5 run cove in its default json mode")
    log(jsonl_note)

    all_w = workloads(jsonl, args.smoke)
    reps = 1 if args.smoke else args.reps
    if args.only and not args.smoke:
        wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in all_w]
        if unknown:
            ap.error(f"unknown workload(s) {unknown}; choose from {sorted(all_w)}")
        all_w = {k: v for k, v in all_w.items() if k in wanted}

    started = datetime.datetime.now(datetime.timezone.utc)
    results = {
        "started": started.isoformat(timespec="seconds"),
        "smoke": args.smoke, "reps": reps, "child_command": CHILD,
        "cove_output_note": jsonl_note,
        "machine": machine(),
        "method": "wall: perf_counter around the run; CPU (user+sys): wait4(2) rusage of the tool, "
                  "which includes the children it reaped; peak RSS: /usr/bin/time %M of the tool; AWS calls: /_fake/calls before and after. "
                  "Medians over reps. Floor = max(accounts x latency / workers, spawn-floor wall for the same "
                  "targets and concurrency). CPU excluding the child = (cove CPU - spawn-floor CPU) / targets.",
        "workloads": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="cove-bench-"))
    try:
        for name, spec in all_w.items():
            log(f"{name}: {spec['about']} ({reps} rep{'s' if reps > 1 else ''})")
            run_workload(name, spec, reps, tmp)
            summarize(name, spec)
            results["workloads"][name] = spec
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
    results["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["targets"] = [] if args.smoke else targets(results)

    failures = [f"{n} {v['label']}: {r['check']}" for n, s in results["workloads"].items()
                for v in s["variants"] for r in v["runs"] if not r["check_ok"]
                and not (r["timed_out"] and v.get("skip_after_timeout"))]
    results["check_failures"] = failures

    RESULTS.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ") + ("-smoke" if args.smoke else "")
    path = RESULTS / f"{stamp}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text + "\n")
    if not args.smoke:
        (RESULTS / "latest.json").write_text(text + "\n")

    print_report(results)
    print(f"results: {path.relative_to(ROOT)}" + ("" if args.smoke else " and bench/results/latest.json"))
    if failures:
        print("\nOUTPUT CHECKS FAILED:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
