#!/usr/bin/env bash
# image-check.sh - builds Saturn's container images with podman and trains a
# small job with their binaries, end to end, without running a container:
#
#   1. a `debian:12` base image (tagged `debian:12-slim` too), made with
#      `debootstrap --variant=minbase bookworm` + `podman import` when podman
#      has none (an existing one is reused);
#   2. `podman build --isolation chroot --network host` of both targets of
#      deploy/Dockerfile, `saturnd` and `worker` (layers cached across runs);
#   3. `podman create` + `podman mount` one container of each image, /proc and
#      /dev bound into its root, and the image's binaries run there with
#      `chroot --userspec` as the image's USER, with the image's ENV and
#      WORKDIR: saturnd as deploy/compose.yaml runs it (TLS certificate and
#      key, three tokens, all under /run/secrets) but on 127.0.0.1 and free
#      ports; two workers with the worker token and the CA, dialling
#      `saturnd:PORT` (the name the certificate holds, as in compose); the
#      image's CLI submits cnn-small W4A4 on Fashion-MNIST (the saturnd
#      image's data set package), 1 epoch on 2048 images, and the job must
#      succeed. The image's HEALTHCHECK command and HTTPS /healthz are tried
#      too.
#
# Running the containers themselves fails in some sandboxes (the OCI runtime
# cannot set rlimits); the chroot runs the same files as the same user.
# Needs root (podman mount, chroot, mount --bind). Installs podman,
# debootstrap, openssl, jq and curl with apt-get when missing. Safe to run
# again; cleans up after itself (processes by PID, mounts, containers) on
# every exit. Prints timings and ends with "image-check: PASS" or
# "image-check: FAIL ..." (exit 0 / 1; 77 = cannot run here: not root).
#
#   deploy/image-check.sh                from the repository root or anywhere
#   SATURN_IMAGE_TAG=test deploy/image-check.sh   tag of the built images
#                                                  (default 0.1.0)
#   SATURN_JOB_TIMEOUT=600               seconds the job may take (default 600)
#   SATURN_KEEP_IMAGES=0                 remove the two built images at the end
#   SATURN_IMAGE_CHECK_LOGS=DIR          keep the logs (debootstrap, builds,
#                                        saturnd, workers) in DIR
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
TAG=${SATURN_IMAGE_TAG:-0.1.0}
JOB_TIMEOUT=${SATURN_JOB_TIMEOUT:-600}
IMG_SATURND=localhost/saturn/saturnd:$TAG
IMG_WORKER=localhost/saturn/worker:$TAG
START_ALL=$SECONDS

say() { echo "image-check: $*"; }
fail_now() {
    say "$*"
    say "FAIL ($*)"
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: image-check needs root (podman mount, chroot, mount --bind)"
    exit 77
fi

# ---- packages ---------------------------------------------------------------

need=()
for p in podman debootstrap openssl jq curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
        fail_now "apt-get install ${need[*]} failed"
fi

# ---- clean-up ---------------------------------------------------------------

T=$(mktemp -d /var/tmp/saturn-image-check.XXXXXX)
PIDS=()
MOUNTS=()     # bind mounts inside container roots, unmounted in reverse order
CONTAINERS=() # podman containers, unmounted and removed
BASE_DIR=""   # debootstrap root while it exists
cleanup() {
    local p i
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for i in 1 2 3 4 5 6; do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 0.5
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null
    done
    for c in "${CONTAINERS[@]}"; do
        podman umount "$c" >/dev/null 2>&1
        podman rm -f "$c" >/dev/null 2>&1
    done
    if [ -n "$BASE_DIR" ]; then
        for m in proc sys dev/pts dev; do umount "$BASE_DIR/$m" 2>/dev/null; done
        rm -rf --one-file-system "$BASE_DIR"
    fi
    if [ "${SATURN_KEEP_IMAGES:-1}" = 0 ]; then
        podman rmi "$IMG_SATURND" "$IMG_WORKER" >/dev/null 2>&1
    fi
    if [ -n "${SATURN_IMAGE_CHECK_LOGS:-}" ]; then
        mkdir -p "$SATURN_IMAGE_CHECK_LOGS" && cp "$T"/*.log "$SATURN_IMAGE_CHECK_LOGS"/ 2>/dev/null
    fi
    rm -rf --one-file-system "$T"
}
trap cleanup EXIT
trap 'say "FAIL (interrupted)"; exit 1' INT TERM HUP

# ---- 1. base image ------------------------------------------------------------

# The Debian mirror apt uses here (deb822 sources or sources.list), else
# deb.debian.org.
debian_mirror() {
    local m
    m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}')
    [ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" && $0 ~ /bookworm/ && $0 !~ /security/ {
                 for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}')
    echo "${m:-http://deb.debian.org/debian}"
}

t0=$SECONDS
if podman image exists debian:12; then
    say "base image debian:12 exists: reused"
else
    MIRROR=$(debian_mirror)
    BASE_DIR=$(mktemp -d /var/tmp/saturn-debian12.XXXXXX)
    say "making debian:12 with debootstrap --variant=minbase bookworm from $MIRROR"
    nice -n 10 debootstrap --variant=minbase bookworm "$BASE_DIR" "$MIRROR" >"$T/debootstrap.log" 2>&1 || {
        tail -n 20 "$T/debootstrap.log"
        fail_now "debootstrap failed"
    }
    # As Debian's own image: the release, its updates and security updates;
    # no package lists or downloaded packages left in the image.
    rm -f "$BASE_DIR/etc/apt/sources.list"
    cat >"$BASE_DIR/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    chroot "$BASE_DIR" apt-get clean
    rm -rf "$BASE_DIR"/var/lib/apt/lists/* "$BASE_DIR"/var/cache/apt/*.bin "$BASE_DIR"/var/log/*.log \
        "$BASE_DIR"/tmp/* "$BASE_DIR"/var/tmp/*
    tar -C "$BASE_DIR" --numeric-owner -c . |
        podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' - debian:12 >/dev/null ||
        fail_now "podman import failed"
    podman tag debian:12 debian:12-slim || fail_now "podman tag debian:12-slim failed"
    rm -rf --one-file-system "$BASE_DIR"
    BASE_DIR=""
fi
podman image exists debian:12-slim || podman tag debian:12 debian:12-slim ||
    fail_now "podman tag debian:12-slim failed"
T_BASE=$((SECONDS - t0))

# ---- 2. images ------------------------------------------------------------------

build() { # TARGET IMAGE
    local t=$SECONDS
    say "podman build --target $1 -t $2"
    if ! nice -n 10 podman build --isolation chroot --network host --pull=never --layers --format docker \
        -f deploy/Dockerfile --target "$1" -t "$2" . >"$T/build-$1.log" 2>&1; then
        tail -n 40 "$T/build-$1.log"
        fail_now "podman build --target $1 failed"
    fi
    say "built $2 in $((SECONDS - t)) s"
}
t0=$SECONDS
build saturnd "$IMG_SATURND"
T_BUILD_SATURND=$((SECONDS - t0))
t0=$SECONDS
build worker "$IMG_WORKER"
T_BUILD_WORKER=$((SECONDS - t0))

# ---- 3. run the images' binaries in chroots of their containers ----------------------

t0=$SECONDS
# open_root IMAGE VAR: creates and mounts a container of IMAGE, binds /proc and
# /dev into it; its root directory goes in VAR.
open_root() {
    local c r
    c=$(podman create "$1") || fail_now "podman create $1 failed"
    CONTAINERS+=("$c")
    r=$(podman mount "$c") || fail_now "podman mount $1 failed"
    for m in proc dev; do
        mkdir -p "$r/$m"
        mount --bind "/$m" "$r/$m" || fail_now "mount --bind /$m $r/$m failed"
        MOUNTS+=("$r/$m")
    done
    printf -v "$2" '%s' "$r"
}
# image_user IMAGE ROOT: the image's USER as numeric UID:GID.
image_user() {
    local u g
    u=$(podman image inspect --format '{{.Config.User}}' "$1")
    [ -n "$u" ] || u=root
    g=${u#*:}
    [ "$g" = "$u" ] && g=""
    u=${u%%:*}
    case $u in *[!0-9]*) u=$(awk -F: -v n="$u" '$1 == n {print $3}' "$2/etc/passwd") ;; esac
    if [ -z "$g" ]; then
        g=$(awk -F: -v n="$u" '$3 == n {print $4}' "$2/etc/passwd")
    else
        case $g in *[!0-9]*) g=$(awk -F: -v n="$g" '$1 == n {print $3}' "$2/etc/group") ;; esac
    fi
    [ -n "$u" ] && [ -n "$g" ] || return 1
    echo "$u:$g"
}
# image_env IMAGE: the image's ENV, one VAR=VALUE a line.
image_env() { podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1"; }

open_root "$IMG_SATURND" SROOT
open_root "$IMG_WORKER" WROOT
S_USER=$(image_user "$IMG_SATURND" "$SROOT") || fail_now "cannot resolve the saturnd image's USER"
W_USER=$(image_user "$IMG_WORKER" "$WROOT") || fail_now "cannot resolve the worker image's USER"
[ "${S_USER%%:*}" != 0 ] && [ "${W_USER%%:*}" != 0 ] || fail_now "an image runs as root"
S_WORKDIR=$(podman image inspect --format '{{.Config.WorkingDir}}' "$IMG_SATURND")
W_WORKDIR=$(podman image inspect --format '{{.Config.WorkingDir}}' "$IMG_WORKER")
# shellcheck disable=SC2034 # S_ENV and W_ENV are used by name (in_root)
mapfile -t S_ENV < <(image_env "$IMG_SATURND" | grep .)
# shellcheck disable=SC2034
mapfile -t W_ENV < <(image_env "$IMG_WORKER" | grep .)
say "saturnd image runs as $S_USER in ${S_WORKDIR:-/}, worker image as $W_USER in ${W_WORKDIR:-/}"

# A container runtime's PATH when the image sets none.
DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# in_root ROOT USER WORKDIR ENV_ARRAY_NAME CMD...: CMD in ROOT as USER, with
# exactly the image's environment (plus overrides given as VAR=VALUE first in
# CMD, through the image's own env). It execs: run it in a subshell, or in
# the background, where $! is then the PID of the binary itself.
in_root() {
    local root=$1 user=$2 wd=${3:-/} envname="$4[@]"
    shift 4
    exec chroot --userspec="$user" --groups="${user#*:}" "$root" \
        /usr/bin/env -i -C "$wd" HOME="$wd" PATH="$DEFAULT_PATH" "${!envname}" "$@"
}

# TLS: a CA and a server certificate for saturnd (the compose service name),
# localhost and 127.0.0.1, as deploy/README.md asks; the three tokens.
C=$T/certs
mkdir -p "$C"
ossl() { openssl "$@" 2>>"$T/openssl.log" >/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$C/ca.key" -out "$C/ca.crt" -days 2 \
    -subj "/CN=saturn image-check CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign &&
    ossl req -newkey rsa:2048 -nodes -keyout "$C/tls.key" -out "$C/tls.csr" -subj "/CN=saturnd" &&
    printf 'subjectAltName=DNS:saturnd,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
        >"$C/tls.ext" &&
    ossl x509 -req -in "$C/tls.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial \
        -out "$C/tls.crt" -days 2 -extfile "$C/tls.ext" ||
    fail_now "openssl could not make the certificates ($(tail -n 3 "$T/openssl.log"))"
for t in token viewer-token worker-token; do openssl rand -hex 32 >"$C/$t"; done

# secret ROOT USER SRC NAME MODE: SRC as ROOT/run/secrets/NAME, owned by USER
# (a compose file secret keeps the host file's owner and mode).
secret() {
    install -D -o "${2%%:*}" -g "${2#*:}" -m "$5" "$3" "$1/run/secrets/$4" ||
        fail_now "cannot install the secret $4"
}
secret "$SROOT" "$S_USER" "$C/token" saturn_token 0600
secret "$SROOT" "$S_USER" "$C/viewer-token" saturn_viewer_token 0600
secret "$SROOT" "$S_USER" "$C/worker-token" saturn_worker_token 0600
secret "$SROOT" "$S_USER" "$C/tls.crt" saturn_tls_cert 0644
secret "$SROOT" "$S_USER" "$C/tls.key" saturn_tls_key 0600
secret "$SROOT" "$S_USER" "$C/ca.crt" saturn_tls_ca 0644
secret "$WROOT" "$W_USER" "$C/worker-token" saturn_worker_token 0600
secret "$WROOT" "$W_USER" "$C/ca.crt" saturn_tls_ca 0644
# Compose's network resolves the service name; here it is the loopback.
printf '127.0.0.1\tlocalhost saturnd\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$WROOT/etc/hosts"
# The state volume starts as the image's /var/lib/saturn; saturnd writes its
# port files into it.
STATE=/var/lib/saturn

# saturnd as compose.yaml's command has it, but on 127.0.0.1 and free ports.
in_root "$SROOT" "$S_USER" "$S_WORKDIR" S_ENV SATURN_TOKEN_FILE=/run/secrets/saturn_token \
    saturnd --listen 127.0.0.1:0 --port-file "$STATE/port" --state-dir "$STATE" \
    --token-file /run/secrets/saturn_token \
    --viewer-token-file /run/secrets/saturn_viewer_token \
    --worker-token-file /run/secrets/saturn_worker_token \
    --http 127.0.0.1:0 --http-port-file "$STATE/http-port" \
    --tls-cert /run/secrets/saturn_tls_cert --tls-key /run/secrets/saturn_tls_key \
    >"$T/saturnd.log" 2>&1 &
PIDS+=("$!")
SATURND_PID=$!
for _ in $(seq 1 100); do
    [ -s "$SROOT$STATE/port" ] && [ -s "$SROOT$STATE/http-port" ] && break
    kill -0 "$SATURND_PID" 2>/dev/null || break
    sleep 0.2
done
PORT=$(cat "$SROOT$STATE/port" 2>/dev/null)
HPORT=$(cat "$SROOT$STATE/http-port" 2>/dev/null)
if [ -z "$PORT" ] || [ -z "$HPORT" ]; then
    tail -n 20 "$T/saturnd.log"
    fail_now "saturnd did not start"
fi
grep -q "TLS" "$T/saturnd.log" || fail_now "saturnd does not say it serves TLS"
say "saturnd (image $IMG_SATURND, uid ${S_USER%%:*}) serves gRPC over TLS on 127.0.0.1:$PORT, HTTPS on $HPORT"

# The image's CLI, with the image's environment and compose's token variable.
cli() (
    in_root "$SROOT" "$S_USER" "$S_WORKDIR" S_ENV SATURN_TOKEN_FILE=/run/secrets/saturn_token \
        SATURN_ADDR="127.0.0.1:$PORT" saturn "$@"
)

# The image's HEALTHCHECK command, with its --addr pointed at our port.
mapfile -t HC < <(podman image inspect --format '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' \
    "$IMG_SATURND" | grep .)
if [ "${HC[0]:-}" = CMD ] && [ ${#HC[@]} -gt 1 ]; then
    HC=("${HC[@]:1}")
    for i in "${!HC[@]}"; do [ "${HC[i]}" = 127.0.0.1:7070 ] && HC[i]=127.0.0.1:$PORT; done
    (in_root "$SROOT" "$S_USER" "$S_WORKDIR" S_ENV SATURN_TOKEN_FILE=/run/secrets/saturn_token \
        "${HC[@]}") >"$T/healthcheck.log" 2>&1 ||
        fail_now "the image's HEALTHCHECK (${HC[*]}) fails: $(cat "$T/healthcheck.log")"
    say "the image's HEALTHCHECK passes: ${HC[*]}"
else
    fail_now "the saturnd image has no exec-form HEALTHCHECK (${HC[*]:-none})"
fi
[ "$(curl -sS --max-time 10 --cacert "$C/ca.crt" "https://127.0.0.1:$HPORT/healthz")" = ok ] ||
    fail_now "HTTPS /healthz with the CA does not answer ok"
say "HTTPS /healthz answers ok"

# Two workers as compose runs them (worker token, CA, saturnd's name).
WORKER_PIDS=()
for w in 1 2; do
    in_root "$WROOT" "$W_USER" "$W_WORKDIR" W_ENV \
        saturn-worker --coordinator "saturnd:$PORT" --token-file /run/secrets/saturn_worker_token \
        --tls-ca /run/secrets/saturn_tls_ca --threads 1 --name "image-worker-$w" \
        >"$T/worker-$w.log" 2>&1 &
    PIDS+=("$!")
    WORKER_PIDS+=("$!")
done
n=0
for _ in $(seq 1 60); do
    n=$(cli workers --json 2>/dev/null | jq '[.[] | select(.state == "idle")] | length' 2>/dev/null)
    [ "${n:-0}" = 2 ] && break
    sleep 0.5
done
if [ "${n:-0}" != 2 ]; then
    tail -n 10 "$T"/worker-*.log
    fail_now "the two workers did not register over TLS (idle: ${n:-0})"
fi
say "two workers (image $IMG_WORKER, uid ${W_USER%%:*}) registered over TLS as saturnd:$PORT"

# The job: examples/cnn-small-w4a4.json (Fashion-MNIST from the saturnd
# image's package), cut to one short epoch.
install -D -m 0644 examples/cnn-small-w4a4.json "$SROOT/tmp/image-check-job.json"
OUT=$(cli submit /tmp/image-check-job.json --name image-check --epochs 1 --train_limit 2048 \
    --test_limit 500 --warmup_epochs 0 --json 2>"$T/submit.err") ||
    fail_now "saturn submit failed: $(cat "$T/submit.err")"
J=$(echo "$OUT" | jq -r .job_id)
say "submitted $J (cnn-small W4A4, Fashion-MNIST, 2 workers, 1 epoch, 2048 images)"
state=""
t_job=$SECONDS
while [ $((SECONDS - t_job)) -lt "$JOB_TIMEOUT" ]; do
    state=$(cli status "$J" --json 2>/dev/null | jq -r .state 2>/dev/null)
    case $state in succeeded | failed | cancelled) break ;; esac
    kill -0 "$SATURND_PID" 2>/dev/null || break
    sleep 2
done
STATUS=$(cli status "$J" --json 2>/dev/null)
state=$(echo "$STATUS" | jq -r .state 2>/dev/null)
if [ "$state" != succeeded ]; then
    echo "$STATUS" | jq -c '{state, reason}' 2>/dev/null
    tail -n 20 "$T/saturnd.log" "$T"/worker-*.log
    fail_now "job $J is ${state:-unknown}, not succeeded, after $((SECONDS - t_job)) s"
fi
say "job $J succeeded in $((SECONDS - t_job)) s: $(echo "$STATUS" | jq -c '{step, workers: (.worker_ids | length), metrics: (.metrics // .last_metrics // null)}' 2>/dev/null)"
[ -s "$SROOT$STATE/jobs/$J/model.safetensors" ] ||
    fail_now "saturnd wrote no $STATE/jobs/$J/model.safetensors"
say "saturnd wrote $STATE/jobs/$J/model.safetensors ($(stat -c %s "$SROOT$STATE/jobs/$J/model.safetensors") bytes), owned by uid $(stat -c %u "$SROOT$STATE/jobs/$J/model.safetensors")"

# A clean stop: SIGTERM, as compose and Kubernetes stop containers; the
# workers leave first, then saturnd checkpoints and stops. Each exits 0.
stop() { # NAME PID
    kill -TERM "$2" 2>/dev/null
    wait "$2"
    local rc=$?
    [ $rc -eq 0 ] || fail_now "$1 (pid $2) exited with status $rc on SIGTERM"
}
stop "worker 1" "${WORKER_PIDS[0]}"
stop "worker 2" "${WORKER_PIDS[1]}"
stop saturnd "$SATURND_PID"
grep -q "stopped cleanly" "$T/saturnd.log" || fail_now "saturnd did not say it stopped cleanly"
PIDS=()
say "workers and saturnd stopped cleanly on SIGTERM"
T_RUN=$((SECONDS - t0))

say "timings: base image ${T_BASE} s, build saturnd ${T_BUILD_SATURND} s, build worker ${T_BUILD_WORKER} s, run ${T_RUN} s, total $((SECONDS - START_ALL)) s"
say "PASS"
