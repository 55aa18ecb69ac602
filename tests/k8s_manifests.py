#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Reads deploy/kubernetes/ as kubectl would and prints, as one JSON
object, what test_containers runs and checks of it: the DaemonSet reader's
arguments, environment and mounts (with the hostPath or ConfigMap key each
comes from), the ConfigMap's reader.conf, and whether the workload and
sidecar examples share the segment directory the way the guide says.
Fails (exit 1, a line naming the file) on a manifest that does not parse
or lacks what it must have."""
import glob
import json
import os
import sys

import yaml

here = sys.argv[1]
docs = {}
for path in sorted(glob.glob(os.path.join(here, "*.yaml"))):
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc and doc.get("kind") == "Kustomization":
                for r in doc["resources"]:
                    if not os.path.exists(os.path.join(here, r)):
                        sys.exit(f"{path}: names {r}, which is not there")
                continue
            if not doc or "kind" not in doc or "metadata" not in doc:
                sys.exit(f"{path}: a document without kind and metadata")
            docs.setdefault((doc["kind"], doc["metadata"]["name"]), []).append(
                (os.path.basename(path), doc))


def one(kind, name):
    found = docs.get((kind, name))
    if not found:
        sys.exit(f"no {kind} {name} in {here}")
    return found[0][1]


def container(spec, name):
    for c in spec["containers"]:
        if c["name"] == name:
            return c
    sys.exit(f"no container {name}")


ds = one("DaemonSet", "rtm-reader")
pod = ds["spec"]["template"]["spec"]
reader = container(pod, "rtm-reader")
volumes = {v["name"]: v for v in pod["volumes"]}
mounts = []
for m in reader["volumeMounts"]:
    v = volumes[m["name"]]
    mounts.append({
        "path": m["mountPath"],
        "host": v.get("hostPath", {}).get("path"),
        "configmap": v.get("configMap", {}).get("name"),
    })
cm = one("ConfigMap", "rtm-reader")
segments = [m["host"] for m in mounts if m["path"] == "/dev/shm/rtm"]

wl = one("Deployment", "example-app")["spec"]["template"]["spec"]
wl_vols = {v["name"]: v for v in wl["volumes"]}
wl_app = container(wl, "app")
wl_ok = any(m["mountPath"] == "/dev/shm/rtm"
            and wl_vols[m["name"]].get("hostPath", {}).get("path") in segments
            for m in wl_app["volumeMounts"])

sc = one("Pod", "example-app-with-rtm")["spec"]
sc_vols = {v["name"]: v for v in sc["volumes"]}
shared = [set(m["name"] for m in container(sc, n)["volumeMounts"] if m["mountPath"] == "/dev/shm/rtm")
          for n in ("app", "rtm-reader")]
sc_ok = bool(sc.get("shareProcessNamespace")) and any(
    sc_vols[v].get("emptyDir", {}).get("medium") == "Memory" for v in shared[0] & shared[1])

print(json.dumps({
    "args": reader.get("args", []),
    "env": {e["name"]: e.get("value") for e in reader.get("env", []) if "value" in e},
    "mounts": mounts,
    "reader_conf": cm["data"]["reader.conf"],
    "host_network": bool(pod.get("hostNetwork")),
    "host_pid": bool(pod.get("hostPID")),
    "workload_shares_the_node_dir": wl_ok,
    "sidecar_shares_a_memory_dir": sc_ok,
    "service_scrape": one("Service", "rtm-reader")["metadata"]["annotations"].get("prometheus.io/scrape"),
}))
