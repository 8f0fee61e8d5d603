#!/usr/bin/env bash
# tls.sh - saturnd, workers and the CLI over TLS, with certificates made
# here by openssl (a CA, a server certificate for 127.0.0.1/localhost, a
# client certificate, and an unrelated CA):
#   - bad TLS flags and files stop saturnd at start with the flag and file
#     named (and no file contents echoed);
#   - `saturn list --tls-ca` works; plaintext against the TLS port, and TLS
#     with the wrong CA, fail within seconds with exit 5 and a hint; bearer
#     tokens are still required over TLS;
#   - a worker with --tls-ca registers and trains a small job to success;
#   - --http serves HTTPS with the same certificate (curl --cacert), and
#     plain HTTP on that port fails;
#   - with --tls-client-ca a worker with a client certificate registers and
#     trains a job, one without is refused, and so is a CLI without one.
. "$(dirname "$0")/lib.sh"

for tool in openssl curl; do
    if ! command -v $tool >/dev/null; then
        echo "SKIP: $tool is not installed (Debian package $tool)"
        exit 77
    fi
done

# ---- certificates -------------------------------------------------------------

C=$T/certs
mkdir -p "$C"
ossl() { openssl "$@" 2>>"$T/openssl.log"; }
make_ca() { # NAME CN
    ossl req -x509 -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.crt" -days 2 \
        -subj "/CN=$2" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign
}
make_leaf() { # NAME CN EXTENSIONS
    ossl req -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$2" &&
        printf '%s\n' "$3" >"$C/$1.ext" &&
        ossl x509 -req -in "$C/$1.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial \
            -out "$C/$1.crt" -days 2 -extfile "$C/$1.ext"
}
if make_ca ca "saturn test CA" && make_ca other "some other CA" &&
    make_leaf server localhost "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth" &&
    make_leaf client worker-1 "extendedKeyUsage=clientAuth"; then
    pass "openssl made a CA, a server and a client certificate, and another CA"
else
    fail "openssl could not make the certificates (see $T/openssl.log)"
    finish
fi
chmod 0600 "$C"/*.key

# ---- start-up refusals ----------------------------------------------------------

# bad_start DESCRIPTION EXPECTED_TEXT FLAGS...: saturnd exits 1 at start, says
# EXPECTED_TEXT, and prints no PEM contents.
bad_start() {
    local what=$1 want=$2
    shift 2
    expect_exit 1 "$what" timeout 20 "$SATURND" --state-dir "$T/bad" --listen 127.0.0.1:0 "$@"
    contains "$what: the message says why" "$OUT$ERR" "$want"
    case "$OUT$ERR" in
    *BEGIN* | *MII*) fail "$what: file contents in the message: $OUT$ERR" ;;
    esac
}
bad_start "--tls-cert without --tls-key" "--tls-cert $C/server.crt needs --tls-key" \
    --tls-cert "$C/server.crt"
bad_start "a missing certificate file" "--tls-cert $C/nope.crt: No such file" \
    --tls-cert "$C/nope.crt" --tls-key "$C/server.key"
bad_start "a key that does not match the certificate" \
    "--tls-key $C/client.key does not match the certificate in --tls-cert $C/server.crt" \
    --tls-cert "$C/server.crt" --tls-key "$C/client.key"
bad_start "a key file that is not a certificate" "--tls-cert $C/server.key: no PEM certificate" \
    --tls-cert "$C/server.key" --tls-key "$C/server.key"
cp "$C/server.key" "$C/open.key"
chmod 0644 "$C/open.key"
bad_start "a world-readable key" "--tls-key $C/open.key: the private key is accessible by other" \
    --tls-cert "$C/server.crt" --tls-key "$C/open.key"
chmod 0640 "$C/open.key"
if [ "$(id -u)" != 0 ]; then
    bad_start "a group-readable key we own" "accessible by its group (mode 0640)" \
        --tls-cert "$C/server.crt" --tls-key "$C/open.key"
else
    note "running as root: a root-owned key may be group-readable (0640), not checked"
fi
bad_start "--tls-client-ca without a certificate" "--tls-client-ca $C/ca.crt needs --tls-cert" \
    --tls-client-ca "$C/ca.crt"

# ---- TLS, server certificate only ---------------------------------------------------

start_saturnd "$T/state" --tls-cert "$C/server.crt" --tls-key "$C/server.key" \
    --http 127.0.0.1:0 --http-port-file "$T/state/hport"
HPORT=$(cat "$T/state/hport")
contains "saturnd says it serves TLS" "$(cat "$T/saturnd.log")" "(port $PORT, TLS)"

expect_exit 0 "saturn list --tls-ca over TLS" "$SATURN" list --tls-ca "$C/ca.crt"
expect_exit 0 "SATURN_TLS_CA works like --tls-ca" env SATURN_TLS_CA="$C/ca.crt" "$SATURN" list --json
check "the answer is a JSON list" test "$OUT" = "[]"
expect_exit 0 "--addr localhost:PORT matches the certificate's DNS name" \
    "$SATURN" list --tls-ca "$C/ca.crt" --addr "localhost:$PORT"
expect_exit 3 "over TLS the bearer token is still required" \
    env -u SATURN_TOKEN_FILE "$SATURN" list --tls-ca "$C/ca.crt"
contains "a missing token is reported as such" "$ERR" "missing bearer token"

START=$SECONDS
expect_exit 5 "a plaintext call to the TLS port fails (unavailable)" timeout 30 "$SATURN" list
contains "the plaintext failure hints at --tls-ca" "$ERR" "pass --tls-ca"
expect_exit 5 "a TLS call verified with the wrong CA fails (unavailable)" \
    timeout 30 "$SATURN" list --tls-ca "$C/other.crt"
contains "the wrong-CA failure says the handshake failed" "$ERR" "TLS handshake failed"
contains "the wrong-CA failure carries gRPC's reason" "$ERR" "certificate verify failed"
check "both failures came within 10 s (no hang)" test $((SECONDS - START)) -le 10
expect_exit 3 "an unreadable --tls-ca file is a local error (exit 3)" \
    "$SATURN" list --tls-ca "$C/nope.crt"
contains "the CLI names the flag and the file" "$ERR" "--tls-ca $C/nope.crt"

# HTTPS with the same certificate
HTTPS=https://127.0.0.1:$HPORT
check "curl --cacert fetches /healthz over HTTPS" \
    test "$(curl -sS --max-time 10 --cacert "$C/ca.crt" "$HTTPS/healthz")" = ok
check "curl --cacert fetches /metrics over HTTPS" \
    bash -c "curl -sS --max-time 10 --cacert '$C/ca.crt' '$HTTPS/metrics' | grep -q '^saturn_'"
check "HTTPS with another CA is refused by curl" \
    bash -c "! curl -sS --max-time 10 --cacert '$C/other.crt' '$HTTPS/healthz'"
check "plain HTTP on the HTTPS port fails" \
    bash -c "! curl -sS --max-time 10 'http://127.0.0.1:$HPORT/healthz'"
check "the HTTP server still answers after the failed requests" \
    test "$(curl -sS --max-time 10 --cacert "$C/ca.crt" "$HTTPS/healthz")" = ok

# tls_worker NAME FLAGS...: a worker with extra flags; PID in WORKER_PID[NAME].
tls_worker() {
    local name=$1
    shift
    "$SATURN_WORKER" --name "$name" --threads 1 --log-level debug \
        --token-file "$WORKER_TOKEN_FILE" "$@" >>"$T/worker-$name.log" 2>&1 &
    WORKER_PID[$name]=$!
    PIDS+=("$!")
}

export SATURN_TLS_CA=$C/ca.crt
tls_worker wa
check "a worker with SATURN_TLS_CA registers over TLS" \
    wait_until 20 jq_ok 'length == 1 and .[0].name == "wa" and .[0].state == "idle"' \
    "$SATURN" workers --json
expect_exit 0 "submit a small job (mlp, synthetic data, 1 worker, 1 epoch)" "$SATURN" submit \
    --model mlp --dataset synthetic --workers 1 --epochs 1 --train_limit 512 --test_limit 128 \
    --batch_size 64 --warmup_epochs 0 --json
J=$(echo "$OUT" | jq -r .job_id)
job_ended() { # JOB [CLI FLAGS]
    jq_ok '.state == "succeeded" or .state == "failed" or .state == "cancelled"' \
        "$SATURN" status "$@" --json
}
check "the job ends within 120 s" wait_until 120 job_ended "$J"
check "the job trained to success over TLS" jq_ok '.state == "succeeded" and .step > 0' \
    "$SATURN" status "$J" --json
kill -TERM "${WORKER_PID[wa]}"
wait_until 15 bash -c "! kill -0 ${WORKER_PID[wa]}"
kill -TERM "$SATURND_PID"
check "saturnd stops on SIGTERM" wait_until 15 bash -c "! kill -0 $SATURND_PID"

# ---- mutual TLS: --tls-client-ca ------------------------------------------------------

start_saturnd "$T/state2" --tls-cert "$C/server.crt" --tls-key "$C/server.key" \
    --tls-client-ca "$C/ca.crt"
contains "saturnd says it requires client certificates" "$(tail -n 5 "$T/saturnd.log")" \
    "client certificates required"
tls_worker wc --tls-cert "$C/client.crt" --tls-key "$C/client.key"
tls_worker wn
MTLS=(--tls-cert "$C/client.crt" --tls-key "$C/client.key")
check "the worker with a client certificate registers" \
    wait_until 20 jq_ok '[.[].name] == ["wc"]' "$SATURN" workers --json "${MTLS[@]}"
check "the worker without a client certificate says to pass --tls-cert and --tls-key" \
    wait_until 20 grep -q 'pass --tls-cert and --tls-key' "$T/worker-wn.log"
sleep 2
check "the worker without a client certificate is not registered" \
    jq_ok '[.[].name] == ["wc"]' "$SATURN" workers --all --json "${MTLS[@]}"
check "it keeps running and retrying (it may be the network)" kill -0 "${WORKER_PID[wn]}"
expect_exit 0 "submit a small job under mutual TLS" "$SATURN" submit "${MTLS[@]}" \
    --model mlp --dataset synthetic --workers 1 --epochs 1 --train_limit 512 --test_limit 128 \
    --batch_size 64 --warmup_epochs 0 --json
J=$(echo "$OUT" | jq -r .job_id)
check "the job ends within 120 s" wait_until 120 job_ended "$J" "${MTLS[@]}"
check "the worker with a client certificate (the only one registered) trained it to success" \
    jq_ok '.state == "succeeded" and (.worker_ids | length) == 1' \
    "$SATURN" status "$J" --json "${MTLS[@]}"
expect_exit 5 "a CLI without a client certificate is refused (unavailable)" \
    timeout 30 "$SATURN" list
expect_exit 0 "a CLI with a client certificate is served" "$SATURN" list "${MTLS[@]}"
expect_exit 1 "a worker given --tls-cert without --tls-key stops at start" \
    timeout 20 "$SATURN_WORKER" --tls-cert "$C/client.crt"
contains "it names the missing flag" "$ERR" "--tls-cert $C/client.crt needs --tls-key"

finish
