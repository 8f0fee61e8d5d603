#!/usr/bin/python3
"""study.py - the paper's study, run through the service, and its page.

  deploy/study/study.py run [--only REGEX] [--budget-min M] [--list]
  deploy/study/study.py page

`run` starts a saturnd and two saturn-workers of this checkout's build (a
state dir kept between runs, $SATURN_STUDY_DIR or ~/.cache/saturn-study),
and for every row of ROWS not yet recorded in docs/results/<key>.json
submits it with `saturn sweep` into its group's sweep (so the jobs show on
the dashboard's sweep page and `saturn sweep status study-<group>` lists
them), waits for it, and records what `saturn status JOB --per-epoch
--json` says: the canonical spec, the per-epoch curves and quantizer
states, the final accuracy, the commit and the machine. A row is run once;
delete its file to run it again. Jobs left queued or running by an
interrupted study are picked up again, not resubmitted: they are saturnd's
stored jobs, resumed from their checkpoints.

`page` rebuilds docs/results.md and docs/results/*.svg from the records
alone (the charts drawn by build/server/saturn-chart, the dashboard's chart
code).

Standard library only; run with Debian's /usr/bin/python3.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "docs", "results")
BUILD = os.environ.get("SATURN_BUILD", os.path.join(ROOT, "build"))
SATURN = os.path.join(BUILD, "client", "saturn")
SATURND = os.path.join(BUILD, "server", "saturnd")
WORKER = os.path.join(BUILD, "worker", "saturn-worker")
CHART = os.path.join(BUILD, "server", "saturn-chart")
WORKERS = 2  # saturn-workers of 1 thread each: this machine has 2 cores
SMOKE = {}  # --smoke: fields that make every row tiny (a test of the script)

# ---------------------------------------------------------------- the rows
# A row is one job: a base example, the fields it changes, and its group
# (one sweep per group). Two-stage rows start from the FP32 row named in
# "init" (spec field init_from = that row's job, run first).

CNN = "examples/cnn-small-w4a4.json"  # 8 epochs, lr 0.1, 1 warm-up epoch
PRE = "examples/preresnet20-w4a4.json"  # lr 0.01 from the FP32 stage
PRE_FP32 = "examples/preresnet20-fp32.json"
BIG_FP32_EPOCHS = 3  # stage one of preresnet20 / mobilenetv2 (sized to fit)
BIG_Q_EPOCHS = 2  # stage two


def _cnn_rows():
    rows = []
    for seed in (1, 2):
        rows.append(dict(key=f"cnn-small_fp32_s{seed}", group="cnn-small", base=CNN,
                         set=dict(wbits=32, abits=32, seed=seed)))
    for bits in (2, 3, 4, 8):
        for aq in ("pact", "cgpact"):
            for sat in ("off", "last", "all"):
                for seed in (1, 2):
                    rows.append(dict(key=f"cnn-small_w{bits}a{bits}_{aq}_sat-{sat}_s{seed}",
                                     group="cnn-small", base=CNN,
                                     set=dict(wbits=bits, abits=bits, act_quant=aq, sat=sat,
                                              seed=seed)))
    for seed in (1, 2):
        rows.append(dict(key=f"cnn-small_w4a4_cgpact_sat-last_fan-out_s{seed}",
                         group="cnn-small-fan", base=CNN,
                         set=dict(wbits=4, abits=4, act_quant="cgpact", sat="last",
                                  sat_fan="out", seed=seed)))
    for bits in (2, 3):
        for aq in ("pact", "cgpact"):
            rows.append(dict(key=f"cnn-small_w{bits}a{bits}_{aq}_sat-last_calibrate_s1",
                             group="cnn-small-alpha", base=CNN,
                             set=dict(wbits=bits, abits=bits, act_quant=aq, sat="last",
                                      alpha_init="calibrate", seed=1)))
    return rows


def _big_rows(model):
    fp32 = f"{model}_fp32_s1"
    rows = [dict(key=fp32, group=model, base=PRE_FP32,
                 set=dict(model=model, epochs=BIG_FP32_EPOCHS, workers=WORKERS, seed=1))]
    for bits in (4, 3, 2):
        for aq in ("pact", "cgpact"):
            rows.append(dict(key=f"{model}_w{bits}a{bits}_{aq}_sat-last_s1", group=model,
                             base=PRE, init=fp32,
                             set=dict(model=model, wbits=bits, abits=bits, act_quant=aq,
                                      sat="last", epochs=BIG_Q_EPOCHS, workers=WORKERS,
                                      seed=1)))
    for aq in ("pact", "cgpact"):
        rows.append(dict(key=f"{model}_w2a2_{aq}_sat-last_calibrate_s1", group=model + "-alpha",
                         base=PRE, init=fp32,
                         set=dict(model=model, wbits=2, abits=2, act_quant=aq, sat="last",
                                  alpha_init="calibrate", epochs=BIG_Q_EPOCHS, workers=WORKERS,
                                  seed=1)))
    return rows


def all_rows():
    """Every row, the most telling first: each family's FP32 and 4/3/2-bit
    PACT vs CG-PACT before the rest of the cnn-small grid."""
    cnn = _cnn_rows()
    head = [r for r in cnn if r["key"].endswith("_s1") and
            (r["key"].startswith("cnn-small_fp32") or "_sat-last_s1" in r["key"])]
    head += [r for r in cnn if r["group"] != "cnn-small"]  # sat_fan, alpha_init
    rest = [r for r in cnn if r not in head]
    return head + _big_rows("preresnet20") + _big_rows("mobilenetv2") + rest


# ---------------------------------------------------------------- running

def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def record_path(key):
    return os.path.join(RESULTS, key + ".json")


def load_record(key):
    try:
        with open(record_path(key)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class Service:
    """A saturnd and its workers on 127.0.0.1, stopped by PID."""

    def __init__(self, state):
        self.state = state
        self.procs = []
        os.makedirs(state, mode=0o700, exist_ok=True)
        os.chmod(state, 0o700)
        port_file = os.path.join(state, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self._spawn([SATURND, "--state-dir", state, "--listen", "127.0.0.1:0", "--port-file",
                     port_file, "--log-level", "info"], "saturnd.log")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            if self.procs[0].poll() is not None:
                raise SystemExit(f"saturnd exited; see {state}/saturnd.log")
            time.sleep(0.1)
        else:
            raise SystemExit("saturnd did not write its port in 30 s")
        self.addr = "127.0.0.1:" + open(port_file).read().strip()
        for i in range(WORKERS):
            self._spawn([WORKER, "--coordinator", self.addr, "--token-file",
                         os.path.join(state, "worker-token"), "--threads", "1", "--name",
                         f"study-w{i}", "--log-level", "warn"], f"worker-{i}.log")
        self.env = dict(os.environ, SATURN_ADDR=self.addr,
                        SATURN_TOKEN_FILE=os.path.join(state, "token"))

    def _spawn(self, argv, logname):
        out = open(os.path.join(self.state, logname), "ab")
        self.procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL))

    def cli(self, *args, check=True):
        """Runs saturn; an unreachable saturnd (exit 5, UNAVAILABLE: a busy
        machine can delay its answer past the CLI's timeout) is retried for
        up to 5 minutes."""
        for _ in range(60):
            p = subprocess.run([SATURN, *args], env=self.env, capture_output=True, text=True,
                               timeout=600)
            if p.returncode != 5 or self.procs[0].poll() is not None:
                break
            time.sleep(5)
        if check and p.returncode != 0:
            raise RuntimeError(f"saturn {' '.join(args)}: exit {p.returncode}: "
                               f"{p.stderr.strip()[-400:]}")
        return p

    def json(self, *args):
        return json.loads(self.cli(*args, "--json").stdout)

    def stop(self):
        for p in reversed(self.procs):  # workers first: they leave cleanly
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 60
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def row_spec(row, svc, init_job):
    """The row's spec file (a temporary file) and the flags shown in its
    reproduction command."""
    with open(os.path.join(ROOT, row["base"])) as f:
        spec = json.load(f)
    spec.update(row["set"])
    spec.update(SMOKE)
    spec["name"] = row["key"]
    spec.pop("sweep", None)
    if init_job:
        spec["init_from"] = init_job
    else:
        spec.pop("init_from", None)
    fd, path = tempfile.mkstemp(prefix="study-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    return path


def sweep_id(row):
    return "study-" + row["group"]


def find_job(svc, row):
    """A job of the row's sweep with the row's name that did not fail."""
    p = svc.cli("sweep", "status", sweep_id(row), "--json", check=False)
    if p.returncode != 0:
        return None
    try:
        table = json.loads(p.stdout)
    except json.JSONDecodeError:
        return None
    for j in table.get("jobs", []):
        if j.get("name", "").split(" ")[0] == row["key"] and \
                j.get("state") not in ("failed", "cancelled"):
            return j["job_id"]
    return None


def submit(svc, row, init_job):
    spec = row_spec(row, svc, init_job)
    try:
        out = svc.json("sweep", spec, "--grid", f"seed={row['set'].get('seed', 1)}",
                       "--sweep", sweep_id(row), "--detach")
    finally:
        os.unlink(spec)
    jid = find_job(svc, row)
    if not jid:
        raise RuntimeError(f"{row['key']}: submitted to {out} but not found")
    return jid


def wait_job(svc, jid, budget_end):
    last = None
    while True:
        st = svc.json("status", jid)
        if st["state"] in ("succeeded", "failed", "cancelled"):
            return st
        msg = f"{jid} {st['state']} epoch {st.get('epoch', 0)}/{st.get('epochs', '?')}"
        if msg != last:
            log(msg)
            last = msg
        time.sleep(5)


def machine():
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), os=platform.platform(),
                workers=f"{WORKERS} saturn-worker x 1 thread")


def commit():
    p = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                       capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def record(svc, row, jid, init_job):
    st = svc.json("status", jid, "--per-epoch")
    epochs = st.get("per_epoch", [])
    wall = (st["end_time_ms"] - st["start_time_ms"]) / 1000.0 if st["start_time_ms"] else None
    ips = [e["images_per_s"] for e in epochs if e.get("images_per_s")]
    rec = dict(key=row["key"], group=row["group"], base=row["base"], set=row["set"],
               init=row.get("init"), init_job=init_job, job=jid, sweep=sweep_id(row),
               state=st["state"], reason=st.get("reason", ""), spec=st.get("spec"),
               test_acc=st.get("test_acc"), param_digest=st.get("param_digest"),
               wall_s=wall, images_per_s=sum(ips) / len(ips) if ips else None,
               epochs=epochs, command=command_of(row), commit=commit(), machine=machine(),
               recorded=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    os.makedirs(RESULTS, exist_ok=True)
    tmp = record_path(row["key"]) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, record_path(row["key"]))
    acc = st.get("test_acc")
    log(f"recorded {row['key']}: {st['state']}"
        + (f", test {100 * acc:.2f}%" if acc is not None else ""))
    return rec


def job_alive(svc, jid):
    p = svc.cli("status", jid, "--json", check=False)
    return p.returncode == 0 and json.loads(p.stdout)["state"] == "succeeded"


def stage_one(svc, rows_by_key, key, budget_end):
    """The job id of the FP32 row `key`, run (again) when its job is not in
    this saturnd's state: same spec, same seed, so the same parameters (its
    digest is checked against the record)."""
    rec = load_record(key)
    if rec and rec["state"] == "succeeded" and job_alive(svc, rec["job"]):
        return rec["job"]
    row = rows_by_key[key]
    jid = find_job(svc, row) or submit(svc, row, None)
    st = wait_job(svc, jid, budget_end)
    if st["state"] != "succeeded":
        raise RuntimeError(f"stage one {key} {st['state']}: {st.get('reason')}")
    if rec is None:
        record(svc, row, jid, None)
    elif rec.get("param_digest") != st.get("param_digest"):
        log(f"note: {key} rerun gave digest {st.get('param_digest')}, "
            f"recorded {rec.get('param_digest')} (another machine or build)")
    return jid


def run(args):
    for b in (SATURN, SATURND, WORKER):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b} not built: meson setup build && ninja -C build")
    rows = all_rows()
    by_key = {r["key"]: r for r in rows}
    todo = [r for r in rows if not load_record(r["key"])
            and (not args.only or re.search(args.only, r["key"]))]
    if args.list:
        for r in rows:
            print(("done " if load_record(r["key"]) else "todo ") + r["key"])
        print(f"{len(todo)} to run of {len(rows)}")
        return 0
    if not todo:
        log("every row is recorded")
        return 0
    state = os.environ.get("SATURN_STUDY_DIR",
                           os.path.join(os.path.expanduser("~"), ".cache", "saturn-study"))
    budget_end = time.time() + 60 * args.budget_min if args.budget_min else float("inf")
    svc = Service(os.path.join(state, "saturnd"))
    log(f"saturnd on {svc.addr}, state {svc.state}; {len(todo)} rows to run")
    done = 0
    try:
        for row in todo:
            if time.time() > budget_end:
                log("time budget spent; the rest is for the next run")
                break
            init_job = stage_one(svc, by_key, row["init"], budget_end) if row.get("init") \
                else None
            if load_record(row["key"]):  # a stage one recorded just now
                continue
            jid = find_job(svc, row) or submit(svc, row, init_job)
            log(f"{row['key']}: {jid}")
            wait_job(svc, jid, budget_end)
            record(svc, row, jid, init_job)
            done += 1
    finally:
        svc.stop()
    log(f"{done} rows recorded this run")
    return 0


# ---------------------------------------------------------------- the page
from page import build_page, command_of  # noqa: E402  (deploy/study/page.py)


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)  # so that the service is stopped (finally)


def main():
    signal.signal(signal.SIGTERM, _sigterm)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the rows not yet recorded")
    r.add_argument("--only", help="only rows whose key matches this regular expression")
    r.add_argument("--budget-min", type=float, default=0,
                   help="start no new row after this many minutes")
    r.add_argument("--list", action="store_true", help="list the rows and what is recorded")
    r.add_argument("--smoke", metavar="DIR",
                   help="a test of the script: 1 epoch on 1024 images, records in DIR")
    pg = sub.add_parser("page", help="rebuild docs/results.md from docs/results/*.json")
    pg.add_argument("--results", metavar="DIR", help="records from DIR, page into DIR/results.md")
    args = ap.parse_args()
    global RESULTS
    if args.cmd == "run":
        if args.smoke:
            RESULTS = os.path.abspath(args.smoke)
            SMOKE.update(epochs=1, train_limit=1024, test_limit=512, warmup_epochs=0)
        return run(args)
    if args.results:
        RESULTS = os.path.abspath(args.results)
        return build_page(ROOT, RESULTS, CHART, all_rows(), os.path.join(RESULTS, "results.md"))
    return build_page(ROOT, RESULTS, CHART, all_rows(), os.path.join(ROOT, "docs", "results.md"))


if __name__ == "__main__":
    sys.exit(main())
