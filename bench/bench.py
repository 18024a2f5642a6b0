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
import re
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
STAMP = ROOT / "target" / "fake-aws" / "release" / "spawn-stamp"
# W6's "before": cove at the parent of the streamed OU walk, built by bench/lib.sh build_before.
BEFORE_COMMIT = "9f84907"
COVE_BEFORE = ROOT / "target" / "before" / "target" / "release" / "cove"
# W7's child: the AWS CLI pinned in bench/requirements.txt, in the same venv as this driver.
AWS_CLI = Path(sys.executable).parent / "aws"
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

    def __init__(self, accounts, latency_ms, logdir, max_seconds, opts=None):
        """opts: {"ous": N} for the flat layout of N OUs (W6); {"throttle_for": {KEY: F}} for
        per-service throttling (W8). Without them, the 12-OU tree of W1-W5."""
        opts = opts or {}
        self.accounts = accounts
        self.latency_ms = latency_ms
        self.err = open(logdir / f"fake-{accounts}-{latency_ms}ms-{fake_tag(opts)}.log", "w")
        layout = ["--ous", str(opts["ous"])] if "ous" in opts else ["--ous-per-level", "3", "--depth", "2"]
        throttle = [a for k, f in sorted(opts.get("throttle_for", {}).items()) for a in ("--throttle-for", f"{k}={f}")]
        self.proc = subprocess.Popen(
            [str(FAKE), "--accounts", str(accounts), "--latency-ms", str(latency_ms)] + layout + throttle +
            ["--exit-on-stdin-eof", "--max-seconds", str(int(max_seconds))],
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


def fake_tag(opts):
    """A short, stable name for a fake's options (file names, keys)."""
    return json.dumps(opts or {}, sort_keys=True)


def delta(before, after):
    out = {}
    for op, n in after.items():
        d = n - before.get(op, 0)
        if d:
            out[op] = d
    return out


def call_delta(before, after):
    throttled = delta(before["throttled"], after["throttled"])
    return delta(before["calls"], after["calls"]), sum(throttled.values()), throttled


# --------------------------------------------------------------------------------------------
# Measuring one run


class TreeSampler(threading.Thread):
    """Every `interval` s, the summed RSS and PSS of every process in session `sid` (the tool
    and all its children: cove puts each child in its own process group, not its own
    session). /usr/bin/time's %M is the largest single process; this is what they hold
    together. Used only where children are big (W7): it costs a few ms of CPU per sample."""

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, sid, interval=0.1):
        super().__init__(daemon=True)
        self.sid, self.interval = sid, interval
        self.done = threading.Event()
        self.peak_rss = self.peak_pss = 0
        self.peak_procs = 0

    def run(self):
        while not self.done.wait(self.interval):
            self.sample()

    def sample(self):
        rss = pss = procs = 0
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    st = f.read()
                fields = st[st.rfind(b")") + 2:].split()  # fields[0] is stat field 3 (state)
                if int(fields[3]) != self.sid:  # field 6: session
                    continue
                procs += 1
                rss += int(fields[21]) * self.PAGE  # field 24: rss in pages
                with open(f"/proc/{d}/smaps_rollup", "rb") as f:
                    for line in f:
                        if line.startswith(b"Pss:"):
                            pss += int(line.split()[1]) * 1024
                            break
            except (OSError, ValueError, IndexError):
                continue  # gone in between
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_procs = max(self.peak_procs, procs)


def measure(argv, env, out_path, err_path, timeout_s, sample_tree=False):
    """Runs argv to the end: wall from perf_counter, CPU from wait4(2) (microseconds; the
    children it reaped included), peak RSS from /usr/bin/time's %M. (The rusage maxrss that
    wait4 gives for a child forked from this Python process counts the Python RSS it had
    before exec; /usr/bin/time is small, so its %M is the tool's own peak, or its largest
    child's when that is larger.) `started_epoch` is the wall clock (time.time()) just before
    the fork, for W6's child stamps. With `sample_tree`, the peak summed RSS and PSS of the
    tool and all its children too (TreeSampler)."""
    rss_path = str(out_path) + ".time"
    argv = [TIME, "-o", rss_path, "-f", "%M"] + list(argv)
    sampler = None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started_epoch = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        LIVE.add(proc)
        if sample_tree:
            sampler = TreeSampler(proc.pid)
            sampler.start()
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
        if sampler:
            sampler.done.set()
            sampler.join()
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
        "started_epoch": started_epoch,
        **({"tree_rss_mb": sampler.peak_rss / 2**20, "tree_pss_mb": sampler.peak_pss / 2**20,
            "tree_procs": sampler.peak_procs} if sampler else {}),
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


def account_id(i):
    """The fake's member account number i."""
    return f"{200_000_000_000 + i:012d}"


def check_output(path, kind, accounts, regions, want_ids=None, allow_failed=False, result_check=None):
    """One record per account x region, none twice. Returns (ok, detail, info).

    want_ids: the accounts that must be there (default: all `accounts` members). Without
    allow_failed every record must be in Results; with it (W8) a record elsewhere is a lost
    target, counted in info["lost"], not a failed check. result_check(record) -> error or None
    looks at each Results record (W7: the child's output names the target account)."""
    want_ids = want_ids if want_ids is not None else [account_id(i) for i in range(accounts)]
    expected = len(want_ids) * len(regions)
    records = []
    summary = None
    result_problems = []

    def take(obj, outcome):
        records.append((obj.get("Id"), obj.get("Region"), outcome))
        if result_check and outcome == "Result" and len(result_problems) < 3:
            problem = result_check(obj)
            if problem:
                result_problems.append(problem)

    try:
        if allow_failed and os.path.getsize(path) == 0:
            pass  # W8: cove gave up before writing anything; every target is missing
        elif kind == "jsonl":
            with open(path, "rb") as f:
                for line in f:
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                    if "Summary" in obj:
                        summary = obj["Summary"]
                    else:
                        take(obj, obj.get("Outcome"))
            if summary is None and not allow_failed:
                return False, "no Summary line at the end of the jsonl output", {}
        else:
            with open(path, "rb") as f:
                doc = json.load(f)
            for key, outcome in (("Results", "Result"), ("Exceptions", "Exception"),
                                 ("FailedAssumeRole", "FailedAssumeRole")):
                for r in doc.get(key, []):
                    take(r, outcome)
    except (OSError, ValueError) as e:
        return False, f"unreadable output: {e}", {}
    unique = {(i, r) for i, r, _ in records}
    bad = [x for x in records if x[2] != "Result"]
    want = {(i, r) for i in want_ids for r in regions}
    info = {
        "records": len(records),
        "lost": len(bad),
        "lost_by_outcome": {o: sum(1 for x in bad if x[2] == o) for o in sorted({x[2] for x in bad})},
        # Accounts with a record that got past AssumeRole: each needed one successful AssumeRole.
        "assumed_accounts": len({i for i, _, o in records if o != "FailedAssumeRole"}),
        "expected": expected,
        "missing": len(want - unique),
        "unexpected": len(unique - want),
        "duplicated": len(records) - len(unique),
    }
    problems = []
    if len(records) != expected:
        problems.append(f"{len(records)} records, expected {expected}")
    if len(unique) != len(records):
        problems.append(f"{len(records) - len(unique)} duplicated Id x Region")
    if unique != want:
        problems.append(f"{len(want - unique)} targets missing, {len(unique - want)} unexpected")
    if bad and not allow_failed:
        problems.append(f"{len(bad)} not in Results (first: {bad[0]})")
    if summary is not None and not allow_failed and summary.get("Results") != expected:
        problems.append(f"Summary says {summary}")
    if result_problems:
        problems.append("child output: " + "; ".join(result_problems))
    if problems:
        return False, "; ".join(problems), info
    lost = f", {len(bad)} lost ({info['lost_by_outcome']})" if bad else ""
    return True, f"{len(records)} records, {len(unique)} unique Id x Region{lost}", info


def names_its_account(record):
    """W7: the child's output (aws sts get-caller-identity, or botocove's in-process call) must
    name the record's account, so the child really ran with that account's credentials."""
    result = record.get("Result")
    if isinstance(result, str):
        try:
            result = json.loads(result)
        except ValueError:
            pass
    if not isinstance(result, dict) or result.get("Account") != record.get("Id"):
        return f"{record.get('Id')}: Result {str(result)[:120]!r} does not name the account"
    return None


# --------------------------------------------------------------------------------------------
# Workloads


def variant(label, tool, accounts, regions, workers, latency_ms=50, output="json", timeout_s=RUN_TIMEOUT_S,
            skip_after_timeout=False, **more):
    """One thing measured. `more` (all optional, all plain JSON for the results file):
    fake: the fake's options (Fake); build: "before" runs cove at BEFORE_COMMIT (W6);
    target_ous: run cove with --target naming these OUs of the flat layout (1-based, W6);
    child: "stamp" (spawn-stamp, W6) or "aws-sts" (the AWS CLI's get-caller-identity, W7);
    output_dir: run cove with --output-dir (W5); allow_failed: a target outside Results is
    lost, not a failed check (W8); sample_tree: measure the whole process tree's memory (W7)."""
    v = {
        "label": label, "tool": tool, "accounts": accounts, "regions": REGIONS[:regions],
        "workers": workers, "latency_ms": latency_ms, "output": output,
        "targets": accounts * regions, "timeout_s": timeout_s,
        "skip_after_timeout": skip_after_timeout,
    }
    v.update(more)
    if v.get("target_ous"):
        v["targets"] = len(wanted_ids(v)) * regions
    return v


def wanted_ids(v):
    """The accounts a variant runs in: all members, or those of its target OUs. In the flat
    layout (--ous N) member i sits in OU number (i % N) + 1."""
    if not v.get("target_ous"):
        return None
    n = v["fake"]["ous"]
    ous = set(v["target_ous"])
    return [account_id(i) for i in range(v["accounts"]) if (i % n) + 1 in ous]


def ou_id(n):
    return f"ou-ab12-{n:08x}"


def floor_variant(label, targets, workers, accounts, regions, latency_ms=50):
    v = variant(label, "spawn-floor", accounts, regions, workers, latency_ms)
    v["targets"] = targets
    return v


W6_OUS = 50
W6_TARGET_OUS = [1, 2, 3, 4, 5]
# W8: 10 % of every Organizations call and 30 % of AssumeRole calls are throttled.
W8_THROTTLE = {"organizations": 0.1, "sts:AssumeRole": 0.3}
W7_WORKERS = (1, 2, 4, 8, 20)


def workloads(jsonl, smoke):
    out = "jsonl" if jsonl else "json"
    if smoke:
        v = [variant("cove", "cove", 100, 2, 20, latency_ms=20),
             variant("botocove", "botocove", 100, 2, 20, latency_ms=20),
             floor_variant("spawn-floor", 200, 20, 100, 2, latency_ms=20)]
        if jsonl:
            v.insert(1, variant("cove jsonl", "cove", 100, 2, 20, latency_ms=20, output="jsonl"))
        smoke_w = {"SMOKE": {"about": "100 accounts x 2 regions, 20 ms latency, workers 20 (no timing asserted)",
                             "variants": v}}
        # Small forms of W6 and W8 (cove as built only; no 'before' build, no AWS CLI): they
        # check that the driver's new paths and the fake's answers still fit together.
        smoke_w["SMOKE-W6"] = {
            "about": "W6 in small: 200 accounts in 10 OUs, --target 2 OUs, spawn-stamp child (checks only)",
            "variants": [variant("cove", "cove", 200, 1, 20, latency_ms=20, fake={"ous": 10},
                                 target_ous=[1, 2], child="stamp")]}
        # AssumeRole only: a ListAccounts page throttled on every attempt would fail the whole
        # run (W8 reports that; the suite must not flake on it).
        smoke_w["SMOKE-W8"] = {
            "about": "W8 in small: 100 accounts x 2 regions, 30 % of AssumeRole calls throttled "
                     "(checks every target is reported once; lost ones are counted, not failed)",
            "variants": [variant("cove storm", "cove", 100, 2, 20, latency_ms=5,
                                 fake={"throttle_for": {"sts:AssumeRole": W8_THROTTLE["sts:AssumeRole"]}},
                                 allow_failed=True)]}
        smoke_w["SMOKE-W12"] = {
            "about": "W12 in small: 20 accounts x 1 region, 1 MB of output each, each output mode, "
                     "and a reader that waits 3 s (checks only)",
            "variants": w12_variants(20, 1, 3)}
        if jsonl:
            smoke_w["SMOKE-W5"] = {
                "about": "W5's --output-dir form in small: 100 accounts x 2 regions, jsonl (checks only)",
                "variants": [variant("cove outdir", "cove", 100, 2, 20, latency_ms=20, output="jsonl",
                                     output_dir=True)]}
        smoke_w.update(auto_smoke())
        return smoke_w
    all_w = {
        "W12": {"about": "big outputs: 150 accounts x 1 region, each child printing a 5 MB JSON listing, "
                       "20 ms latency, workers 20, cove in each output mode and with a reader that waits "
                       f"15 s; botocove for the same outputs; target: cove peak RSS <= {W12_RSS_TARGET_MB} MB",
                "variants": w12_variants(150, 5, 15)},
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
        "W5": {"about": f"10,000 accounts x 3 regions vs 1,000 x 3, 50 ms latency, workers 20, cove --output {out}; "
                        f"and the same with --output-dir",
               "variants": [variant("cove 10000x3", "cove", 10000, 3, 20, output=out),
                            variant("cove 1000x3", "cove", 1000, 3, 20, output=out),
                            variant("cove 10000x3 outdir", "cove", 10000, 3, 20, output=out, output_dir=True),
                            variant("cove 1000x3 outdir", "cove", 1000, 3, 20, output=out, output_dir=True),
                            floor_variant("spawn-floor 30000", 30000, 20, 10000, 3),
                            floor_variant("spawn-floor 3000", 3000, 20, 1000, 3)]},
        "W6": {"about": f"time to first command: 5,000 accounts in {W6_OUS} OUs, --target {len(W6_TARGET_OUS)} OUs "
                        f"(500 accounts x 1 region), 50 ms latency, workers 20, child spawn-stamp; "
                        f"cove before ({BEFORE_COMMIT}) and after the streamed OU walk",
               "variants": [variant(f"cove {label}", "cove", 5000, 1, 20, fake={"ous": W6_OUS},
                                    target_ous=W6_TARGET_OUS, child="stamp", build=build)
                            for label, build in (("after", "current"), (f"before {BEFORE_COMMIT}", "before"))]},
        "W7": {"about": "a real child: 200 accounts x 1 region, 50 ms latency; cove runs `aws sts get-caller-identity` "
                        f"(workers {', '.join(map(str, W7_WORKERS))}); botocove calls get_caller_identity in-process "
                        "(workers 20)",
               "variants": [variant("botocove w=20", "botocove", 200, 1, 20, child="aws-sts", sample_tree=True)] +
                           [variant(f"cove w={w}", "cove", 200, 1, w, child="aws-sts", sample_tree=True)
                            for w in sorted(W7_WORKERS, reverse=True)]},
        "W8": {"about": "throttling storm with default settings: 2,000 accounts x 2 regions, 50 ms latency, workers 20; "
                        "10 % of Organizations and 30 % of AssumeRole calls throttled, against the same unthrottled; "
                        "no AWS_MAX_ATTEMPTS or other retry setting",
               "variants": [variant("cove unthrottled", "cove", 2000, 2, 20),
                            variant("cove storm", "cove", 2000, 2, 20, fake={"throttle_for": W8_THROTTLE},
                                    allow_failed=True)]},
    }
    add_auto_workloads(all_w)
    return all_w


# --------------------------------------------------------------------------------------------
# Issue 20, --workers auto: W10 (a child that waits), W11 (a child that holds memory), and the
# settings auto and fixed 2, 4, 8, 20, 64, 128 side by side in W1, W2, W7 and W10.

AUTO_SETTINGS = ("auto", 2, 4, 8, 20, 64, 128)
W10_SLEEP_S = 2
W11_HOLD_S = 3
W11_SHARE = 16  # each W11 child holds 1/16 of the machine's memory


def machine_memory():
    """The memory of the machine, or of the cgroup cove runs in when its limit is lower (what
    --workers auto counts on), in bytes."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


class MemWatch(threading.Thread):
    """The lowest MemAvailable while a run goes on, every 50 ms (W11's target: never under a
    tenth of the machine)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.done = threading.Event()
        self.lowest = mem_available()
        self.start()

    def run(self):
        while not self.done.wait(0.05):
            now = mem_available()
            if now is not None and (self.lowest is None or now < self.lowest):
                self.lowest = now

    def stop(self):
        self.done.set()
        self.join()
        total = machine_memory()
        return {"min_available_mb": self.lowest / 2**20 if self.lowest is not None else None,
                "min_available_share": self.lowest / total if self.lowest is not None else None,
                "machine_memory_mb": total / 2**20}


def w11_child(v):
    """A Python child that holds 1/16 of the machine's memory (scaled down with --scale) for
    W11_HOLD_S seconds, every page written."""
    size = int(machine_memory() / W11_SHARE * min(1.0, v.get("scale", 1.0)))
    script = f"import time; held = b'x' * {size}; time.sleep({v.get('hold_s', W11_HOLD_S)})"
    return [sys.executable, "-c", script]


AUTO_CHILDREN = {
    "sleep": lambda v: ["sleep", str(v.get("sleep_s", W10_SLEEP_S))],
    "hold": w11_child,
}


def setting_label(w):
    return f"cove w={w}"


def add_auto_workloads(all_w):
    """W10 and W11, and auto beside fixed settings in W1, W2 and W7 (labels `cove w=N`; in W1
    and W2 the existing `cove` is w=20)."""
    for name in ("W1", "W2"):
        base = next(v for v in all_w[name]["variants"] if v["label"] == "cove")
        for w in AUTO_SETTINGS:
            if w != 20:
                all_w[name]["variants"].append(
                    variant(setting_label(w), "cove", base["accounts"], len(base["regions"]), w))
        all_w[name]["about"] += "; cove also with --workers " + ", ".join(map(str, AUTO_SETTINGS))
    have7 = {v["label"] for v in all_w["W7"]["variants"]}
    for w in AUTO_SETTINGS:
        if setting_label(w) not in have7:
            all_w["W7"]["variants"].append(
                variant(setting_label(w), "cove", 200, 1, w, child="aws-sts", sample_tree=True))
    all_w["W7"]["about"] += "; and auto, 64, 128"
    all_w["W10"] = {
        "about": f"waiting: 1,000 accounts x 1 region, each child `sleep {W10_SLEEP_S}` (no CPU), 50 ms latency; "
                 f"cove --workers {', '.join(map(str, AUTO_SETTINGS))}",
        "variants": [variant(setting_label(w), "cove", 1000, 1, w, child="sleep", sample_tree=True,
                             timeout_s=1500) for w in AUTO_SETTINGS]}
    all_w["W11"] = {
        "about": f"memory: 60 accounts x 1 region, each child holds 1/{W11_SHARE} of the machine's memory for "
                 f"{W11_HOLD_S} s; cove --workers auto and 4 only (20 such children would need more than the machine)",
        "variants": [variant(setting_label(w), "cove", 60, 1, w, child="hold", sample_tree=True,
                             watch_memory=True) for w in ("auto", 4)]}


def auto_smoke():
    """Small forms of W10 and W11 (auto only; checks, no timing): 40 children asleep for 1 s,
    and 10 children each holding 1/256 of the machine for 1 s."""
    return {
        "SMOKE-W10": {"about": "W10 in small: 40 accounts x 1 region, `sleep 1`, --workers auto (checks only)",
                      "variants": [variant("cove w=auto", "cove", 40, 1, "auto", latency_ms=5, child="sleep",
                                           sleep_s=1)]},
        "SMOKE-W11": {"about": "W11 in small: 10 accounts x 1 region, each child holds 1/256 of the machine "
                               "for 1 s, --workers auto (checks only)",
                      "variants": [variant("cove w=auto", "cove", 10, 1, "auto", latency_ms=5, child="hold",
                                           scale=1 / 16, hold_s=1, watch_memory=True)]},
    }


def auto_targets(results, add):
    """Issue 20's targets: auto within 1.15x of the best fixed setting (W1, W2, W7, W10), at
    least 4x faster than 20 in W10, and in W11 available memory never under a tenth of the
    machine with no process killed (every target in Results)."""
    def wall(v):
        return v["median"]["wall_s"] if v and v.get("median") and v["runs"] else None

    def settings(name):
        spec = results["workloads"].get(name, {})
        out = {}
        for v in spec.get("variants", []):
            if v["tool"] != "cove" or wall(v) is None:
                continue
            w = "auto" if v["workers"] == "auto" else int(v["workers"])
            out[w] = v
        return out

    for name in ("W1", "W2", "W7", "W10"):
        s = settings(name)
        fixed = {w: v for w, v in s.items() if w != "auto"}
        if "auto" not in s or not fixed:
            continue
        best_w, best = min(fixed.items(), key=lambda x: wall(x[1]))
        r = wall(s["auto"]) / wall(best)
        add(f"{name} auto within 1.15x of the best fixed --workers", r <= 1.15,
            f"auto {wall(s['auto']):.2f} s / best fixed w={best_w} {wall(best):.2f} s = {r:.2f}x; " +
            ", ".join(f"w={w}: {wall(v):.2f} s, {1000 * v['median']['cpu_s'] / v['targets']:.2f} ms CPU/target, "
                      f"peak tree RSS {fmt(v['median'].get('tree_rss_mb'), '{:.0f}')} MB"
                      for w, v in sorted(s.items(), key=lambda x: (x[0] != 'auto', str(x[0]).zfill(4)))))
    s10 = settings("W10")
    if "auto" in s10 and 20 in s10:
        r = wall(s10[20]) / wall(s10["auto"])
        add("W10 auto at least 4x faster than --workers 20", r >= 4,
            f"w=20 {wall(s10[20]):.2f} s / auto {wall(s10['auto']):.2f} s = {r:.1f}x")
    spec = results["workloads"].get("W11")
    for v in (spec or {}).get("variants", []):
        if not v["runs"]:
            continue
        low = [r.get("min_available_share") for r in v["runs"]]
        killed = [r["check"] for r in v["runs"] if not r["check_ok"]]
        ok = all(x is not None and x >= 0.10 for x in low) and not killed
        add(f"W11 {v['label']}: available memory never under 10% of the machine, no process killed", ok,
            f"lowest available per run: {', '.join(f'{100 * x:.1f}%' if x is not None else '-' for x in low)} "
            f"of {v['runs'][0].get('machine_memory_mb', 0):.0f} MB; wall {fmt(wall(v))} s; peak tree RSS "
            f"{fmt(v['median'].get('tree_rss_mb'), '{:.0f}')} MB" + (f"; failed: {killed}" if killed else ""))


def cove_bin(v):
    return COVE_BEFORE if v.get("build") == "before" else COVE


def command_for(v, run_dir=None):
    """run_dir: a fresh directory for this run's stamps (W6) or --output-dir (W5)."""
    regions = ",".join(v["regions"])
    child = CHILD
    if v.get("child") == "stamp":
        child = [str(STAMP), str(run_dir / "stamps")]
    elif v.get("child") == "aws-sts":
        child = [str(AWS_CLI), "sts", "get-caller-identity"]
    elif v.get("child") in AUTO_CHILDREN:
        child = AUTO_CHILDREN[v["child"]](v)
    if v["tool"] == "cove":
        argv = [str(cove_bin(v)), "--workers", str(v["workers"]), "--region", regions]
        if v["output"] == "jsonl":
            argv += ["--output", "jsonl"]
        if v.get("target_ous"):
            argv += ["--target", ",".join(ou_id(n) for n in v["target_ous"])]
        if v.get("output_dir"):
            argv += ["--output-dir", str(run_dir / "out")]
        return argv + ["--"] + child
    if v["tool"] == "botocove":
        if v.get("child") == "aws-sts":
            # botocove's natural form: the same call in-process, on the session it built.
            return [sys.executable, str(BOTOCOVE_RUN), "--workers", str(v["workers"]),
                    "--regions", regions, "--call", "sts:get_caller_identity"]
        return [sys.executable, str(BOTOCOVE_RUN), "--workers", str(v["workers"]),
                "--regions", regions, "--"] + child
    return [str(FLOOR), "--count", str(v["targets"]), "--concurrency", str(v["workers"]), "--"] + child


def missing_binary(v):
    """Why a variant cannot run here (a binary not built), or None."""
    if v["tool"] == "cove" and not cove_bin(v).exists():
        return (f"{cove_bin(v)} is missing: build it with `bench/lib.sh`'s build_before "
                f"(bench/run does, unless BENCH_NO_BUILD is set)")
    if v.get("child") == "stamp" and not STAMP.exists():
        return f"{STAMP} is missing"
    if v.get("child") == "aws-sts" and v["tool"] == "cove" and not AWS_CLI.exists():
        return f"{AWS_CLI} is missing: awscli is pinned in bench/requirements.txt"
    return None


def first_child(run_dir, started_epoch, expected):
    """W6: seconds from the tool's start to the first and the median child's stamp."""
    stamps = []
    for f in (run_dir / "stamps").iterdir():
        try:
            stamps.append(float(f.read_text().strip()))
        except (OSError, ValueError):
            pass
    stamps.sort()
    out = {"stamps": len(stamps)}
    if stamps:
        out["first_child_s"] = stamps[0] - started_epoch
        out["median_child_s"] = stamps[len(stamps) // 2] - started_epoch
    if len(stamps) != expected:
        out["problem"] = f"{len(stamps)} child stamps, expected {expected}"
    return out


def output_dir_check(run_dir, v):
    """W5 --output-dir: one directory per account, one per region in it, and the size on disk."""
    out = run_dir / "out"
    try:
        accounts = [d for d in out.iterdir() if d.is_dir()]
    except OSError as e:
        return {"problem": f"no --output-dir: {e}"}
    info = {"account_dirs": len(accounts), "results_json": (out / "results.json").exists()}
    if len(accounts) != v["accounts"]:
        info["problem"] = f"{len(accounts)} account directories in --output-dir, expected {v['accounts']}"
    else:
        sample = accounts[0]
        regions = sorted(d.name for d in sample.iterdir() if d.is_dir())
        if regions != sorted(v["regions"]) or not (sample / regions[0] / "stdout").exists():
            info["problem"] = f"{sample}: regions {regions}, stdout there: {(sample / regions[0] / 'stdout').exists()}"
    return info


def fake_key(v):
    return (v["accounts"], v["latency_ms"], fake_tag(v.get("fake")))


def run_workload(name, spec, reps, tmp):
    if spec.get("runner") == "w9":
        return run_w9(name, spec, reps, tmp)
    fakes = {}
    max_seconds = 4 * 3600
    for v in spec["variants"]:
        v["runs"] = []
        v["checks"] = []
        why = missing_binary(v)
        if why:
            v["skipped"] = why
            v["missing"] = True
            log(f"{name} {v['label']}: NOT RUN: {why}")
            continue
        if fake_key(v) not in fakes:
            fakes[fake_key(v)] = Fake(v["accounts"], v["latency_ms"], tmp, max_seconds, v.get("fake"))
    try:
        for rep in range(reps):
            for v in spec["variants"]:
                if v.get("skipped"):
                    continue
                fake = fakes[fake_key(v)]
                home = tempfile.mkdtemp(dir=tmp, prefix="home-")
                run_dir = Path(tempfile.mkdtemp(dir=tmp, prefix="run-"))
                (run_dir / "stamps").mkdir()
                extra = {"AWS_DEFAULT_REGION": "us-east-1"} if v["tool"] == "botocove" else None
                env = clean_env(fake.endpoint, home, extra)
                out_path = tmp / "run.out"
                err_path = tmp / "run.err"
                fake.reset_max_in_flight()
                before = fake.calls()
                watch = MemWatch() if v.get("watch_memory") else None
                argv = command_for(v, run_dir)
                if v.get("big_mb"):
                    argv = w12_command(v, argv, run_dir)
                m = measure(argv, env, out_path, err_path, v["timeout_s"],
                            sample_tree=v.get("sample_tree", False))
                if watch:
                    m.update(watch.stop())
                after = fake.calls()
                calls, throttled, throttled_by_op = call_delta(before, after)
                m["max_assume_in_flight"] = after.get("max_in_flight", {}).get("sts:AssumeRole", 0) if calls.get("sts:AssumeRole") else 0
                m["aws_calls"] = sum(calls.values())
                m["aws_calls_by_op"] = calls
                m["throttled"] = throttled
                m["throttled_by_op"] = throttled_by_op
                m["rep"] = rep + 1
                if m["timed_out"]:
                    ok, detail = False, f"timed out after {v['timeout_s']} s"
                elif v["tool"] == "spawn-floor":
                    ok = m["exit_code"] == 0
                    detail = open(out_path).read().strip() if ok else open(err_path).read()[-500:]
                else:
                    ok, detail, info = w12_check(out_path, v) if v.get("big_mb") else check_output(
                        out_path, v["output"], v["accounts"], v["regions"], want_ids=wanted_ids(v),
                        allow_failed=v.get("allow_failed", False),
                        result_check=names_its_account if v.get("child") == "aws-sts" else None)
                    m["lost"] = info.get("lost")
                    m["lost_by_outcome"] = info.get("lost_by_outcome")
                    if (not ok and v.get("allow_failed") and m["exit_code"] not in (0, 1) and info
                            and not info["unexpected"] and not info["duplicated"]):
                        # W8: cove gave up on the whole run (a listing call throttled on every
                        # attempt). The targets it never reported are lost too: what W8 measures.
                        m["lost"] = info["lost"] + info["missing"]
                        m["lost_by_outcome"]["never reported (the run failed)"] = info["missing"]
                        m["run_failed"] = True
                        ok, detail = True, (f"cove failed the run (exit {m['exit_code']}): {info['missing']} of "
                                            f"{info['expected']} targets never reported, {info['lost']} more not in Results: "
                                            + open(err_path, errors="replace").read()[-300:].replace("\n", " "))
                    # cove exits 1 when a target failed; that is what W8 measures, not a fault.
                    if ok and m["exit_code"] != 0 and not (v.get("allow_failed") and (m.get("run_failed") or info["lost"])):
                        ok, detail = False, f"exit code {m['exit_code']}"
                    assumed = calls.get("sts:AssumeRole", 0) - throttled_by_op.get("sts:AssumeRole", 0)
                    want_assumed = info.get("assumed_accounts") if v.get("allow_failed") else \
                        len(wanted_ids(v) or range(v["accounts"]))
                    if ok and v["tool"] == "cove" and not m.get("run_failed") and assumed != want_assumed:
                        ok, detail = False, (f"{assumed} successful AssumeRole calls for {want_assumed} accounts "
                                             f"({calls.get('sts:AssumeRole')} calls, "
                                             f"{throttled_by_op.get('sts:AssumeRole', 0)} throttled)")
                    if v.get("child") == "stamp":
                        m.update(first_child(run_dir, m["started_epoch"], v["targets"]))
                        if ok and m.get("problem"):
                            ok, detail = False, m["problem"]
                    if v.get("output_dir"):
                        m["output_dir"] = output_dir_check(run_dir, v)
                        if ok and m["output_dir"].get("problem"):
                            ok, detail = False, m["output_dir"]["problem"]
                if not ok and not m["timed_out"]:
                    detail += " | stderr: " + open(err_path, errors="replace").read()[-800:].replace("\n", " ")
                m["check_ok"], m["check"] = ok, detail
                v["runs"].append(m)
                more = ""
                if "first_child_s" in m:
                    more += f"  first child {m['first_child_s']:6.2f} s"
                if "tree_pss_mb" in m:
                    more += f"  tree pss {m['tree_pss_mb']:6.1f} MB ({m['tree_procs']} procs)"
                if throttled:
                    more += f"  throttled {throttled}"
                log(f"{name} rep {rep + 1}/{reps} {v['label']:<20} wall {m['wall_s']:7.2f} s  cpu {m['cpu_s']:6.2f} s  "
                    f"rss {fmt(m['maxrss_mb'], '{:6.1f}')} MB  aws calls {m['aws_calls']:6d}  "
                    f"max AssumeRole in flight {m['max_assume_in_flight']:4d}{more}  "
                    f"{'ok' if ok else 'CHECK FAILED'}: {detail[:300]}")
                if m["timed_out"] and v.get("skip_after_timeout"):
                    v["skipped"] = f"timed out after {v['timeout_s']} s in rep {rep + 1}; not repeated"
                shutil.rmtree(home, ignore_errors=True)
                shutil.rmtree(run_dir, ignore_errors=True)
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
        # Only some workloads have these (W6: child stamps; W7: the process tree; W8: lost targets).
        for k in ("first_child_s", "median_child_s", "tree_rss_mb", "tree_pss_mb", "tree_procs", "lost", "throttled",
                  "min_available_mb", "min_available_share"):
            xs = [r[k] for r in runs if r.get(k) is not None]
            if xs:
                med[k] = median(xs)
        v["median"] = med
        v["all_checks_ok"] = bool(v["runs"]) and all(r["check_ok"] for r in v["runs"])
        if v["tool"] == "spawn-floor":
            floors[(v["targets"], v["workers"])] = v
    for v in spec["variants"]:
        med = v["median"]
        # The floor is for the `true` child over the whole organization (W1-W5, W8).
        if v["tool"] == "cove" and not v.get("child") and not v.get("target_ous") and v["workers"] != "auto":
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
                check_word(v),
            ])
    return render(head, lines)


def check_word(v):
    if v.get("missing"):
        return "NOT RUN"
    return ("ok" if v["all_checks_ok"] else ("TIMEOUT" if v.get("skipped") else "FAIL")) + f" ({len(v['runs'])} runs)"


def render(head, lines):
    widths = [max(len(str(r[i])) for r in [head] + lines) for i in range(len(head))]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in lines:
        out.append("| " + " | ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                                     for i, (c, w) in enumerate(zip(r, widths))) + " |")
    return "\n".join(out)


def extra_table(results):
    """The figures only some workloads have: W6's child stamps, W7's whole process tree, W8's
    lost targets and throttled calls. None when no variant has any."""
    head = ["workload", "variant", "targets", "workers", "wall s", "1st cmd s", "median cmd s",
            "CPU ms/tgt", "max RSS MB", "tree RSS MB", "tree PSS MB", "procs", "AWS calls", "throttled", "lost"]
    lines = []
    for name, spec in results["workloads"].items():
        for v in spec["variants"]:
            m = v.get("median", {})
            if name not in ("W6", "W7", "W8") and not (v.get("child") or v.get("fake") or v.get("allow_failed")):
                continue
            lines.append([
                name, v["label"], f"{v['targets']:,}", str(v["workers"]), fmt(m.get("wall_s")),
                fmt(m.get("first_child_s")), fmt(m.get("median_child_s")),
                fmt(1000 * m["cpu_s"] / v["targets"] if m.get("cpu_s") is not None else None, "{:.1f}"),
                fmt(m.get("maxrss_mb"), "{:.1f}"), fmt(m.get("tree_rss_mb"), "{:.0f}"),
                fmt(m.get("tree_pss_mb"), "{:.0f}"), fmt(m.get("tree_procs"), "{:.0f}"),
                fmt(m.get("aws_calls"), "{:,.0f}"), fmt(m.get("throttled"), "{:,.0f}"),
                fmt(m.get("lost"), "{:,.0f}"),
            ])
    return render(head, lines) if lines else None


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

    w12_targets(results, add)
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

    big, ref = find(results, "W5", "cove 10000x3 outdir"), find(results, "W5", "cove 1000x3 outdir")
    if big and ref and big["median"]["maxrss_mb"] and ref["median"]["maxrss_mb"]:
        r = big["median"]["maxrss_mb"] / ref["median"]["maxrss_mb"]
        add("W5 --output-dir: peak RSS at 10,000 x 3 within 1.5x of 1,000 x 3", r <= 1.5,
            f"{big['median']['maxrss_mb']:.1f} MB / {ref['median']['maxrss_mb']:.1f} MB = {r:.2f}x "
            f"(without --output-dir: {fmt(find(results, 'W5', 'cove 10000x3')['median']['maxrss_mb'], '{:.1f}')} MB / "
            f"{fmt(find(results, 'W5', 'cove 1000x3')['median']['maxrss_mb'], '{:.1f}')} MB)")

    after, before = find(results, "W6", "cove after"), find(results, "W6", f"cove before {BEFORE_COMMIT}")
    if after and after["median"].get("first_child_s") is not None:
        a = after["median"]["first_child_s"]
        b = before["median"].get("first_child_s") if before else None
        was = (f"; before ({BEFORE_COMMIT}): {b:.2f} s ({b / a:.0f}x longer)" if b is not None else
               f"; before ({BEFORE_COMMIT}): {before.get('skipped', 'not measured')}" if before else "")
        add("W6 first command within 1 s at 50 ms latency (5,000 accounts, --target 5 of 50 OUs)", a <= 1.0,
            f"after: {a:.2f} s from cove's start to the first child's start (median child {after['median']['median_child_s']:.2f} s, "
            f"wall {after['median']['wall_s']:.2f} s){was}")

    boto7 = find(results, "W7", "botocove w=20")
    cove7 = {w: find(results, "W7", f"cove w={w}") for w in W7_WORKERS}
    c20 = cove7.get(20)
    if boto7 and c20 and boto7["median"]["wall_s"] and c20["median"]["wall_s"]:
        def desc(v):
            m = v["median"]
            return (f"wall {m['wall_s']:.2f} s, CPU {1000 * m['cpu_s'] / v['targets']:.0f} ms/target, "
                    f"peak PSS of the whole tree {fmt(m.get('tree_pss_mb'), '{:.0f}')} MB "
                    f"(RSS {fmt(m.get('tree_rss_mb'), '{:.0f}')} MB over at most {fmt(m.get('tree_procs'), '{:.0f}')} processes; "
                    f"largest single process {fmt(m['maxrss_mb'], '{:.0f}')} MB)")
        add(f"W7 real child (information): cove + `aws sts get-caller-identity` vs botocove in-process, "
            f"{c20['targets']:,} targets", None,
            f"cove w=20: {desc(c20)}; botocove w=20: {desc(boto7)}; "
            f"cove/botocove wall {c20['median']['wall_s'] / boto7['median']['wall_s']:.2f}, "
            f"CPU {c20['median']['cpu_s'] / boto7['median']['cpu_s']:.2f}")
    sweep7 = [(w, v) for w, v in sorted(cove7.items()) if v and v["median"]["wall_s"]]
    if len(sweep7) >= 2:
        best_w, best = min(sweep7, key=lambda x: x[1]["median"]["wall_s"])
        # The fewest workers within 10 % of the best wall time: more only adds memory.
        enough_w = min(w for w, v in sweep7 if v["median"]["wall_s"] <= 1.10 * best["median"]["wall_s"])
        add("W7 cove wall by --workers with a CPU-heavy child (information)", None,
            ", ".join(f"w={w}: {v['median']['wall_s']:.1f} s ({v['median']['cpu_s']:.1f} s CPU, "
                      f"tree PSS {fmt(v['median'].get('tree_pss_mb'), '{:.0f}')} MB)" for w, v in sweep7) +
            f"; fastest at w={best_w}; within 10 % of it from w={enough_w} (nproc = {os.cpu_count()})")

    calm, storm = find(results, "W8", "cove unthrottled"), find(results, "W8", "cove storm")
    if storm and storm["runs"]:
        worst = max((r.get("lost") or 0) for r in storm["runs"])
        complete = all(r["check_ok"] and not r.get("run_failed") for r in storm["runs"])
        def calls(v):
            m = v["median"]
            ops = v["runs"][len(v["runs"]) // 2]["aws_calls_by_op"] if v["runs"] else {}
            return f"{fmt(m['aws_calls'], '{:,.0f}')} calls ({', '.join(f'{k} {n:,}' for k, n in sorted(ops.items()))})"
        add("W8 zero lost targets in a throttling storm with default settings", worst == 0 and complete,
            f"lost targets per run: {[r.get('lost') for r in storm['runs']]} of {storm['targets']:,} "
            f"({'; '.join(sorted({json.dumps(r.get('lost_by_outcome')) for r in storm['runs'] if r.get('lost')})) or 'none'}); "
            f"AWS calls: storm {calls(storm)}, of which {fmt(storm['median'].get('throttled'), '{:,.0f}')} throttled"
            + (f"; unthrottled {calls(calm)}" if calm and calm["runs"] else "")
            + f"; wall storm {fmt(storm['median']['wall_s'])} s"
            + (f", unthrottled {fmt(calm['median']['wall_s'])} s" if calm and calm["runs"] else ""))
    w9_verdicts(results, add)
    auto_targets(results, add)
    # A workload run scaled down (--scale) or with a note (a busy machine) says so in its verdicts.
    for t in verdicts:
        run = results["workloads"].get(t["target"].split(" ", 1)[0], {}).get("run", {})
        caveats = ([f"SCALED x{run['scale']:g}"] if run.get("scale") else []) + ([run["note"]] if run.get("note") else [])
        if caveats:
            t["detail"] += f" [{'; '.join(caveats)}]"
    return verdicts


# --------------------------------------------------------------------------------------------
# W12: big outputs. Each child prints a JSON listing of `big_mb` MB (cat of a file made per
# run); cove runs in each output mode, and once with a reader that waits before reading.
# The checks stream the output: a 750 MB document is never loaded whole by this driver.

W12_RSS_TARGET_MB = 160
W12_HEADER = re.compile(
    rb'\{"Id":"(\d{12})","Name":(?:null|"[^"]*"),"Email":(?:null|"[^"]*"),"Status":(?:null|"[^"]*"),'
    rb'"Partition":"[a-z-]+","Region":"([a-z0-9-]+)"')


def w12_variants(accounts, mb, wait_s):
    def big(label, tool, output="json", **more):
        # child "cat": no spawn floor (that is for the `true` child); w12_command sets the command.
        return variant(label, tool, accounts, 1, 20, latency_ms=20, output=output, big_mb=mb, child="cat", **more)
    return [big("cove json", "cove"),
            big("cove jsonl", "cove", "jsonl"),
            big("cove jsonl outdir", "cove", "jsonl", output_dir=True),
            big("cove text", "cove", "text"),
            big(f"cove jsonl, reader waits {wait_s} s", "cove", "jsonl", reader_wait_s=wait_s),
            big("botocove", "botocove")]


def w12_blob(run_dir, mb):
    """A listing as `aws s3api list-objects-v2` prints it, of about `mb` MB, one object a line."""
    path = run_dir / "blob.json"
    entry = ('    {{"Key": "logs/2024/05/{n:08d}.json.gz", "LastModified": "2024-05-01T12:00:00+00:00", '
             '"ETag": "\\"9b2cf535f27731c974343645a3985328\\"", "Size": {size}, "StorageClass": "STANDARD"}}')
    count = max(1, mb * 2**20 // 160)
    with open(path, "w") as f:
        f.write('{\n  "Contents": [\n')
        f.write(",\n".join(entry.format(n=n, size=1000 + n) for n in range(count)))
        f.write('\n  ],\n  "KeyCount": %d\n}\n' % count)
    return path, count


def w12_command(v, argv, run_dir):
    """The W12 form of a command: the child prints the blob; cove gets its --output; the reader
    that waits is a shell pipe (/usr/bin/time's peak RSS is then the largest process's: cove)."""
    path, _ = w12_blob(run_dir, v["big_mb"])
    cut = argv.index("--")
    argv = argv[:cut] + ["--", "cat", str(path)]
    if v["tool"] == "cove" and v["output"] == "text":
        argv[cut:cut] = ["--output", "text"]
    if v.get("reader_wait_s"):
        argv = ["sh", "-c", f'"$@" | {{ sleep {v["reader_wait_s"]}; exec cat; }}', "sh"] + argv
    return argv


def w12_check(path, v):
    """Every target once, in Results, each with its whole listing: streamed, never loaded whole."""
    want = {(account_id(i), r) for i in range(v["accounts"]) for r in v["regions"]}
    entries = max(1, v["big_mb"] * 2**20 // 160)
    seen, problems = [], []
    try:
        if v["tool"] == "botocove":
            with open(path, "rb") as f:
                doc = json.load(f)
            for r in doc.get("Results", []):
                seen.append((r.get("Id"), r.get("Region")))
                if len(r.get("Result", "")) < v["big_mb"] * 2**20 * 0.9:
                    problems.append(f"{r.get('Id')}: short Result")
            if doc.get("Exceptions") or doc.get("FailedAssumeRole"):
                problems.append("targets outside Results")
        elif v["output"] == "jsonl":
            with open(path, "rb") as f:
                for line in f:
                    obj = json.loads(line)
                    if "Summary" in obj:
                        continue
                    seen.append((obj.get("Id"), obj.get("Region")))
                    if obj.get("Outcome") != "Result" or len(obj["Result"]["Contents"]) != entries:
                        problems.append(f"{obj.get('Id')}: {obj.get('Outcome')}, not the whole listing")
        elif v["output"] == "text":
            lines = {}
            with open(path, "rb") as f:
                for line in f:
                    parts = line.split(b" ", 3)
                    key = (parts[0].decode(), parts[2].decode())
                    lines[key] = lines.get(key, 0) + 1
            seen = list(lines)
            short = [k for k, n in lines.items() if n != entries + 5]
            if short:
                problems.append(f"{len(short)} targets without all their lines (first {short[0]})")
        else:
            size = os.path.getsize(path)
            found = {}
            with open(path, "rb") as f:
                tail, base = b"", 0
                while chunk := f.read(16 * 2**20):
                    text = tail + chunk
                    for m in W12_HEADER.finditer(text):
                        found[base + m.start()] = (m.group(1).decode(), m.group(2).decode())
                    keep = min(len(text), 4096)  # a record's header is shorter
                    tail, base = text[-keep:], base + len(text) - keep
            seen = list(found.values())
            if size < len(want) * v["big_mb"] * 2**20 * 0.9:
                problems.append(f"{size} bytes: short of {len(want)} listings")
            with open(path, "rb") as f:
                f.seek(max(0, size - 64))
                if not f.read().endswith(b'"Exceptions":[],"FailedAssumeRole":[]}\n'):
                    problems.append("targets outside Results")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        return False, f"unreadable output: {e}", {}
    unique = set(seen)
    if len(seen) != len(want) or unique != want:
        problems.append(f"{len(seen)} records ({len(unique)} unique), expected {len(want)}")
    info = {"lost": 0, "lost_by_outcome": {}, "assumed_accounts": v["accounts"]}
    if problems:
        return False, "; ".join(problems[:3]), info
    return True, f"{len(seen)} records of {v['big_mb']} MB each", info


def w12_targets(results, add):
    spec = results["workloads"].get("W12")
    if not spec:
        return
    boto = find(results, "W12", "botocove")
    boto_rss = boto and boto.get("median", {}).get("maxrss_mb")
    for v in spec["variants"]:
        rss = v.get("median", {}).get("maxrss_mb")
        if v["tool"] != "cove" or rss is None:
            continue
        add(f"W12 {v['label']}: cove peak RSS <= {W12_RSS_TARGET_MB} MB", rss <= W12_RSS_TARGET_MB,
            f"cove {rss:.0f} MB, wall {v['median']['wall_s']:.1f} s; botocove "
            + (f"{boto_rss:.0f} MB for the same outputs" if boto_rss else "not measured"))


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
        "cove_before": f"{BEFORE_COMMIT}: {sh(f'{COVE_BEFORE} --version') if COVE_BEFORE.exists() else 'not built'}",
        "awscli_version": sh(f"{AWS_CLI} --version") if AWS_CLI.exists() else "not installed",
        "loadavg": loadavg(),
        "botocove_version": sh(f"{sys.executable} -m pip show botocove 2>/dev/null | grep ^Version"),
        "git_commit": sh(f"git -C {ROOT} rev-parse --short HEAD") + (" (dirty tree)" if sh(f"git -C {ROOT} status --porcelain -- src Cargo.toml Cargo.lock") else ""),
    }


def print_report(results):
    print(f"cove benchmark, {results['started']}, {results['reps']} rep(s), medians; "
          f"child command: {' '.join(results['child_command'])}")
    print(f"machine: {results['machine']['nproc']} cores, {results['machine']['cpu_model']}; "
          f"{results['machine']['cove_version']}; botocove {results['machine']['botocove_version'].replace('Version: ', '')}")
    print(results["cove_output_note"])
    for w, spec in results["workloads"].items():
        run = spec.get("run", {})
        if run.get("note") or run.get("scale"):
            scaled = f", SCALED x{run['scale']:g}" if run.get("scale") else ""
            note = f": {run['note']}" if run.get("note") else ""
            print(f"{w}: run {run.get('started')} at {run.get('git_commit')}, "
                  f"load average {run.get('loadavg_before')}{scaled}{note}")
    print()
    print(table(results))
    extra = extra_table(results)
    if extra:
        print()
        print("W6 (time to first command), W7 (a real child), W8 (throttling storm): "
              "1st/median cmd s = from the tool's start to the first/median child's own stamp; "
              "max RSS = the largest single process (the tool, or one child); tree RSS/PSS = the "
              "tool and all its children together, at their peak; lost = targets not in Results.")
        print(extra)
    if results["targets"]:
        print()
        for t in results["targets"]:
            word = "INFO" if t["pass"] is None else "PASS" if t["pass"] else "FAIL"
            print(f"{word}  {t['target']}: {t['detail']}")
    print()


def report(path):
    """Re-summarizes a results file (with this version's summary) and prints it."""
    results = json.loads(path.read_text())
    for name, spec in results["workloads"].items():
        summarize(name, spec)
    results["targets"] = [] if results.get("smoke") else targets(results)
    print_report(results)
    return 0


def loadavg():
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return None


def merge_into(old, new):
    """latest.json after a run of some workloads (--only): the old file with those workloads
    replaced, the targets judged again over all of them, and the partial run listed."""
    merged = dict(old)
    merged["workloads"] = dict(old.get("workloads", {}))
    for name, spec in merged["workloads"].items():
        summarize(name, spec)  # with this version's summary, as --report does
    for name, spec in new["workloads"].items():
        merged["workloads"][name] = spec
    merged.setdefault("partial_runs", []).append({
        "started": new["started"], "finished": new.get("finished"), "workloads": sorted(new["workloads"]),
        "reps": new["reps"], "machine": new["machine"], **({"note": new["note"]} if new.get("note") else {}),
    })
    merged["targets"] = targets(merged)
    merged["check_failures"] = [f for f in old.get("check_failures", [])
                                if f.split(" ", 1)[0] not in new["workloads"]] + new["check_failures"]
    return merged


# --------------------------------------------------------------------------------------------
# W9: plan once, fan out (issue 19 §1). A CI matrix of shards, each a cove process of its own,
# all started at once with --filter-tag: every shard lists the organization and reads the tags
# itself, or one `cove --dry-run` makes the plan and the shards run `cove --plan`. Self-contained:
# run_workload hands W9 to run_w9, main adds w9_workloads, targets adds w9_verdicts.

W9_FILTER = "env=prod"  # bench/fake-aws tags every second account (listing order) env=prod


def w9_workloads(smoke):
    def shards(label, accounts, n, plan, latency_ms):
        v = variant(label, "cove-shards", accounts, 1, 20, latency_ms=latency_ms, output="jsonl",
                    shards=n, plan=plan)
        v["targets"] = len(w9_expected(accounts))
        return v
    if smoke:
        return {"SMOKE-W9": {
            "about": "W9 in small: 200 accounts, 8 shards as 8 cove processes with --filter-tag, 5 ms latency, "
                     "with and without a plan (checks the targets and that a plan lists exactly once)",
            "runner": "w9",
            "variants": [shards(f"8 shards {p}", 200, 8, p == "plan", 5) for p in ("plan", "no plan")]}}
    return {"W9": {
        "about": f"plan once, fan out: 5,000 accounts x 1 region, 64 shards as 64 cove processes started at once "
                 f"with --filter-tag {W9_FILTER}, 50 ms latency, workers 20 each; without a plan (each shard "
                 f"lists and reads tags) and with one (`cove --dry-run` once, then `cove --plan`); wall = "
                 f"first start to last exit, the plan included",
        "runner": "w9",
        "variants": [shards(f"64 shards {p}", 5000, 64, p == "plan", 50) for p in ("no plan", "plan")]}}


def w9_expected(accounts):
    """The members --filter-tag env=prod keeps: member i is at listing index i + 1 (the
    management account, the caller, is first), and even indexes are env=prod."""
    return {account_id(i) for i in range(accounts) if (i + 1) % 2 == 0}


def w9_list_pages(accounts):
    """ListAccounts calls of one listing of the whole organization (pages of 20)."""
    return math.ceil((accounts + 1) / 20)


def w9_launch(argv, env, out_path, err_path):
    rss = str(out_path) + ".time"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([TIME, "-o", rss, "-f", "%M"] + argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
    LIVE.add(proc)
    return proc, rss


def w9_wait(procs, deadline):
    """Waits for every (proc, rss path); kills what is left at the deadline. Returns the summed
    rusage (user, sys), the largest %M in MB, the exit codes and whether it timed out."""
    user = sys_ = 0.0
    peak = 0.0
    codes = []
    timed_out = False
    for proc, rss in procs:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                timed_out = True
                for p, _ in procs:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.02)
        LIVE.discard(proc)
        codes.append(os.waitstatus_to_exitcode(status))
        user += usage.ru_utime
        sys_ += usage.ru_stime
        try:
            peak = max(peak, int(Path(rss).read_text().strip().splitlines()[-1]) / 1024.0)
        except (OSError, ValueError, IndexError):
            pass
    return user, sys_, peak, codes, timed_out


def w9_check(v, outs, calls, codes):
    """Every planned target once, in Results, over all shards; with a plan, one listing and one
    tag read per account in total."""
    seen = []
    for path in outs:
        for line in Path(path).read_text().splitlines():
            rec = json.loads(line) if line.strip() else {}
            if "Id" in rec:
                if rec.get("Outcome") not in (None, "Result"):
                    return False, f"{rec['Id']} {rec.get('Region')} is not in Results: {rec.get('Outcome')}"
                seen.append((rec["Id"], rec["Region"]))
    want = w9_expected(v["accounts"])
    if len(seen) != len(set(seen)):
        return False, f"{len(seen) - len(set(seen))} targets reported twice"
    ids = {i for i, _ in seen}
    if ids != want:
        return False, f"{len(want - ids)} planned accounts missing, {len(ids - want)} unexpected"
    if any(c != 0 for c in codes):
        return False, f"exit codes {sorted(set(codes))}"
    lists, tags = calls.get("organizations:ListAccounts", 0), calls.get("organizations:ListTagsForResource", 0)
    detail = f"{len(seen)} targets; ListAccounts {lists}, ListTagsForResource {tags}"
    if v["plan"] and (lists != w9_list_pages(v["accounts"]) or tags != v["accounts"]):
        return False, (f"with a plan: {detail}; expected one listing ({w9_list_pages(v['accounts'])} pages) "
                       f"and {v['accounts']} tag reads")
    return True, detail


def w9_once(v, fake, tmp):
    home = tempfile.mkdtemp(dir=tmp, prefix="home-")
    env = clean_env(fake.endpoint, home)
    base = [str(COVE), "-q"]
    regions = ["--region", ",".join(v["regions"])]
    started = time.perf_counter()
    deadline = started + v["timeout_s"]
    before = fake.calls()
    user = sys_ = peak = 0.0
    codes = []
    timed_out = False
    selection = regions + ["--filter-tag", W9_FILTER]
    if v["plan"]:
        plan = tmp / "plan.json"
        made = w9_launch(base + ["--dry-run"] + selection, env, plan, tmp / "plan.err")
        user, sys_, peak, codes, timed_out = w9_wait([made], deadline)
        selection = ["--plan", str(plan)]
    procs, outs = [], []
    for k in range(1, v["shards"] + 1):
        out = tmp / f"shard-{k}.jsonl"
        outs.append(out)
        argv = base + selection + ["--shard", f"{k}/{v['shards']}", "--workers", str(v["workers"]),
                                   "-o", "jsonl", "--"] + CHILD
        procs.append(w9_launch(argv, env, out, tmp / f"shard-{k}.err"))
    u, s, p, c, t = w9_wait(procs, deadline)
    wall = time.perf_counter() - started
    calls, throttled, throttled_by_op = call_delta(before, fake.calls())
    if t or timed_out:
        ok, detail = False, f"timed out after {v['timeout_s']} s"
    else:
        ok, detail = w9_check(v, outs, calls, codes + c)
    if not ok:
        errs = [tmp / "plan.err"] if v["plan"] else []
        errs += [tmp / f"shard-{k}.err" for k in range(1, v["shards"] + 1)]
        tail = " ".join(e.read_text(errors="replace")[-300:] for e in errs if e.exists() and e.stat().st_size)
        detail += " | stderr: " + tail[-800:].replace("\n", " ")
    shutil.rmtree(home, ignore_errors=True)
    org = {k: n for k, n in calls.items() if k.startswith("organizations:")}
    return {"wall_s": wall, "user_s": user + u, "sys_s": sys_ + s, "cpu_s": user + u + sys_ + s,
            "maxrss_mb": max(peak, p), "exit_code": max(codes + c, default=0), "timed_out": t or timed_out,
            "aws_calls": sum(calls.values()), "aws_calls_by_op": calls, "org_calls": sum(org.values()),
            "org_calls_by_op": org, "throttled": throttled, "throttled_by_op": throttled_by_op,
            "max_assume_in_flight": 0, "check_ok": ok, "check": detail}


def run_w9(name, spec, reps, tmp):
    fakes = {}
    try:
        for v in spec["variants"]:
            v["runs"], v["checks"] = [], []
            v["targets"] = len(w9_expected(v["accounts"]))  # after --scale too
            if not COVE.exists():
                v["skipped"], v["missing"] = f"{COVE} is missing", True
                continue
            if fake_key(v) not in fakes:
                fakes[fake_key(v)] = Fake(v["accounts"], v["latency_ms"], tmp, 4 * 3600, v.get("fake"))
        for rep in range(reps):
            for v in spec["variants"]:
                if v.get("skipped"):
                    continue
                m = w9_once(v, fakes[fake_key(v)], tmp)
                m["rep"] = rep + 1
                v["runs"].append(m)
                ops = ", ".join(f"{k.split(':')[1]} {n:,}" for k, n in sorted(m["org_calls_by_op"].items()))
                log(f"{name} rep {rep + 1}/{reps} {v['label']:<20} wall {m['wall_s']:7.2f} s  cpu {m['cpu_s']:6.2f} s  "
                    f"organizations calls {m['org_calls']:,} ({ops})  "
                    f"{'ok' if m['check_ok'] else 'CHECK FAILED'}: {m['check'][:300]}")
    finally:
        for f in fakes.values():
            f.stop()


def w9_verdicts(results, add):
    spec = results["workloads"].get("W9")
    if not spec:
        return
    by_plan = {v["plan"]: v for v in spec["variants"] if v.get("runs")}
    planned = by_plan.get(True)
    if not planned:
        return
    runs = planned["runs"]
    accounts = planned["accounts"]
    exact = all(r["aws_calls_by_op"].get("organizations:ListAccounts") == w9_list_pages(accounts)
                and r["aws_calls_by_op"].get("organizations:ListTagsForResource") == accounts for r in runs)

    def desc(v):
        r = v["runs"][len(v["runs"]) // 2]
        ops = ", ".join(f"{k.split(':')[1]} {n:,}" for k, n in sorted(r["org_calls_by_op"].items()))
        return (f"{v['label']}: Organizations calls {r['org_calls']:,} ({ops}), wall {fmt(v['median']['wall_s'])} s "
                f"for all {v['shards']} shards")
    add(f"W9 with a plan, exactly one listing and one tag read per account in total over {planned['shards']} shards",
        exact and planned["all_checks_ok"],
        "; ".join(desc(v) for v in (by_plan.get(False), planned) if v)
        + f"; one listing = {w9_list_pages(accounts)} ListAccounts pages and {accounts:,} ListTagsForResource")


def main():
    ap = argparse.ArgumentParser(description="cove vs botocove against bench/fake-aws")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each variant (default 3)")
    ap.add_argument("--smoke", action="store_true",
                    help="100 accounts x 2 regions, 1 rep, both tools; checks outputs, asserts no timing")
    ap.add_argument("--only", default=None,
                    help="comma-separated workloads, e.g. W1,W4; their results replace those workloads "
                         "in bench/results/latest.json, the others are kept")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every workload's account count by this (at least 10 accounts), to check "
                         "the workloads quickly; the figures are then not the workloads' own")
    ap.add_argument("--note", default=None,
                    help="a note kept with each workload's results, e.g. 'machine loaded: figures indicative only'")
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
    all_w.update(w9_workloads(args.smoke))
    reps = 1 if args.smoke else args.reps
    if args.only and not args.smoke:
        wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in all_w]
        if unknown:
            ap.error(f"unknown workload(s) {unknown}; choose from {sorted(all_w)}")
        all_w = {k: v for k, v in all_w.items() if k in wanted}
    if args.scale != 1.0:
        for spec in all_w.values():
            spec["about"] += f" [SCALED x{args.scale:g}]"
            for v in spec["variants"]:
                v["accounts"] = max(10, round(v["accounts"] * args.scale))
                v["targets"] = len(wanted_ids(v) or range(v["accounts"])) * len(v["regions"])
                v["scale"] = args.scale

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
    if args.note:
        results["note"] = args.note
    if args.scale != 1.0:
        results["scale"] = args.scale
    tmp = Path(tempfile.mkdtemp(prefix="cove-bench-"))
    try:
        for name, spec in all_w.items():
            log(f"{name}: {spec['about']} ({reps} rep{'s' if reps > 1 else ''})")
            # Each workload says when and on what it ran, so that runs of some workloads
            # (--only) can be merged into latest.json; the load average shows a busy machine.
            spec["run"] = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                           "reps": reps, "git_commit": results["machine"]["git_commit"],
                           "cove_version": results["machine"]["cove_version"], "loadavg_before": loadavg()}
            if args.note:
                spec["run"]["note"] = args.note
            if args.scale != 1.0:
                spec["run"]["scale"] = args.scale
            run_workload(name, spec, reps, tmp)
            spec["run"]["loadavg_after"] = loadavg()
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
        latest = RESULTS / "latest.json"
        merged = results
        if args.only and latest.exists():
            merged = merge_into(json.loads(latest.read_text()), results)
        latest.write_text(json.dumps(merged, indent=2, default=str) + "\n")

    print_report(results)
    print(f"results: {path.relative_to(ROOT)}" + ("" if args.smoke else " and bench/results/latest.json"))
    if failures:
        print("\nOUTPUT CHECKS FAILED:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
