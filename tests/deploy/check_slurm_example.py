#!/usr/bin/env python3
"""Checks that the files of deploy/slurm agree with each other (deploy/slurm/README.md).

    check_slurm_example.py DIR   (DIR holds slurm.conf, gres.conf, mufld.service, worker-job.sh)

Prints FILE:LINE: error: message for each problem and exits 1 when there is any, 0 when none,
2 for bad usage. It starts no Slurm daemon: it reads the files.

- slurm.conf: every line is Key=Value words; GresTypes has gpu; SelectType is
  select/cons_tres; every node with GPUs names their type (Gres=gpu:TYPE:N).
- gres.conf: for each node and GPU type of slurm.conf, its Name=gpu lines of that Type list N
  device files (File=/dev/nvidia[0-3] is 4) or Count=N.
- mufld.service: ExecStart runs mufld with --cluster slurm; --slurm-partition names a
  partition of slurm.conf that holds a node with GPUs; an https --worker-url comes with
  --tls-cert and --tls-key; --listen on every address comes with --worker-url (mufld refuses
  to start otherwise).
- worker-job.sh is the batch script mufld writes for the unit's --worker-command
  (ClusterBackend::job_script: "exec" and each word of the command in single quotes).
- With systemd-analyze on PATH: `systemd-analyze verify` of the unit (ExecStart's program
  swapped for /bin/true, which exists) must pass and name no unknown key or section.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile


def expand(hostlist):
    """'gpu[01-02],n7' -> ['gpu01', 'gpu02', 'n7'] (one bracket per name, ranges and commas in it)."""
    out = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,]*", hostlist):
        m = re.match(r"^(.*)\[([^\]]*)\](.*)$", part)
        if not m:
            out.append(part)
            continue
        head, ranges, tail = m.groups()
        for r in ranges.split(","):
            lo, _, hi = r.partition("-")
            hi = hi or lo
            for i in range(int(lo), int(hi) + 1):
                out.append(f"{head}{str(i).zfill(len(lo))}{tail}")
    return out


# scheduler/energy/power_profile.cpp's profiles (mufld --help lists them too).
KNOWN_PROFILES = ["A40", "P100", "RTX6000", "V100", "V100M16", "V100M32", "G2", "G3", "T4", "A10", "cpu"]


class Check:
    def __init__(self, folder):
        self.folder = folder
        self.errors = []

    def path(self, name):
        return os.path.join(self.folder, name)

    def error(self, name, line, message):
        self.errors.append(f"{self.path(name)}:{line}: error: {message}")

    def conf_lines(self, name):
        """(line number, {key lower-case: value}, text) of each line with settings; bad words are errors."""
        out = []
        with open(self.path(name), encoding="utf-8") as f:
            for n, raw in enumerate(f, 1):
                text = raw.split("#", 1)[0].strip()
                if not text:
                    continue
                words = {}
                for word in text.split():
                    key, eq, value = word.partition("=")
                    if not eq or not key:
                        self.error(name, n, f"'{word}' is not Key=Value")
                        continue
                    words[key.lower()] = value
                out.append((n, words, text))
        return out

    def run(self):
        for name in ("slurm.conf", "gres.conf", "mufld.service", "worker-job.sh"):
            if not os.path.isfile(self.path(name)):
                self.error(name, 0, "missing")
        if self.errors:
            return
        slurm = self.conf_lines("slurm.conf")
        settings = {k: (n, v) for n, words, _ in slurm for k, v in words.items()
                    if k not in ("nodename", "partitionname") and not ("nodename" in words or "partitionname" in words)}
        n, gres_types = settings.get("grestypes", (1, ""))
        if "gpu" not in gres_types.split(","):
            self.error("slurm.conf", n, "GresTypes must list gpu")
        n, select = settings.get("selecttype", (1, ""))
        if select != "select/cons_tres":
            self.error("slurm.conf", n, f"SelectType must be select/cons_tres (one GPU per job), is '{select}'")

        # Nodes and their GPUs: node -> {type: count}.
        gpus, node_line = {}, {}
        for n, words, _ in slurm:
            if "nodename" not in words:
                continue
            for node in expand(words["nodename"]):
                node_line[node] = n
                gpus[node] = {}
                for entry in words.get("gres", "").split(","):
                    parts = entry.split(":")
                    if parts[0] != "gpu":
                        continue
                    if len(parts) != 3 or not parts[2].isdigit():
                        self.error("slurm.conf", n, f"Gres entry '{entry}' is not gpu:TYPE:N (mufld submits --gres=gpu:TYPE:1)")
                        continue
                    gpus[node][parts[1]] = gpus[node].get(parts[1], 0) + int(parts[2])

        # gres.conf: node -> {type: devices}.
        listed = {}
        for n, words, _ in self.conf_lines("gres.conf"):
            if words.get("name") != "gpu":
                continue
            nodes = expand(words["nodename"]) if "nodename" in words else list(gpus)
            count = len(expand(words["file"])) if "file" in words else int(words.get("count", "1"))
            for node in nodes:
                per = listed.setdefault(node, {})
                per[words.get("type", "")] = per.get(words.get("type", ""), 0) + count
        wrong = {}  # (slurm.conf line, type, count, devices listed) -> nodes
        for node, types in gpus.items():
            for gpu_type, count in types.items():
                have = listed.get(node, {}).get(gpu_type, 0)
                if have != count:
                    wrong.setdefault((node_line[node], gpu_type, count, have), []).append(node)
        for (line, gpu_type, count, have), nodes in wrong.items():
            self.error("slurm.conf", line, f"Gres=gpu:{gpu_type}:{count} but gres.conf lists {have} gpu device(s) "
                       f"of Type={gpu_type} for {', '.join(nodes)}")

        partitions = {}
        for n, words, _ in slurm:
            if "partitionname" in words:
                nodes = words.get("nodes", "")
                partitions[words["partitionname"]] = list(gpus) if nodes.upper() == "ALL" else expand(nodes)

        # mufld.service's ExecStart.
        exec_line, args = 0, None
        with open(self.path("mufld.service"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        for i, raw in enumerate(lines):
            if raw.startswith("ExecStart="):
                exec_line, text, j = i + 1, raw[len("ExecStart="):], i
                while text.endswith("\\"):
                    j += 1
                    text = text[:-1] + " " + lines[j].strip()
                args = shlex.split(text.replace("%%", "%"))
        if not args:
            self.error("mufld.service", 1, "no ExecStart")
            return
        flags = {}
        k = 1
        while k < len(args):
            flag, eq, value = args[k].partition("=")
            if not eq and k + 1 < len(args) and not args[k + 1].startswith("--"):
                value, k = args[k + 1], k + 1
            flags.setdefault(flag, []).append(value)
            k += 1
        if flags.get("--cluster") != ["slurm"]:
            self.error("mufld.service", exec_line, "ExecStart must run mufld with --cluster slurm")
        partition = (flags.get("--slurm-partition") or [""])[-1]
        if partition:
            if partition not in partitions:
                self.error("mufld.service", exec_line,
                           f"--slurm-partition {partition}: slurm.conf has no PartitionName={partition}")
            elif not any(gpus.get(node) for node in partitions[partition]):
                self.error("mufld.service", exec_line, f"partition {partition} holds no node with GPUs")
        url = (flags.get("--worker-url") or [""])[-1]
        if url.startswith("https://") and not (flags.get("--tls-cert") and flags.get("--tls-key")):
            self.error("mufld.service", exec_line, "an https --worker-url needs mufld to serve TLS (--tls-cert, --tls-key)")
        listen = (flags.get("--listen") or ["127.0.0.1:8080"])[-1]
        if listen.rsplit(":", 1)[0] in ("0.0.0.0", "[::]", "::", "") and not url:
            self.error("mufld.service", exec_line, "--listen on every address needs --worker-url")

        command = (flags.get("--worker-command") or ["mufl-worker"])[-1].split()
        # mufld adds the power profile named like the GRES type (cluster_devices.h:
        # power_profile_of), else --gpu-power-profile; the example's nodes are all one type.
        fallback = (flags.get("--gpu-power-profile") or ["V100"])[-1]
        types = sorted({w.get("type", "") for _, w, _ in self.conf_lines("gres.conf") if w.get("name") == "gpu"})
        profile = next((p for p in KNOWN_PROFILES if types and p.lower() == types[0].lower()), fallback)
        want = "#!/bin/sh\n# mufld's worker job (docs/cluster.md)\nexec" + "".join(
            " '" + word.replace("'", "'\\''") + "'" for word in command + ["--power-profile", profile]) + "\n"
        with open(self.path("worker-job.sh"), encoding="utf-8") as f:
            have = f.read()
        if have != want:
            self.error("worker-job.sh", 1, "is not the script mufld writes for the unit's --worker-command: "
                       + repr(want))

        self.systemd_verify(lines)

    def systemd_verify(self, lines):
        tool = shutil.which("systemd-analyze")
        if not tool:
            print("note: systemd-analyze not found: mufld.service not verified by systemd")
            return
        with tempfile.TemporaryDirectory() as tmp:
            unit = os.path.join(tmp, "mufld.service")
            with open(unit, "w", encoding="utf-8") as f:
                f.write("\n".join(re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", line) for line in lines))
            r = subprocess.run([tool, "verify", "--man=no", unit], capture_output=True, text=True, timeout=60)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or re.search(r"Unknown (key|section)", out):
            for line in out.splitlines() or ["(no output)"]:
                self.error("mufld.service", 1, f"systemd-analyze verify: {line.replace(tmp + '/', '')}")
        else:
            print("systemd-analyze verify mufld.service: OK")


def main(argv):
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print(__doc__.strip())
        return 2
    check = Check(argv[0])
    check.run()
    for line in check.errors:
        print(line)
    if check.errors:
        print(f"{len(check.errors)} problem(s)")
        return 1
    print(f"OK: {argv[0]}: slurm.conf, gres.conf, mufld.service and worker-job.sh agree")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
