#!/usr/bin/env bash
# http_dashboard.sh - saturnd --http: the HTML dashboard, as headless
# Chromium renders it. After a short job has trained its epochs, / and
# /jobs/<id> are loaded (--dump-dom): the pages name the job, escape its
# name, and /jobs/<id> holds the loss and accuracy <svg> charts with
# series paths of several points; the standalone SVGs parse as XML; and a
# screenshot of the job page (1200x1400) is kept at BUILD/dashboard.png
# (SHOT_DIR, set by meson) for people to look at.
. "$(dirname "$0")/http_lib.sh"

CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
    echo "SKIP: $CHROMIUM is missing (Debian package chromium)"
    exit 77
fi

# chromium OUT URL MODE: MODE dump (DOM to OUT) or shot (PNG to OUT).
chromium() {
    local out=$1 url=$2 mode=$3 prof
    prof=$(mktemp -d "$T/chromium.XXXXXX")
    local args=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage
        --disable-background-networking --no-first-run --hide-scrollbars
        --user-data-dir="$prof")
    if [ "$mode" = dump ]; then
        timeout 60 "$CHROMIUM" "${args[@]}" --dump-dom "$url" >"$out" 2>>"$T/chromium.log"
    else
        (cd "$T" && timeout 60 "$CHROMIUM" "${args[@]}" --screenshot="$out" \
            --window-size=1200,1400 "$url" >>"$T/chromium.log" 2>&1)
    fi
}

start_http_saturnd
start_workers 2 1
# A name that would be markup if it were not escaped.
submit_short_job 'dash <i id="pwn">x</i> & co'
J1=$J
note "job $J submitted"
check "$J ends within 600 s" wait_job "$J" 600
check "$J succeeded" test "$(job_state "$J")" = succeeded
EPOCHS=$(jf "$J" .epochs)
check "  ... with at least 2 epochs ($EPOCHS)" test "$EPOCHS" -ge 2

# ---- the dashboard asks for the token; Chromium logs in with HTTP Basic
check "GET / without a token -> 401" test "$(http_get_anon /)" = 401
check "  ... with WWW-Authenticate: Basic" grep -qi '^www-authenticate: Basic' "$T/head"

# ---- the DOM of / and /jobs/<id>
check "Chromium loads / (--dump-dom)" chromium "$T/index.html" "$HTTP_CRED/" dump
check "  ... the jobs table links $J" grep -q "<a href=\"/jobs/$J\">$J</a>" "$T/index.html"
check "  ... the workers table lists w0 and w1" \
    bash -c "grep -q '<table id=\"workers\"' '$T/index.html' && grep -q '>w0<' '$T/index.html' &&
        grep -q '>w1<' '$T/index.html'"
check "Chromium loads /jobs/$J" chromium "$T/job.html" "$HTTP_CRED/jobs/$J" dump
check "  ... the page names the job ($J)" grep -q "id=\"job-id\">$J<" "$T/job.html"
check "  ... the job name is text, not markup" \
    bash -c "grep -qF 'dash &lt;i id=\"pwn\"&gt;x&lt;/i&gt; &amp; co' '$T/job.html' &&
        ! grep -q 'id=\"pwn\">' '$T/job.html'"
python3 - "$T/job.html" "$EPOCHS" >"$T/dom-check.txt" 2>&1 <<'PY'
import re, sys
from html.parser import HTMLParser

path, epochs = sys.argv[1], int(sys.argv[2])

class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.svg = None            # id of the <svg> we are in
        self.svgs = {}             # id -> {series id: number of points}
        self.quant_rows = 0
        self.in_quant = False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svg = a.get("id")
            self.svgs.setdefault(self.svg, {})
        elif tag == "path" and self.svg and "series" in (a.get("class") or "").split():
            d = a.get("d") or ""
            self.svgs[self.svg][a.get("id")] = len(re.findall(r"[ML]\s*-?[0-9.]+[ ,]-?[0-9.]+", d))
        elif tag == "table" and a.get("id") == "quant":
            self.in_quant = True
        elif tag == "tr" and self.in_quant:
            self.quant_rows += 1
    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg = None
        elif tag == "table":
            self.in_quant = False

p = P()
p.feed(open(path, encoding="utf-8").read())
print("charts:", p.svgs, "quant rows:", p.quant_rows - 1)
loss, acc = p.svgs.get("loss-chart"), p.svgs.get("accuracy-chart")
assert loss is not None, "no <svg id=loss-chart>"
assert acc is not None, "no <svg id=accuracy-chart>"
assert max(loss.values(), default=0) >= 3, "loss chart: no series of 3+ points: %r" % loss
assert acc.get("accuracy-chart-test", 0) == epochs, "test accuracy: %r, %d epochs" % (acc, epochs)
assert acc.get("accuracy-chart-train", 0) == epochs, "train accuracy: %r" % acc
assert p.quant_rows - 1 >= 3, "quantizer table: %d rows" % (p.quant_rows - 1)
print("ok")
PY
RC=$?
check "  ... loss and accuracy <svg> charts with series paths ($(head -n 1 "$T/dom-check.txt"))" \
    test $RC -eq 0
[ $RC -eq 0 ] || cat "$T/dom-check.txt"

# ---- the standalone SVGs
for ch in loss accuracy; do
    check "GET /jobs/$J/$ch.svg -> 200 image/svg+xml" \
        bash -c "[ \"\$(curl -s -m 10 -o '$T/$ch.svg' -D '$T/$ch.head' -w '%{http_code}' \
            -H 'Authorization: Bearer $HTTP_TOKEN' '$HTTP/jobs/$J/$ch.svg')\" = 200 ] &&
            grep -qi '^content-type: image/svg+xml' '$T/$ch.head'"
    check "  ... well-formed XML with <svg id=\"$ch-chart\">" python3 -c "
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
assert r.tag == '{http://www.w3.org/2000/svg}svg' and r.get('id') == sys.argv[2], (r.tag, r.attrib)
" "$T/$ch.svg" "$ch-chart"
done

# ---- a job that has not trained: empty charts, no error
submit_short_job it-waits workers=4
check "GET /jobs/$J (queued, never trained) -> 200" test "$(http_get "/jobs/$J")" = 200
check "  ... both charts say there is no data yet" \
    test "$(grep -o 'class="no-data"' "$T/body" | wc -l)" = 2
check "  ... and have no series" bash -c "! grep -q 'class=\"series\"' '$T/body'"
check "GET /jobs/$J/loss.svg -> 200" test "$(http_get "/jobs/$J/loss.svg")" = 200
expect_exit 0 "cancel $J" "$SATURN" cancel "$J"
J=$J1

# ---- the screenshot people look at
SHOT=${SHOT_DIR:-$T}/dashboard.png
rm -f "$SHOT"
check "Chromium screenshots /jobs/$J (1200x1400)" chromium "$SHOT" "$HTTP_CRED/jobs/$J" shot
check "  ... a PNG of 1200x1400 over 30 kB" python3 -c "
import struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
w, h = struct.unpack('>II', b[16:24])
assert (w, h) == (1200, 1400), (w, h)
assert len(b) > 30000, len(b)
" "$SHOT"
chromium "${SHOT_DIR:-$T}/dashboard-index.png" "$HTTP_CRED/" shot
note "screenshots: $SHOT, ${SHOT_DIR:-$T}/dashboard-index.png"
finish
