"""deploy_lib.py - helpers of deploy_check.py that only parse: YAML that
refuses duplicate keys, a Dockerfile's instructions and exec forms, the
packages of `apt-get install` lines, and HOST:PORT addresses."""
import re
import shlex

import yaml


# ---- YAML that refuses duplicate keys ------------------------------------

class StrictLoader(yaml.SafeLoader):
    pass


def _no_dup_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_dup_mapping)


def load_yaml_all(path):
    with open(path) as f:
        return [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]


def dig(d, *keys, default=None):
    for k in keys:
        if isinstance(d, dict) and k in d:
            d = d[k]
        elif isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        else:
            return default
    return d


# ---- addresses ----------------------------------------------------------------

def port_of(addr):
    m = re.fullmatch(r".*:([0-9]+)", str(addr))
    return int(m.group(1)) if m else None


def host_of(addr):
    return str(addr).rsplit(":", 1)[0]


# ---- Dockerfile ---------------------------------------------------------

def dockerfile_instructions(path):
    """[(lineno, INSTRUCTION, rest)] with continuations joined, comments dropped."""
    out, buf, start = [], "", 0
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if buf and line.lstrip().startswith("#"):
                continue  # comment lines inside a continued instruction
            if not buf:
                start = n
            if line.rstrip().endswith("\\"):
                buf += line.rstrip()[:-1] + " "
                continue
            buf += line
            word, _, rest = buf.strip().partition(" ")
            out.append((start, word.upper(), rest.strip()))
            buf = ""
    return out


def exec_form(rest):
    rest = rest.strip()
    if rest.startswith("["):
        try:
            v = yaml.safe_load(rest)  # a JSON array is YAML
            if isinstance(v, list) and all(isinstance(x, str) for x in v):
                return v
        except yaml.YAMLError:
            pass
        return None
    return shlex.split(rest)


def apt_packages(run_text):
    """Packages named by `apt-get install` in a RUN line."""
    pkgs = []
    for part in re.split(r"&&|;", run_text):
        words = part.split()
        if "apt-get" in words and "install" in words:
            for w in words[words.index("install") + 1:]:
                if not w.startswith("-") and "=" not in w:
                    pkgs.append(w)
    return pkgs
