#!/usr/bin/python3
"""deploy_check.py - checks deploy/ (Dockerfile, compose file, Kubernetes
manifests) against the real binaries, on a machine without a Docker engine.

Called by deploy_check.sh:
    deploy_check.py ROOT BUILD SATURND SATURN_WORKER SATURN COMPOSE_CONFIG_YAML

ROOT is the source tree (or a copy of it), BUILD a meson build dir of the
source tree (introspected for the files the build reads), COMPOSE_CONFIG_YAML
the output of
`docker-compose -f ROOT/deploy/compose.yaml config` (compose already
validated the file; this script checks what it resolved to).

What is checked:
  * every manifest parses as YAML (duplicate keys are errors), and the kinds
    and fields Saturn relies on are there and agree with each other;
  * every flag on a command line (Dockerfile ENTRYPOINT/CMD/HEALTHCHECK,
    compose entrypoint/command, Kubernetes command/args) is a real flag of
    that binary, parsed from its --help: known name, value present when the
    flag takes one and absent when not, enumerated values (text|json, ...)
    and numeric values valid, no stray positional argument;
  * TLS is on everywhere saturnd runs: --tls-cert and --tls-key (and the
    workers' --tls-ca, the CLI's SATURN_TLS_CA) point at files of mounted
    secrets (compose file secrets, the Kubernetes Secret saturn-tls, whose
    key volume is not world-readable), and saturnd's Kubernetes probes are
    HTTPS GETs of /healthz on the --http port (the kubelet's gRPC probe
    cannot speak TLS);
  * one gRPC port everywhere: saturnd's --listen, EXPOSE, published and
    container ports, Services, probes, the workers' --coordinator, SATURN_ADDR;
    and, where saturnd has --http, one HTTP port: the --http flags, and the
    EXPOSE, published, container and Service ports that point at it (every
    exposed port is one or the other);
  * the Dockerfile's structure (stages, COPY --from, non-root USER, the
    packages of the build and runtime stages against deploy/packages.txt and
    the binaries' shared libraries) and the .dockerignore allow-list, which
    must let in every file the meson build reads.

Output: one "ok N - ..." / "not ok N - ..." line per check; exit 1 if any failed.
"""
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

from deploy_lib import (StrictLoader, apt_packages, dig, dockerfile_instructions, exec_form,
                        host_of, load_yaml_all, port_of)

ROOT, BUILD, SATURND, WORKER, CLI, COMPOSE_OUT = sys.argv[1:7]
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
BINARIES = {"saturnd": SATURND, "saturn-worker": WORKER, "saturn": CLI}

n_checks = 0
n_failed = 0


def check(cond, what, detail=""):
    global n_checks, n_failed
    n_checks += 1
    if cond:
        print(f"ok {n_checks} - {what}")
    else:
        n_failed += 1
        print(f"not ok {n_checks} - {what}" + (f": {detail}" if detail else ""))
    return cond


# ---- the binaries' flags, from --help -------------------------------------

OPT_RE = re.compile(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)(?: ([A-Z][A-Z_.:]*))?(?:\s+(.*))?$")
ENUM_RE = re.compile(r"\b([a-z0-9-]+(?:\|[a-z0-9-]+)+)\b")


def run_help(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    return p.returncode, p.stdout


def parse_options(text):
    """{flag: {"arg": METAVAR or None, "enum": set or None}} from a help text."""
    opts = {}
    for line in text.splitlines():
        m = OPT_RE.match(line)
        if not m:
            continue
        flag, meta, desc = m.group(1), m.group(2), m.group(3) or ""
        e = ENUM_RE.search(desc) if meta else None
        opts[flag] = {"arg": meta, "enum": set(e.group(1).split("|")) if e else None}
    return opts


HELP = {}
for name, path in BINARIES.items():
    rc, text = run_help([path, "--help"])
    opts = parse_options(text)
    check(rc == 0 and "--help" in opts, f"{name} --help runs and lists its options",
          f"exit {rc}, {len(opts)} options")
    HELP[name] = {"opts": opts, "text": text}

# saturn COMMAND: the commands of `saturn --help`, each with its own options
# plus the common ones (`common options: --addr, ...`).
CLI_CMDS = {}
_in_cmds = False
for line in HELP["saturn"]["text"].splitlines():
    if line.startswith("commands:"):
        _in_cmds = True
        continue
    if _in_cmds:
        m = re.match(r"^  ([a-z]+)\s{2,}", line)
        if m:
            CLI_CMDS[m.group(1)] = None
        elif not line.strip():
            _in_cmds = False
for cmd in CLI_CMDS:
    rc, text = run_help([CLI, cmd, "--help"])
    opts = dict(HELP["saturn"]["opts"])
    opts.update(parse_options(text))
    CLI_CMDS[cmd] = opts
check(len(CLI_CMDS) >= 3, "saturn --help lists its commands", ", ".join(CLI_CMDS))

NUMERIC_META = {"N", "MS"}


def check_argv(where, argv, env_names=()):
    """Checks one command line. Returns {flag: value} (last wins) or None."""
    if not argv:
        check(False, f"{where}: has a command line")
        return None
    binary = os.path.basename(argv[0])
    if not check(binary in HELP, f"{where}: runs one of Saturn's binaries", argv[0]):
        return None
    opts = HELP[binary]["opts"]
    rest = list(argv[1:])
    if binary == "saturn":
        if not check(bool(rest) and rest[0] in CLI_CMDS, f"{where}: `saturn` command is real",
                     " ".join(rest[:1])):
            return None
        opts = CLI_CMDS[rest[0]]
        rest = rest[1:]
    values, errors = {}, []
    i = 0
    while i < len(rest):
        a = rest[i]
        if not a.startswith("--"):
            errors.append(f"unexpected argument {a!r}")
            i += 1
            continue
        flag, eq, inline = a.partition("=")
        spec = opts.get(flag)
        if spec is None:
            errors.append(f"{flag} is not a flag of {binary}")
            i += 1
            continue
        if spec["arg"] is None:
            if eq:
                errors.append(f"{flag} takes no value")
            values[flag] = True
            i += 1
            continue
        if eq:
            val = inline
            i += 1
        elif i + 1 < len(rest) and not rest[i + 1].startswith("--"):
            val = rest[i + 1]
            i += 2
        else:
            errors.append(f"{flag} needs a value ({spec['arg']})")
            i += 1
            continue
        ref = re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", val)
        if ref:  # Kubernetes $(VAR): the variable must be defined
            if ref.group(1) not in env_names:
                errors.append(f"{flag} {val}: {ref.group(1)} is not in the container's env")
        elif spec["enum"] and val not in spec["enum"]:
            errors.append(f"{flag} {val}: not one of {'|'.join(sorted(spec['enum']))}")
        elif spec["arg"] in NUMERIC_META and not re.fullmatch(r"[0-9]+", val):
            errors.append(f"{flag} {val}: not a number")
        elif spec["arg"] in ("ADDR", "HOST:PORT") and not re.fullmatch(r".+:[0-9]+", val):
            errors.append(f"{flag} {val}: not HOST:PORT")
        values[flag] = val
    check(not errors, f"{where}: {binary} flags are real ({', '.join(sorted(values)) or 'none'})",
          "; ".join(errors))
    return values


PORTS = []  # (where, port): gRPC; all must agree
HTTP_PORTS = []  # (where, port): saturnd's --http; all must agree
EXPOSED = []  # (where, port, key): an exposed port, gRPC or HTTP as `key` is


def note_port(where, port):
    PORTS.append((where, port))


def note_http(where, addr):
    """saturnd --http ADDR: all interfaces, one port everywhere."""
    HTTP_PORTS.append((where, port_of(addr)))
    check(host_of(addr) in ("0.0.0.0", "[::]"), f"{where}: --http listens on all interfaces", addr)


def note_exposed(where, port, key=None):
    EXPOSED.append((where, port, port if key is None else key))


# ---- Dockerfile ---------------------------------------------------------

DF = os.path.join(DEPLOY, "Dockerfile")
stages = []  # dicts: name, base, parent (stage dict or None), instructions
try:
    for lineno, ins, rest in dockerfile_instructions(DF):
        if ins == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            base, name = (m.group(1), m.group(2)) if m else (rest, None)
            parent = next((s for s in stages if s["name"] == base), None)
            stages.append({"name": name, "base": base, "parent": parent, "ins": [], "line": lineno})
        elif stages:
            stages[-1]["ins"].append((lineno, ins, rest))
    df_ok = True
except OSError as e:
    df_ok = False
    check(False, "deploy/Dockerfile is readable", str(e))

STAGE = {s["name"]: s for s in stages if s["name"]}


def lineage(stage):
    while stage:
        yield stage
        stage = stage["parent"]


def effective(stage, ins):
    """The last INS of the stage or of the stages it derives from."""
    for s in lineage(stage):
        found = [r for (_, i, r) in s["ins"] if i == ins]
        if found:
            return found[-1]
    return None


def stage_packages(stage):
    return [p for s in lineage(stage) for (_, i, r) in s["ins"] if i == "RUN"
            for p in apt_packages(r)]


if df_ok:
    check(len(stages) >= 2 and all(s["name"] for s in stages),
          "Dockerfile: multi-stage, every stage named", f"{len(stages)} stage(s)")
    bad_base = [s["base"] for s in stages if not s["parent"]
                and not re.fullmatch(r"debian:(12|bookworm)(-slim)?(@sha256:[0-9a-f]{64})?", s["base"])]
    check(not bad_base, "Dockerfile: external bases are Debian 12 (bookworm)", ", ".join(bad_base))
    build = STAGE.get("build")
    check(build is not None, "Dockerfile: has a stage `build`")
    if build:
        runs = " ".join(r for (_, i, r) in build["ins"] if i == "RUN")
        check(re.search(r"meson setup\b.*--buildtype[= ]release", runs) is not None
              and "-Dmarch=" in runs and "meson install" in runs,
              "Dockerfile: build stage runs meson setup --buildtype=release -Dmarch=..., meson install")
        # build packages of packages.txt: the -dev ones and the tools
        tools = {"build-essential", "pkg-config", "meson", "ninja-build", "protobuf-c-compiler"}
        with open(os.path.join(DEPLOY, "packages.txt")) as f:
            listed = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
        fuzz_only = {"libclang-rt-14-dev", "libomp-14-dev"}  # the clang fuzz build's, not the image's
        want = [p for p in listed if (p.endswith("-dev") or p in tools) and p not in fuzz_only]
        have = set(stage_packages(build))
        missing = [p for p in want if p not in have]
        check(not missing and want, "Dockerfile: build stage installs every build package of "
              f"deploy/packages.txt ({len(want)})", "missing: " + ", ".join(missing))
    copies = [(s, r) for s in stages for (_, i, r) in s["ins"] if i == "COPY" and "--from=" in r]
    bad_from = []
    for s, r in copies:
        src = re.search(r"--from=(\S+)", r).group(1)
        earlier = [t["name"] for t in stages[:stages.index(s)]]
        if src not in earlier:
            bad_from.append(f"{s['name']}: --from={src}")
    check(copies and not bad_from, "Dockerfile: COPY --from names earlier stages",
          "; ".join(bad_from) or "no COPY --from")
    copied = " ".join(r for (_, r) in copies)
    missing_bins = [b for b in BINARIES if not re.search(r"/" + re.escape(b) + r"(\s|$)", copied)]
    check(not missing_bins, "Dockerfile: saturnd, saturn-worker and saturn are copied from the build",
          "missing: " + ", ".join(missing_bins))

    # user: a fixed uid created with useradd, and USER non-root in every image
    # that runs something (and in the last stage, the default target)
    users = re.findall(r"useradd\b[^&;]*?--uid\s+([0-9]+)[^&;]*?\s([a-z_][a-z0-9_-]*)\s*(?:&&|;|$)",
                       " ".join(r for s in stages for (_, i, r) in s["ins"] if i == "RUN"))
    uid_of = {name: int(uid) for uid, name in users}
    check(uid_of.get("saturn", 0) > 0, "Dockerfile: creates the user `saturn` with a fixed non-root uid",
          str(uid_of))
    IMAGE_UID = uid_of.get("saturn")
    leaves = [s for s in stages if not any(t["parent"] is s for t in stages)
              and not any(f"--from={s['name']}" in r for (_, r) in copies)]
    for s in leaves:
        u = effective(s, "USER")
        uid = None
        if u:
            who = u.split(":")[0]
            uid = int(who) if who.isdigit() else uid_of.get(who, 0 if who == "root" else None)
        check(uid is not None and uid != 0 and uid == IMAGE_UID,
              f"Dockerfile: image `{s['name']}` runs as the non-root user saturn", f"USER {u}")
    check(stages and stages[-1] in leaves and effective(stages[-1], "USER") is not None,
          "Dockerfile: the last stage (default target) has a non-root USER")

    # runtime libraries: every shared library the binaries load comes from a
    # package the runtime stage installs (libc6 is in the base image)
    saturnd_stage = STAGE.get("saturnd")
    runtime_pkgs = set()
    for s in leaves:
        runtime_pkgs |= set(stage_packages(s))
    dev = [p for p in runtime_pkgs if p.endswith("-dev") or p == "build-essential"]
    check(not dev, "Dockerfile: final images install no -dev packages", ", ".join(dev))
    base_pkgs = {"libc6", "libgcc-s1"}
    libs = {}  # binary -> [(soname, path)]
    for b, path in BINARIES.items():
        ldd = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        needed = subprocess.run(["readelf", "-d", path], stdout=subprocess.PIPE, text=True).stdout
        resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd.stdout, re.M))
        libs[b] = [(so, resolved.get(so)) for so in
                   re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", needed)
                   if not re.match(r"lib(a|ub|l|t|hwa)san\.", so)]  # sanitizer builds
    paths = {p for v in libs.values() for _, p in v if p}
    paths |= {os.path.realpath(p) for p in paths}
    owner = {}
    out = subprocess.run(["dpkg", "-S"] + sorted(paths), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout if paths else ""
    for line in out.splitlines():
        pkg, _, f = line.partition(": ")
        owner[f.strip()] = pkg.split(":")[0]
    missing = {}
    for b, v in libs.items():
        for so, p in v:
            pkg = owner.get(p or "") or owner.get(os.path.realpath(p) if p else "")
            if pkg not in runtime_pkgs and pkg not in base_pkgs:
                missing.setdefault(b, []).append(f"{so} ({pkg or 'no package'})")
    check(not missing, "Dockerfile: runtime packages provide every shared library the binaries need",
          "; ".join(f"{b}: {', '.join(v)}" for b, v in missing.items()))
    if saturnd_stage:
        check("dataset-fashion-mnist" in stage_packages(saturnd_stage),
              "Dockerfile: the saturnd image has the Fashion-MNIST package")
        expose = effective(saturnd_stage, "EXPOSE")
        check(expose is not None, "Dockerfile: the saturnd image EXPOSEs its gRPC port")
        for e in (expose or "").split():
            note_exposed("Dockerfile EXPOSE", int(e.split("/")[0]) if e.split("/")[0].isdigit() else e)

    # command lines of each image
    ENTRY = {}
    for s in leaves:
        ep = effective(s, "ENTRYPOINT")
        cmd = effective(s, "CMD")
        ep_v = exec_form(ep) if ep else []
        cmd_v = exec_form(cmd) if cmd else []
        check(ep is None or (ep.strip().startswith("[") and ep_v is not None),
              f"Dockerfile: `{s['name']}` ENTRYPOINT is in exec form (signals reach the binary)")
        ENTRY[s["name"]] = ep_v or []
        if ep_v or cmd_v:
            vals = check_argv(f"Dockerfile {s['name']} ENTRYPOINT+CMD", (ep_v or []) + (cmd_v or []))
            if vals and "--listen" in vals:
                note_port("Dockerfile CMD --listen", port_of(vals["--listen"]))
                check(host_of(vals["--listen"]) in ("0.0.0.0", "[::]"),
                      "Dockerfile: saturnd CMD listens on all interfaces", vals["--listen"])
            if vals and "--http" in vals:
                note_http("Dockerfile CMD", vals["--http"])
            if vals and "--listen" in vals:
                check(all(str(vals.get(f, "")).startswith("/run/secrets/")
                          for f in ("--tls-cert", "--tls-key")),
                      "Dockerfile: saturnd CMD serves TLS from /run/secrets "
                      "(--tls-cert, --tls-key)",
                      f"--tls-cert {vals.get('--tls-cert')}, --tls-key {vals.get('--tls-key')}")
        hc = effective(s, "HEALTHCHECK")
        if hc and not hc.strip().upper().startswith("NONE"):
            m = re.search(r"\bCMD\s+(.*)$", hc)
            argv = exec_form(m.group(1)) if m else None
            vals = check_argv(f"Dockerfile {s['name']} HEALTHCHECK", argv or [])
            if vals and "--addr" in vals:
                note_port("Dockerfile HEALTHCHECK --addr", port_of(vals["--addr"]))
    env_df = effective(saturnd_stage, "ENV") if saturnd_stage else None
    for m in re.finditer(r"SATURN_ADDR=(\S+)", env_df or ""):
        note_port("Dockerfile ENV SATURN_ADDR", port_of(m.group(1)))
    check(re.search(r"SATURN_TLS_CA=/run/secrets/\S+", env_df or "") is not None,
          "Dockerfile: the saturnd image sets SATURN_TLS_CA (health check and CLI over TLS)")
else:
    ENTRY, IMAGE_UID = {}, None

# ---- .dockerignore: an allow-list that covers the meson project -------------

DI = os.path.join(ROOT, ".dockerignore")
try:
    with open(DI) as f:
        pats = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    allowed = {p[1:].strip("/") for p in pats if p.startswith("!")}
    check(pats[:1] == ["*"], ".dockerignore: starts with `*` (allow-list)")
    with open(os.path.join(ROOT, "meson.build")) as f:
        subdirs = {s.split("/")[0] for s in re.findall(r"subdir\('([^']+)'\)", f.read())}
    need = subdirs | {"meson.build", "meson_options.txt"}
    check(not (need - allowed), ".dockerignore: lets in meson.build, meson_options.txt and every "
          "top-level subdir()", "missing: " + ", ".join(sorted(need - allowed)))
    leaked = [p for p in allowed if p.split("/")[0] in (".git", "deploy") or p.startswith("build")]
    check(not leaked, ".dockerignore: keeps .git, build dirs and deploy/ (secrets) out", ", ".join(leaked))
    # every file the meson build reads: meson.build files, options, sources
    def introspect(what):  # what `meson introspect` reads: BUILD/meson-info/intro-*.json
        try:
            with open(os.path.join(BUILD, "meson-info", f"intro-{what}.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None
    files = list(introspect("buildsystem_files") or [])
    for t in introspect("targets") or []:
        for ts in t.get("target_sources", []):
            files += ts.get("sources", [])
    src_root = os.path.dirname(min((f for f in files if os.path.basename(f) == "meson.build"),
                                   key=len, default="/"))
    rel = {os.path.relpath(f, src_root) for f in files if f.startswith(src_root.rstrip("/") + "/")}
    outside = sorted(f for f in rel if f.split("/")[0] not in allowed)
    check(len(rel) > 20 and not outside, f".dockerignore: lets in all {len(rel)} files the meson build "
          "reads (meson introspect)", ", ".join(outside[:10]) or f"{len(rel)} files")
except OSError as e:
    check(False, ".dockerignore exists at the repository root", str(e))

# the Dockerfile copies the binaries from `meson install`: all three must be
# install targets, installed into bin/
installed = [os.path.basename(p) for p in ((lambda f: json.load(open(f)) if os.path.exists(f) else {})(
    os.path.join(BUILD, "meson-info", "intro-installed.json"))).values() if "/bin/" in p]
check(all(b in installed for b in BINARIES), "meson installs saturnd, saturn-worker and saturn into bin/",
      f"installed: {sorted(installed)}")

# ---- compose ----------------------------------------------------------------

try:
    with open(COMPOSE_OUT) as f:
        compose = yaml.load(f, Loader=StrictLoader)
except (OSError, yaml.YAMLError) as e:
    compose = None
    check(False, "docker-compose config output parses", str(e))

if compose:
    svcs = compose.get("services", {})
    sd, wk = svcs.get("saturnd"), svcs.get("worker")
    check(sd is not None and wk is not None, "compose: services saturnd and worker")
    secrets = compose.get("secrets", {})
    argv_of, vals_of = {}, {}
    for name, svc in svcs.items():
        b = svc.get("build", {})
        tgt = b.get("target")
        check(os.path.realpath(b.get("context", "")) == os.path.realpath(ROOT)
              and b.get("dockerfile") == "deploy/Dockerfile" and tgt in STAGE,
              f"compose {name}: builds target `{tgt}` of deploy/Dockerfile from the repository root",
              f"context {b.get('context')}, dockerfile {b.get('dockerfile')}")
        entry = svc.get("entrypoint") or ENTRY.get(tgt, [])
        cmd = svc.get("command") or []
        entry = shlex.split(entry) if isinstance(entry, str) else list(entry)
        cmd = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        argv_of[name] = entry + cmd
        vals_of[name] = check_argv(f"compose {name} command", entry + cmd) or {}
    worker_secret = [None, None]  # saturnd's --worker-token-file, the worker's --token-file
    for name, svc in svcs.items():
        vals = vals_of[name]
        binary = os.path.basename(argv_of[name][0]) if argv_of[name] else ""
        check(svc.get("restart") in ("always", "unless-stopped", "on-failure")
              or dig(svc, "deploy", "restart_policy") is not None, f"compose {name}: has a restart policy")
        lim = dig(svc, "deploy", "resources", "limits") or {}
        check("memory" in lim and "cpus" in lim, f"compose {name}: has CPU and memory limits", str(lim))
        # the token: a compose secret mounted where --token-file points
        targets = {}
        for s in svc.get("secrets", []):
            s = {"source": s} if isinstance(s, str) else s
            tgt_path = s.get("target") or s["source"]
            if not tgt_path.startswith("/"):
                tgt_path = "/run/secrets/" + tgt_path
            targets[tgt_path] = s["source"]
        def file_secret_at(path):
            return path in targets and "file" in secrets.get(targets.get(path), {})

        tf = vals.get("--token-file")
        check(file_secret_at(tf), f"compose {name}: --token-file is a file secret mounted at that path",
              f"{tf} vs {targets}")
        if binary == "saturnd":
            for flag in ("--viewer-token-file", "--worker-token-file"):
                check(file_secret_at(vals.get(flag)),
                      f"compose {name}: {flag} is a file secret mounted at that path",
                      f"{vals.get(flag)} vs {targets}")
            worker_secret[0] = targets.get(vals.get("--worker-token-file"))
        if binary == "saturn-worker":
            worker_secret[1] = targets.get(tf)
            check(not set(targets.values()) & {"saturn_token", "saturn_viewer_token"},
                  f"compose {name}: the worker gets no client or viewer token", str(targets))
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        tls_flags = {"saturnd": ("--tls-cert", "--tls-key"), "saturn-worker": ("--tls-ca",)}
        for flag in tls_flags.get(binary, ()):
            check(file_secret_at(vals.get(flag)),
                  f"compose {name}: {flag} is a file secret mounted at that path",
                  f"{vals.get(flag)} vs {sorted(targets)}")
        if binary == "saturnd":
            check(file_secret_at(env.get("SATURN_TLS_CA")),
                  f"compose {name}: SATURN_TLS_CA (the CLI's CA) is a file secret mounted there",
                  str(env.get("SATURN_TLS_CA")))
        if "SATURN_TOKEN_FILE" in env:
            check(env["SATURN_TOKEN_FILE"] == tf, f"compose {name}: SATURN_TOKEN_FILE is the --token-file",
                  f"{env['SATURN_TOKEN_FILE']} vs {tf}")
        if "SATURN_ADDR" in env:
            note_port(f"compose {name} SATURN_ADDR", port_of(env["SATURN_ADDR"]))
        if "--listen" in vals:
            note_port(f"compose {name} --listen", port_of(vals["--listen"]))
            check(host_of(vals["--listen"]) in ("0.0.0.0", "[::]"),
                  f"compose {name}: saturnd listens on all interfaces", vals["--listen"])
            if "--http" in vals:
                note_http(f"compose {name} command", vals["--http"])
            for p in svc.get("ports", []):
                target = p.get("target") if isinstance(p, dict) else str(p).split("/")[0].rsplit(":", 1)[-1]
                note_exposed(f"compose {name} ports", int(target))
            vols = [(v.get("source"), v.get("target")) if isinstance(v, dict) else tuple(v.split(":")[:2])
                    for v in svc.get("volumes", [])]
            src = next((s for s, t in vols if t == vals.get("--state-dir")), None)
            check(src in (compose.get("volumes") or {}),
                  f"compose {name}: a named volume is mounted at --state-dir", f"{vals.get('--state-dir')}")
        if "--coordinator" in vals:
            host = host_of(vals["--coordinator"])
            check("--listen" in vals_of.get(host, {}),
                  f"compose {name}: --coordinator names the saturnd service", host)
            note_port(f"compose {name} --coordinator", port_of(vals["--coordinator"]))
        if binary == "saturn-worker":
            check("container_name" not in svc and not svc.get("ports"),
                  f"compose {name}: scalable (no container_name, no published port)")
            thr = vals.get("--threads")
            check(thr is not None and float(thr) == float(lim.get("cpus", -1)),
                  f"compose {name}: --threads equals the CPU limit",
                  f"--threads {thr}, cpus {lim.get('cpus')}")
    check(worker_secret[0] is not None and worker_secret[0] == worker_secret[1],
          "compose: the workers' --token-file is saturnd's --worker-token-file secret",
          str(worker_secret))

# ---- Kubernetes ---------------------------------------------------------------

docs = {}  # file -> [doc]
for fn in sorted(os.listdir(K8S)) if os.path.isdir(K8S) else []:
    if not fn.endswith((".yaml", ".yml")):
        continue
    try:
        docs[fn] = load_yaml_all(os.path.join(K8S, fn))
        check(all(isinstance(d, dict) for d in docs[fn]) and docs[fn], f"k8s/{fn}: parses as YAML")
    except yaml.YAMLError as e:
        check(False, f"k8s/{fn}: parses as YAML", str(e).replace("\n", " "))
check(bool(docs), "deploy/k8s has manifests")

kust = docs.pop("kustomization.yaml", [None])[0]
objs = []
for fn, ds in docs.items():
    for d in ds:
        ok = all(isinstance(d.get(k), str) and d.get(k) for k in ("apiVersion", "kind")) \
            and isinstance(dig(d, "metadata", "name"), str)
        check(ok, f"k8s/{fn}: {d.get('kind')} {dig(d, 'metadata', 'name')} "
              "has apiVersion, kind, metadata.name")
        objs.append((fn, d))
if kust is not None:
    check(kust.get("kind") == "Kustomization", "k8s/kustomization.yaml is a Kustomization")
    res = kust.get("resources") or []
    check(all(os.path.isfile(os.path.join(K8S, r)) for r in res), "kustomization: every resource exists",
          str(res))
    want = {fn for fn in docs if fn != "secret.yaml"}
    check(set(res) == want, "kustomization: lists every manifest except the secret template",
          f"listed {sorted(res)}, manifests {sorted(want)}")
else:
    check(False, "k8s/kustomization.yaml exists")

API = {"StatefulSet": "apps/v1", "Deployment": "apps/v1", "Service": "v1", "Secret": "v1"}
by_kind = {}
for fn, d in objs:
    by_kind.setdefault(d.get("kind"), []).append(d)
    if d.get("kind") in API:
        check(d.get("apiVersion") == API[d["kind"]], f"k8s: {d['kind']} uses apiVersion {API[d['kind']]}")


def pod_containers(w):
    return dig(w, "spec", "template", "spec", "containers") or []


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


services = by_kind.get("Service", [])
secret_objs = {dig(s, "metadata", "name"): s for s in by_kind.get("Secret", [])}
SECRET_KEYS = {"saturn-token": {"token"}, "saturn-viewer-token": {"token"},
               "saturn-worker-token": {"token"}, "saturn-tls": {"tls.crt", "tls.key", "ca.crt"}}
check(set(secret_objs) == set(SECRET_KEYS),
      "k8s: the Secrets saturn-token, saturn-viewer-token, saturn-worker-token and saturn-tls",
      str(list(secret_objs)))
for sname, s in secret_objs.items():
    data = {**(s.get("data") or {}), **(s.get("stringData") or {})}
    want = SECRET_KEYS.get(sname, set())
    check(want <= set(data), f"k8s: Secret {sname} has the keys {', '.join(sorted(want))}",
          f"has {sorted(data)}")


def secret_item(path, mounts, vols):
    """(secretName, key, defaultMode) of the Secret volume file mounted at path, or None."""
    if not path:
        return None
    m = mounts.get(os.path.dirname(path))
    sec = dig(vols.get(m["name"]), "secret") if m else None
    if not sec or sec.get("secretName") not in secret_objs:
        return None
    f = os.path.basename(path)
    items = sec.get("items")
    key = next((i.get("key") for i in items if i.get("path") == f), None) if items else f
    return (sec["secretName"], key, sec.get("defaultMode", 0o644)) if key else None

sts = by_kind.get("StatefulSet", [])
deps = by_kind.get("Deployment", [])
check(len(sts) == 1 and dig(sts[0], "spec", "replicas") == 1,
      "k8s: saturnd is one StatefulSet with replicas 1")
check(len(deps) == 1 and isinstance(dig(deps[0], "spec", "replicas"), int)
      and dig(deps[0], "spec", "replicas") >= 1,
      "k8s: the workers are one Deployment with an integer replicas")
# SIGTERM makes a worker finish its step, leave and hand its rank over: the
# grace period must cover a step and a parked pull (15 s) with room to spare.
check(len(deps) == 1 and
      (dig(deps[0], "spec", "template", "spec", "terminationGracePeriodSeconds") or 30) >= 45,
      "k8s: the worker pods' terminationGracePeriodSeconds (>= 45 s) lets a drained worker "
      "finish its step and hand its rank over",
      str(dig(deps[0], "spec", "template", "spec", "terminationGracePeriodSeconds") if deps else None))

saturnd_pod_labels = {}
coordinators = []
for w in sts + deps:
    kind, wname = w["kind"], dig(w, "metadata", "name")
    tmpl_labels = dig(w, "spec", "template", "metadata", "labels") or {}
    check(labels_match(dig(w, "spec", "selector", "matchLabels"), tmpl_labels),
          f"k8s {kind} {wname}: selector matches the pod labels")
    psc = dig(w, "spec", "template", "spec", "securityContext") or {}
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == IMAGE_UID,
          f"k8s {kind} {wname}: runAsNonRoot, runAsUser = the image's uid {IMAGE_UID}",
          f"{psc.get('runAsUser')}")
    vols = {v["name"]: v for v in dig(w, "spec", "template", "spec", "volumes") or []}
    claims = {dig(c, "metadata", "name"): c for c in dig(w, "spec", "volumeClaimTemplates") or []}
    for c in pod_containers(w):
        where = f"k8s {kind} {wname} container {c.get('name')}"
        env_names = [e["name"] for e in c.get("env") or []]
        vals = check_argv(where, list(c.get("command") or []) + list(c.get("args") or []), env_names) or {}
        binary = os.path.basename((c.get("command") or [""])[0])
        if vals.get("--coordinator"):
            coordinators.append(vals["--coordinator"])
        res = c.get("resources") or {}
        check(all(dig(res, a, r) is not None for a in ("requests", "limits") for r in ("cpu", "memory")),
              f"{where}: resource requests and limits (cpu, memory)")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
        # token and TLS files: Secret volume items where the flags point
        # one Secret per role; a worker pod mounts the worker token only
        token_flags = {"saturnd": {"--token-file": "saturn-token",
                                   "--viewer-token-file": "saturn-viewer-token",
                                   "--worker-token-file": "saturn-worker-token"},
                       "saturn-worker": {"--token-file": "saturn-worker-token"}}.get(binary, {})
        for flag, sname in token_flags.items():
            item = secret_item(vals.get(flag), mounts, vols)
            check((item or ())[:2] == (sname, "token") and item[2] & 0o007 == 0,
                  f"{where}: {flag} is the Secret {sname}'s `token` key mounted at that path "
                  f"(not world-readable)", f"{vals.get(flag)}: {item}")
        if binary == "saturn-worker":
            other = {dig(v, "secret", "secretName") for v in vols.values()} & {
                "saturn-token", "saturn-viewer-token"}
            check(not other, f"{where}: the worker pod mounts no client or viewer token", str(other))
        env_vals = {e["name"]: e.get("value") for e in c.get("env") or []}
        tls_files = {"saturnd": {"--tls-cert": "tls.crt", "--tls-key": "tls.key",
                                 "SATURN_TLS_CA": "ca.crt"},
                     "saturn-worker": {"--tls-ca": "ca.crt"}}.get(binary, {})
        for flag, key in tls_files.items():
            path = env_vals.get(flag) if flag.startswith("SATURN_") else vals.get(flag)
            item = secret_item(path, mounts, vols)
            check(item is not None and item[:2] == ("saturn-tls", key),
                  f"{where}: {flag} is the Secret saturn-tls's `{key}` mounted at that path",
                  f"{path}: {item}")
            if key == "tls.key" and item:
                check(isinstance(item[2], int) and item[2] & 0o007 == 0,
                      f"{where}: the TLS key's volume is not world-readable (defaultMode)",
                      oct(item[2]) if isinstance(item[2], int) else str(item[2]))
        ports = [p.get("containerPort") for p in c.get("ports") or []]
        probes = {p: c.get(p) for p in ("startupProbe", "readinessProbe", "livenessProbe") if c.get(p)}
        if binary == "saturnd":
            saturnd_pod_labels = tmpl_labels
            lp = port_of(vals.get("--listen", ""))
            note_port(f"{where} --listen", lp)
            check(host_of(vals.get("--listen", "")) in ("0.0.0.0", "[::]"),
                  f"{where}: listens on all interfaces", str(vals.get("--listen")))
            if "--http" in vals:
                note_http(where, vals["--http"])
            for p in ports:
                note_exposed(f"{where} containerPort", p)
            check("readinessProbe" in probes and "livenessProbe" in probes,
                  f"{where}: has readiness and liveness probes")
            sd = vals.get("--state-dir")
            # the volume itself, or a directory saturnd makes 0700 in it
            m = mounts.get(sd) or mounts.get(os.path.dirname(sd or ""))
            check(kind == "StatefulSet" and m is not None and m["name"] in claims,
                  f"{where}: --state-dir is a volumeClaimTemplate mount", str(sd))
            for cn, cl in claims.items():
                check(dig(cl, "spec", "accessModes") and dig(cl, "spec", "resources", "requests", "storage"),
                      f"k8s {kind} {wname}: volumeClaimTemplate {cn} has accessModes and a storage request")
        if binary == "saturn-worker":
            thr = vals.get("--threads")
            ref = re.fullmatch(r"\$\((\w+)\)", str(thr))
            src = next((e for e in c.get("env") or [] if ref and e["name"] == ref.group(1)), None)
            check(thr is not None and (src is None or dig(src, "valueFrom", "resourceFieldRef",
                                                          "resource") == "limits.cpu"),
                  f"{where}: --threads is given (from limits.cpu)", str(thr))
        # under TLS, probes are HTTPS GETs of /healthz on the --http port;
        # otherwise gRPC probes that must hit this container's own gRPC server
        tls_on = binary == "saturnd" and "--tls-cert" in vals
        for pn, p in probes.items():
            if tls_on:
                h = p.get("httpGet") or {}
                check(h.get("scheme") == "HTTPS" and h.get("path") == "/healthz"
                      and h.get("port") == port_of(vals.get("--http", "")),
                      f"{where}: {pn} is an HTTPS GET of /healthz on the --http port (TLS on)",
                      str(p))
                continue
            g = p.get("grpc")
            if g is None:
                check(binary != "saturnd", f"{where}: {pn} is a gRPC probe", str(list(p)))
                continue
            port = g.get("port")
            check(isinstance(port, int) and port == port_of(vals.get("--listen", "")),
                  f"{where}: {pn} is a gRPC probe on the --listen port (a number)", f"port {port!r}")
            note_port(f"{where} {pn}", port)
            check(g.get("service", "") in ("", "saturn.v1.Client", "saturn.v1.Worker",
                                           "saturn.v1.ParameterServer"),
                  f"{where}: {pn} asks about a service saturnd reports", g.get("service"))

check(bool(saturnd_pod_labels), "k8s: a container runs saturnd")
headless = [s for s in services if dig(s, "spec", "clusterIP") == "None"]
for w in sts:
    sn = dig(w, "spec", "serviceName")
    check(any(dig(s, "metadata", "name") == sn for s in headless),
          f"k8s StatefulSet {dig(w, 'metadata', 'name')}: serviceName is a headless Service", str(sn))
svc_ports = {}
for s in services:
    sname = dig(s, "metadata", "name")
    check(labels_match(dig(s, "spec", "selector"), saturnd_pod_labels),
          f"k8s Service {sname}: selects the saturnd pod")
    for p in dig(s, "spec", "ports") or []:
        tp = p.get("targetPort", p.get("port"))
        if isinstance(tp, str):  # a named port: resolve it
            tp = next((q.get("containerPort") for w in sts for c in pod_containers(w)
                       for q in c.get("ports") or [] if q.get("name") == tp), tp)
        note_exposed(f"k8s Service {sname} port", p.get("port"), tp)
        note_exposed(f"k8s Service {sname} targetPort", tp)
        svc_ports.setdefault(sname, []).append(p.get("port"))
for co in coordinators:
    h = host_of(co).split(".")[0]
    check(port_of(co) in svc_ports.get(h, []),
          f"k8s workers: --coordinator {co} is a Service of saturnd and its port", str(svc_ports))
    note_port("k8s worker --coordinator", port_of(co))
check(bool(coordinators), "k8s: the workers name their coordinator")
if kust is not None:
    names = {i.get("name") for i in kust.get("images") or []}
    used = {c.get("image", "").rsplit(":", 1)[0] for w in sts + deps for c in pod_containers(w)}
    check(not names or used <= names, "kustomization: images covers the images the pods use",
          f"{sorted(used)} vs {sorted(names)}")

# ---- one port everywhere -------------------------------------------------------

http_set = {p for _, p in HTTP_PORTS}
exposed_http = [(w, p) for w, p, key in EXPOSED if key in http_set]
PORTS += [(w, p) for w, p, key in EXPOSED if key not in http_set]
if HTTP_PORTS:
    hp = HTTP_PORTS + exposed_http
    dh = sorted({p for _, p in hp}, key=str)
    check(len(dh) == 1, f"one HTTP (--http) port everywhere ({dh[0] if len(dh) == 1 else dh}, "
          f"{len(hp)} places)", "; ".join(f"{w}={p}" for w, p in hp))
    kinds = {k for k in ("Dockerfile EXPOSE", "compose", "containerPort", "Service")
             if any(k in w for w, _ in exposed_http)}
    want = {"compose", "containerPort", "Service"}
    if any(w.startswith("Dockerfile") for w, _ in HTTP_PORTS):
        want.add("Dockerfile EXPOSE")
    check(want <= kinds, "the --http port is exposed wherever saturnd runs with --http "
          "(Dockerfile EXPOSE, compose ports, containerPort, a Service)",
          "missing: " + ", ".join(sorted(want - kinds)))

distinct = sorted({p for _, p in PORTS}, key=str)
check(len(PORTS) >= 8 and len(distinct) == 1,
      f"one gRPC port everywhere ({distinct[0] if len(distinct) == 1 else distinct}, {len(PORTS)} places)",
      "; ".join(f"{w}={p}" for w, p in PORTS))

print(f"# {n_checks} checks, {n_failed} failed")
sys.exit(1 if n_failed else 0)
