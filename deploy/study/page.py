"""page.py - docs/results.md from the study's records (study.py page).

Everything on the page comes from the records (docs/results/<key>.json)
and the row list; a row not yet recorded shows as "not run" and is named
in the list of what remains. Charts are drawn by saturn-chart (the
dashboard's chart code) into <results>/<name>.svg.
"""
import json
import math
import os
import subprocess

BITS_CNN = (2, 3, 4, 8)
BITS_BIG = (4, 3, 2)
BIG = ("preresnet20", "mobilenetv2")

# The first efficient-training rule: VAR[W_L] << k_pool^2 / n_L, with n_L
# the last layer's fan-in and k_pool the side of the global average pool
# before it (spec/models.md, 28x28 inputs): cnn-small has no pool before
# its FC (k = 1).
ETR1 = {
    "cnn-small": dict(n=1568, k=1),
    "preresnet20": dict(n=64, k=7),
    "mobilenetv2": dict(n=256, k=7),
}


def _load(results):
    recs = {}
    for name in sorted(os.listdir(results)):
        if name.endswith(".json"):
            with open(os.path.join(results, name)) as f:
                r = json.load(f)
            recs[r["key"]] = r
    return recs


class Page:
    def __init__(self, root, results, chart, rows):
        self.root, self.results, self.chart = root, results, chart
        self.rows = rows
        self.recs = _load(results)
        self.out = []
        self.charts = 0

    # ---- values
    def acc(self, key):
        r = self.recs.get(key)
        if r and r["state"] == "succeeded" and r.get("test_acc") is not None:
            return 100.0 * r["test_acc"]
        return None

    def accs(self, prefix, seeds=(1, 2)):
        return [a for a in (self.acc(f"{prefix}_s{s}") for s in seeds) if a is not None]

    def cell(self, prefix, seeds=(1, 2)):
        keys = [f"{prefix}_s{s}" for s in seeds if f"{prefix}_s{s}" in self.known]
        v = self.accs(prefix, seeds)
        failed = [k for k in keys if k in self.recs and self.recs[k]["state"] != "succeeded"]
        if not v:
            return "failed" if failed else "not run"
        s = f"{_mean(v):.2f}"
        if len(v) > 1:
            s += f" ± {_sd(v):.2f}"
        if len(v) < len(keys):
            s += f" ({len(v)} of {len(keys)} seeds)"
        return s

    @property
    def known(self):
        return {r["key"] for r in self.rows}

    # ---- output
    def p(self, *lines):
        self.out.extend(lines)

    def table(self, head, rows):
        self.p("| " + " | ".join(head) + " |", "|" + "---|" * len(head))
        for r in rows:
            self.p("| " + " | ".join(str(c) for c in r) + " |")
        self.p("")

    def svg(self, name, title, ylabel, series, ysuffix="", xlabel="epoch"):
        desc = dict(id=name.replace(".", "-")[:32], title=title, xlabel=xlabel, ylabel=ylabel,
                    ysuffix=ysuffix, xint=True, series=series)
        path = os.path.join(self.results, name + ".svg")
        p = subprocess.run([self.chart, "-", "-o", path], input=json.dumps(desc), text=True,
                           capture_output=True)
        if p.returncode != 0:
            raise SystemExit(f"saturn-chart {name}: {p.stderr.strip()}")
        rel = os.path.relpath(path, os.path.dirname(self.page_path))
        self.p(f"![{title}]({rel})", "")
        self.charts += 1

    def curve(self, key, field="test_acc", scale=100.0):
        r = self.recs.get(key)
        if not r:
            return []
        return [[e["epoch"], scale * e[field]] for e in r["epochs"]
                if e.get(field) is not None and math.isfinite(e[field])]


def _mean(v):
    return sum(v) / len(v)


def _sd(v):
    m = _mean(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0


def _quant(rec, kind, name=None):
    """[(epoch, value)] of a quantizer state over a record's epochs."""
    out = []
    for e in rec["epochs"]:
        for q in e.get("quant", []):
            if q["kind"] == kind and (name is None or q["name"] == name):
                out.append([e["epoch"], q["value"]])
    return out


def command_of(row):
    """The command that runs the row again: `saturn run` (a private saturnd)
    for one stage; for stage two, `saturn submit` to the saturnd that ran
    stage one, with init_from = that job."""
    flags = " ".join(f"--{k} {v}" for k, v in row["set"].items())
    if row.get("init"):
        return f"saturn submit {row['base']} {flags} --init_from <job of {row['init']}>"
    return f"saturn run {row['base']} {flags}"


def _spec_line(rec):
    s = rec.get("spec") or {}
    keys = ("model", "wbits", "abits", "act_quant", "sat", "sat_fan", "alpha_init",
            "alpha_init_conv", "alpha_init_fc", "epochs", "lr", "warmup_epochs", "batch_size",
            "workers", "seed")
    return ", ".join(f"{k} {s[k]}" for k in keys if k in s)


def _headline(pg):
    pg.p("## Headline: FP32 vs PACT vs CG-PACT", "",
         "Test accuracy (%) on Fashion-MNIST's 10 000 test images after the last epoch;",
         "SAT on the last layer (fan-in), fixed alphas of 4 (the examples' recipe; the",
         "spec's defaults are the paper's 8 and 10); cnn-small: mean ± sample standard",
         "deviation over seeds 1 and 2 (trained",
         "from scratch); preresnet20 and mobilenetv2: seed 1, two-stage (FP32, then the",
         "quantized model from its weights).", "")
    rows = []
    fp = pg.cell("cnn-small_fp32")
    for b in BITS_CNN:
        rows.append(["cnn-small", f"W{b}A{b}", fp, pg.cell(f"cnn-small_w{b}a{b}_pact_sat-last"),
                     pg.cell(f"cnn-small_w{b}a{b}_cgpact_sat-last")])
    for m in BIG:
        fp = pg.cell(f"{m}_fp32", seeds=(1,))
        for b in BITS_BIG:
            rows.append([m, f"W{b}A{b}", fp, pg.cell(f"{m}_w{b}a{b}_pact_sat-last", seeds=(1,)),
                         pg.cell(f"{m}_w{b}a{b}_cgpact_sat-last", seeds=(1,))])
    pg.table(["model", "bits", "FP32", "PACT", "CG-PACT"], rows)


def _cnn_grid(pg):
    pg.p("## cnn-small: bits x quantizer x SAT", "",
         "`examples/cnn-small-w4a4.json` (8 epochs, lr 0.1 cosine with 1 warm-up epoch,",
         "Nesterov, batch 128 over 2 workers, alpha 4 for every quantizer) with `wbits` =",
         "`abits` as given, first layer 8-bit weights on the raw input, last layer 8-bit",
         "weights; `sat: off` (no rescaling), `last` (the FC, fan-in) or `all`. Mean ± sample",
         "standard deviation over seeds 1 and 2.", "")
    # float weights have no SAT: one value, the other columns do not apply
    rows = [["FP32", "-", pg.cell("cnn-small_fp32"), "n/a", "n/a"]]
    for b in BITS_CNN:
        for aq in ("pact", "cgpact"):
            rows.append([f"W{b}A{b}", aq] +
                        [pg.cell(f"cnn-small_w{b}a{b}_{aq}_sat-{s}") for s in ("off", "last", "all")])
    pg.table(["bits", "quantizer", "sat off", "sat last", "sat all"], rows)
    series = [dict(label="FP32", points=pg.curve("cnn-small_fp32_s1"), dots=True)]
    for b in BITS_CNN:
        for aq in ("pact", "cgpact"):
            pts = pg.curve(f"cnn-small_w{b}a{b}_{aq}_sat-last_s1")
            if pts:
                series.append(dict(label=f"W{b}A{b} {aq}", points=pts, dashed=aq == "pact"))
    pg.svg("cnn-small-accuracy", "cnn-small: test accuracy vs epoch (seed 1, sat last)",
           "test accuracy (%)", series, "%")


def _big(pg, m):
    fp = pg.recs.get(f"{m}_fp32_s1")
    pg.p(f"## {m}: two-stage at 4, 3 and 2 bits", "",
         f"Stage one: `examples/preresnet20-fp32.json` with `model {m}` and "
         f"{(fp or {}).get('set', {}).get('epochs', 3)} epochs (lr 0.1 cosine), float weights",
         "and activations. Stage two: `examples/preresnet20-w4a4.json` with the bits and",
         "quantizer as given, started from stage one's weights (`init_from` its job),",
         f"lr 0.01 cosine, 2 epochs, alpha 4. The epochs are cut to fit the whole study in a",
         "few hours on this 2-core machine: these are short runs, not converged models.", "")
    rows = [["FP32 (stage one)", pg.cell(f"{m}_fp32", seeds=(1,)), "n/a (no quantizer)"]]
    for b in BITS_BIG:
        rows.append([f"W{b}A{b}", pg.cell(f"{m}_w{b}a{b}_pact_sat-last", seeds=(1,)),
                     pg.cell(f"{m}_w{b}a{b}_cgpact_sat-last", seeds=(1,))])
    pg.table(["stage", "PACT", "CG-PACT"], rows)
    series = []
    for b in BITS_BIG:
        for aq in ("pact", "cgpact"):
            pts = pg.curve(f"{m}_w{b}a{b}_{aq}_sat-last_s1")
            if pts:
                series.append(dict(label=f"W{b}A{b} {aq}", points=pts, dashed=aq == "pact",
                                   dots=True))
    if series:
        pg.svg(f"{m}-accuracy", f"{m}: stage two, test accuracy vs epoch", "test accuracy (%)",
               series, "%")


def _fan(pg):
    e = ETR1["cnn-small"]
    bound = e["k"] ** 2 / e["n"]
    pg.p("## `sat_fan`: fan-in vs fan-out on cnn-small (W4A4, CG-PACT, sat last)", "",
         f"The first rule bounds the last layer's effective weight variance by k_pool² / n_L =",
         f"1 / {e['n']} = {bound:.2e} for cnn-small's FC (1568 inputs, no pooling before it).",
         "Fan-in SAT sets the variance to 1/n_in, exactly the bound; the authors' fan-out form",
         "to 1/n_out = 1/10. The variance is measured on the parameter server's weights at",
         "each epoch's end (`wvar` in `saturn status --per-epoch`).", "")
    rows = []
    for fan, pre in (("in", "cnn-small_w4a4_cgpact_sat-last"),
                     ("out", "cnn-small_w4a4_cgpact_sat-last_fan-out")):
        r = pg.recs.get(pre + "_s1")
        var = _quant(r, "wvar")[-1][1] if r and _quant(r, "wvar") else None
        s = _quant(r, "sat")[-1][1] if r and _quant(r, "sat") else None
        rows.append([fan, pg.cell(pre), f"{s:.4g}" if s is not None else "-",
                     f"{var:.3g}" if var is not None else "-",
                     f"{var / bound:.3g}" if var is not None else "-"])
    pg.table(["sat_fan", "test accuracy (%)", "SAT factor s (seed 1, end)",
              "VAR[W_L] (seed 1, end)", "VAR / bound"], rows)


def _alpha(pg):
    pg.p("## Alpha initialisation: fixed vs calibrate", "",
         "`alpha_init: fixed` uses the recipe's alphas; `calibrate` sets each alpha before",
         "step 0 to the 99.9th percentile of its input on the first batch. The first",
         "epoch's mean training loss shows whether training started at all (ln 10 = 2.303",
         "is a model whose logits are all 0).", "")
    rows = []
    pairs = [(f"cnn-small_w{b}a{b}_{aq}_sat-last", f"cnn-small_w{b}a{b}_{aq}_sat-last_calibrate",
              "cnn-small", b, aq) for b in (2, 3) for aq in ("pact", "cgpact")]
    pairs += [(f"{m}_w2a2_{aq}_sat-last", f"{m}_w2a2_{aq}_sat-last_calibrate", m, 2, aq)
              for m in BIG for aq in ("pact", "cgpact")]
    for fixed, cal, m, b, aq in pairs:
        r = []
        for pre in (fixed, cal):
            rec = pg.recs.get(pre + "_s1")
            loss = rec["epochs"][0]["loss"] if rec and rec["epochs"] else None
            r.append(pg.cell(pre, seeds=(1,)))
            r.append(f"{loss:.3f}" if loss is not None else "-")
        rows.append([m, f"W{b}A{b}", aq] + r)
    pg.table(["model", "bits", "quantizer", "fixed: test (%)", "fixed: epoch-1 loss",
              "calibrate: test (%)", "calibrate: epoch-1 loss"], rows)


def _health(pg):
    pg.p("## Quantization health over training", "",
         "One W4A4 CG-PACT run per family (seed 1, sat last): every PACT alpha at each",
         "epoch's end, and the last layer's SAT factor and effective weight variance",
         "against the first rule's bound k_pool² / n_L.", "")
    rows, sat_series = [], []
    for m in ("cnn-small",) + BIG:
        key = f"{m}_w4a4_cgpact_sat-last_s1"
        r = pg.recs.get(key)
        if not r or not r["epochs"]:
            rows.append([m, "not run", "", "", "", ""])
            continue
        names = []
        for q in r["epochs"][-1].get("quant", []):
            if q["kind"] == "alpha" and q["name"] not in names:
                names.append(q["name"])
        shown = names if len(names) <= 10 else names[:8] + names[-2:]
        series = [dict(label=n, points=_quant(r, "alpha", n), dots=len(r["epochs"]) < 4)
                  for n in shown]
        title = f"{m} W4A4 CG-PACT: PACT alpha per layer"
        if len(shown) < len(names):
            title += f" (first 8 and last 2 of {len(names)})"
        pg.svg(f"{m}-alpha", title, "alpha", series)
        sat_series.append(dict(label=m, points=_quant(r, "sat"), dots=True))
        e = ETR1[m]
        bound = e["k"] ** 2 / e["n"]
        s = _quant(r, "sat")
        var = _quant(r, "wvar")
        rows.append([m, len(names), f"{s[0][1]:.4g} → {s[-1][1]:.4g}" if s else "-",
                     f"{var[-1][1]:.3g}" if var else "-", f"{bound:.3g}",
                     f"{var[-1][1] / bound:.3g}" if var else "-"])
    pg.table(["model", "alphas", "SAT factor s (epoch 1 → end)", "VAR[W_L] (end)",
              "bound k²/n", "VAR / bound"], rows)
    if sat_series:
        pg.svg("sat-factor", "SAT factor s of the last layer (W4A4 CG-PACT, fan-in)", "s",
               sat_series)


def _seed_gaps(pg, sat):
    """|seed 1 - seed 2| for each recipe of the cnn-small grid (FP32 included
    with sat "last") with SAT `sat` that has both seeds. The fan-out and
    calibrate rows are left out: their spread is a finding of its own."""
    d = []
    for r in pg.rows:
        k = r["key"]
        if r["group"] != "cnn-small" or not k.endswith("_s1"):
            continue
        is_fp = k.startswith("cnn-small_fp32")
        if not (k.endswith(f"_sat-{sat}_s1") or (is_fp and sat == "last")):
            continue
        v = pg.accs(k[:-3])
        if len(v) == 2:
            d.append(abs(v[0] - v[1]))
    return d


def _seed_noise(pg):
    """The mean |seed 1 - seed 2| over the recipes the claims compare (FP32
    and sat "last" in the cnn-small grid; None when none has both seeds),
    and how many pairs. Without SAT, runs are much less stable from seed to
    seed; that spread is reported as a finding, not used as the noise."""
    d = _seed_gaps(pg, "last")
    return (_mean(d), len(d)) if d else (None, 0)


def _claims(pg):
    pg.p("## Where the paper's claims hold on these data", "")
    noise, npairs = _seed_noise(pg)
    tol = max(0.3, noise or 0.0)
    lines = [f"A difference counts when it exceeds {tol:.2f} points: the larger of 0.3 and the mean "
             f"gap between seeds 1 and 2 of the same recipe among the FP32 and `sat: last` "
             f"recipes of the cnn-small grid"
             + (f" ({noise:.2f}, over {npairs} recipes)." if noise is not None else
                " (not measured yet: no recipe has both seeds)."), ""]
    fp = pg.accs("cnn-small_fp32")
    for b in BITS_CNN:
        q = pg.accs(f"cnn-small_w{b}a{b}_cgpact_sat-last")
        if fp and q:
            d = _mean(q) - _mean(fp)
            verdict = "matches or beats" if d >= -tol else "falls short of"
            lines.append(f"- cnn-small W{b}A{b} CG-PACT + SAT {verdict} FP32: "
                         f"{_mean(q):.2f}% vs {_mean(fp):.2f}% ({d:+.2f} points).")
    for m in BIG:
        f1 = pg.acc(f"{m}_fp32_s1")
        for b in BITS_BIG:
            q = pg.acc(f"{m}_w{b}a{b}_cgpact_sat-last_s1")
            if f1 is not None and q is not None:
                verdict = "matches or beats" if q >= f1 - tol else "falls short of"
                lines.append(f"- {m} W{b}A{b} CG-PACT {verdict} its FP32 stage one: {q:.2f}% vs "
                             f"{f1:.2f}% ({q - f1:+.2f}; short runs).")
    sat_gain = []  # sat last minus sat off, per recipe with both
    for b in BITS_CNN:
        d = []
        for aq in ("pact", "cgpact"):
            on, off = pg.accs(f"cnn-small_w{b}a{b}_{aq}_sat-last"), \
                pg.accs(f"cnn-small_w{b}a{b}_{aq}_sat-off")
            if on and off:
                sat_gain.append(_mean(on) - _mean(off))
                d.append(f"{aq} {_mean(on) - _mean(off):+.2f}")
        if d:
            lines.append(f"- SAT on the last layer vs no SAT, cnn-small W{b}A{b}: " + ", ".join(d)
                         + " points (mean over seeds).")
    off, last = _seed_gaps(pg, "off"), _seed_gaps(pg, "last")
    if off and last:
        runs = [(k, a) for k, a in ((r["key"], pg.acc(r["key"])) for r in pg.rows
                                    if "_sat-off_" in r["key"]) if a is not None]
        low = [k for k, a in runs if a < 50.0]
        lines.append(f"- Without SAT, training is unstable: seeds 1 and 2 of a recipe differ by "
                     f"{_mean(off):.2f} points on average with `sat: off` "
                     f"(largest {max(off):.2f}, {len(off)} recipes), against {_mean(last):.2f} "
                     f"with `sat: last` ({len(last)} recipes); {len(low)} of {len(runs)} `sat: off` "
                     f"runs ended below 50%" + (f" ({', '.join(low)})" if low else "") +
                     ". The paper's claim that SAT is what keeps training efficient "
                     + ("holds here: SAT on the last layer gains more than the noise on every "
                        "recipe measured." if sat_gain and min(sat_gain) > tol else
                        "holds only in part here: not every recipe gains more than the noise."))
    gaps = {}
    for b in BITS_CNN:
        c, p = pg.accs(f"cnn-small_w{b}a{b}_cgpact_sat-last"), \
            pg.accs(f"cnn-small_w{b}a{b}_pact_sat-last")
        if c and p:
            gaps[b] = _mean(c) - _mean(p)
    if gaps:
        lo = min(gaps)
        most = max(gaps, key=lambda b: gaps[b])
        if all(abs(g) <= tol for g in gaps.values()):
            verdict = "cannot be told apart from seed noise"
        else:
            verdict = "holds" if most == lo else "does not hold"
        lines.append("- CG-PACT minus PACT on cnn-small (sat last): " +
                     ", ".join(f"W{b}A{b} {g:+.2f}" for b, g in sorted(gaps.items())) +
                     f" points; \"helps most at the lowest bit width\" {verdict} here.")
    for m in BIG:
        g = []
        for b in BITS_BIG:
            c, p = pg.acc(f"{m}_w{b}a{b}_cgpact_sat-last_s1"), pg.acc(f"{m}_w{b}a{b}_pact_sat-last_s1")
            if c is not None and p is not None:
                g.append(f"W{b}A{b} {c - p:+.2f}")
        if g:
            lines.append(f"- CG-PACT minus PACT on {m}: " + ", ".join(g) + " points (one seed).")
    d = []  # sat all minus sat last, cnn-small
    for b in BITS_CNN:
        for aq in ("pact", "cgpact"):
            al, la = pg.accs(f"cnn-small_w{b}a{b}_{aq}_sat-all"), \
                pg.accs(f"cnn-small_w{b}a{b}_{aq}_sat-last")
            if al and la:
                d.append((f"W{b}A{b} {aq}", _mean(al) - _mean(la)))
    if d:
        big = [n for n, g in d if abs(g) > tol]
        lines.append("- SAT on every layer vs the last only, cnn-small: "
                     + ", ".join(f"{n} {g:+.2f}" for n, g in d) + " points; "
                     + (f"beyond the noise for {', '.join(big)}." if big else
                        "all within the noise: rescaling the last layer is what matters here."))
    cal = []  # calibrate minus fixed, seed 1
    for m in ("cnn-small",) + BIG:
        for b in ((2, 3) if m == "cnn-small" else (2,)):
            for aq in ("pact", "cgpact"):
                f, c = pg.acc(f"{m}_w{b}a{b}_{aq}_sat-last_s1"), \
                    pg.acc(f"{m}_w{b}a{b}_{aq}_sat-last_calibrate_s1")
                if f is not None and c is not None:
                    cal.append((f"{m} W{b}A{b} {aq}", f, c))
    if cal:
        best = max(cal, key=lambda t: t[2] - t[1])
        lines.append("- `alpha_init: calibrate` vs the fixed alphas (one seed): "
                     + ", ".join(f"{n} {c - f:+.2f}" for n, f, c in cal) + " points; the "
                     f"largest gain is {best[0]}: {best[1]:.2f}% fixed, {best[2]:.2f}% "
                     "calibrated.")
    fi, fo = pg.accs("cnn-small_w4a4_cgpact_sat-last"), \
        pg.accs("cnn-small_w4a4_cgpact_sat-last_fan-out")
    if fi and fo:
        lines.append(f"- `sat_fan: out` vs `in` on cnn-small W4A4: {_mean(fo):.2f}% vs "
                     f"{_mean(fi):.2f}%: the fan-out form "
                     + ("costs accuracy" if _mean(fo) < _mean(fi) - tol else
                        "does not cost accuracy measurably") + " on this 10-class head.")
    pg.p(*lines, "")


def _remaining(pg):
    todo = [r["key"] for r in pg.rows if r["key"] not in pg.recs]
    pg.p("## What is not run yet", "")
    if todo:
        pg.p(f"{len(todo)} of {len(pg.rows)} rows: " + ", ".join(f"`{k}`" for k in todo) + ".",
             "`deploy/study/study.py run` runs them (it skips the recorded rows).", "")
    else:
        pg.p("Nothing: every row is recorded.", "")


def _every_row(pg):
    pg.p("## Every recorded row", "",
         "The recipe (canonical spec fields that matter), the command that reproduces it, and",
         "where it ran. `init_from` is the FP32 stage-one job of the same family.", "")
    rows = []
    for r in pg.rows:
        rec = pg.recs.get(r["key"])
        if not rec:
            continue
        acc = f"{100 * rec['test_acc']:.2f}" if rec.get("test_acc") is not None else rec["state"]
        wall = f"{rec['wall_s']:.0f} s" if rec.get("wall_s") else "-"
        rows.append([f"`{r['key']}`", acc, _spec_line(rec), f"`{command_of(r)}`", wall,
                     f"{rec['commit']}, {rec['machine'].get('cpu', '')}"])
    pg.table(["row", "test (%)", "recipe", "command", "wall", "commit, machine"], rows)


def build_page(root, results, chart, rows, page_path):
    if not os.access(chart, os.X_OK):
        raise SystemExit(f"{chart} not built: ninja -C build")
    os.makedirs(results, exist_ok=True)
    pg = Page(root, results, chart, rows)
    pg.page_path = page_path
    pg.p("# Results: the paper's study, through the service", "",
         "<!-- Made by deploy/study/study.py page from docs/results/*.json; do not edit. -->", "",
         "Every number below is one job run by `deploy/study/study.py run` through a",
         "saturnd and two saturn-workers (1 thread each) on Fashion-MNIST (60 000 training",
         "images with augmentation, 10 000 test images), recorded in",
         "`docs/results/<row>.json` with its canonical spec, per-epoch curves and quantizer",
         "states, the commit and the machine. Each group of rows is a sweep",
         "(`saturn sweep status study-<group>`).",
         "", f"{len(pg.recs)} of {len(rows)} rows are recorded.", "")
    _headline(pg)
    _claims(pg)
    _cnn_grid(pg)
    for m in BIG:
        _big(pg, m)
    _fan(pg)
    _alpha(pg)
    _health(pg)
    _remaining(pg)
    _every_row(pg)
    tmp = page_path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(pg.out).rstrip() + "\n")
    os.replace(tmp, page_path)
    print(f"{page_path}: {len(pg.recs)} of {len(rows)} rows recorded, {pg.charts} charts")
    return 0
