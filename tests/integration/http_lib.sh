# http_lib.sh - helpers of the HTTP tests (issue 5), on top of ps_lib.sh:
# saturnd with --http on 127.0.0.1 (port 0, --http-port-file), a short
# real training job, and curl with bounded times.
. "$(dirname "$0")/ps_lib.sh"

if ! command -v curl >/dev/null; then
    echo "SKIP: curl is not installed (Debian package curl)"
    exit 77
fi

# start_http_saturnd [extra flags]: saturnd with --http 127.0.0.1:0 and
# workers' usual flags; HTTP is then the base URL (http://127.0.0.1:PORT),
# HTTP_TOKEN the viewer token the pages need and HTTP_CRED the base URL
# with it as the Basic password (http://viewer:TOKEN@127.0.0.1:PORT).
start_http_saturnd() {
    start_saturnd "$T/state" --http 127.0.0.1:0 --http-port-file "$T/state/http-port" "$@"
    if ! wait_until 20 test -s "$T/state/http-port"; then
        fail "saturnd wrote no --http-port-file"
        exit 1
    fi
    HTTP=http://127.0.0.1:$(cat "$T/state/http-port")
    HTTP_TOKEN=$(cat "$VIEWER_TOKEN_FILE")
    HTTP_CRED=http://viewer:$HTTP_TOKEN@127.0.0.1:$(cat "$T/state/http-port")
    note "HTTP at $HTTP"
}

# http_get PATH [curl args...]: prints the status code; the body is in
# $T/body, the response head in $T/head. "000" when the request failed.
# Sends the viewer token (Bearer); http_get_anon sends none.
http_get() {
    local path=$1
    shift
    curl -s -m 10 -o "$T/body" -D "$T/head" -w '%{http_code}' \
        -H "Authorization: Bearer $HTTP_TOKEN" "$@" "$HTTP$path"
}
http_get_anon() {
    local path=$1
    shift
    curl -s -m 10 -o "$T/body" -D "$T/head" -w '%{http_code}' "$@" "$HTTP$path"
}

# submit_short_job NAME [KEY=VALUE...]: a small cnn-small W4A4 job (two
# workers, bsp) sized for this build; sets J to its id.
submit_short_job() {
    local name=$1
    shift
    if [ "$SAN" = 1 ]; then
        spec_file "$T/spec.tmp" train_limit=2048 test_limit=256 epochs=2 batch_size=64 "$@"
    else
        spec_file "$T/spec.tmp" train_limit=6000 test_limit=500 epochs=3 batch_size=128 "$@"
    fi
    # The name may hold quotes and backslashes: set it with --arg.
    jq --arg n "$name" '.name = $n' "$T/spec.tmp" >"$T/spec-$J_N.json"
    "$SATURN" submit "$T/spec-$J_N.json" --json >"$T/submit.out" 2>"$T/submit.err"
    J=$(jq -r .job_id "$T/submit.out" 2>/dev/null)
    J_N=$((J_N + 1))
    if [ -z "$J" ] || [ "$J" = null ]; then
        fail "submit: $(cat "$T/submit.err")"
        exit 1
    fi
}
J_N=0
