#!/usr/bin/env python3
"""Offline check of Kubernetes manifests (deploy/kubernetes/README.md, "Checking the manifests").

    check_k8s_manifests.py PATH...   (files, or folders searched recursively for *.yaml / *.yml)

Prints FILE:LINE: error: KIND/NAME: FIELD: message for each problem and exits 1 when there is
any, 0 when none, 2 for bad usage, 77 (skipped) when PyYAML is missing. All documents are
checked together: a Service's selector and a volume's claimName may point into another file.

Why not kubectl: `kubectl apply --dry-run=client` still asks an API server for discovery and
OpenAPI, and no Kubernetes OpenAPI schema is kept offline here. So this checks what the API
server would reject most often, for the kinds mufl ships: unknown fields (from short lists per
object, after the Kubernetes API reference), types, names, labels, selectors, ports, volumes.
It knows no other kind and says so rather than pass it unchecked.
"""
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("SKIP: PyYAML not found (Debian package python3-yaml): the Kubernetes manifests not checked")
    sys.exit(77)

# --- YAML with line numbers -----------------------------------------------------------------


class Map(dict):
    """A mapping that remembers its line and the line of each key."""
    line = 0
    key_lines = {}


class Seq(list):
    line = 0


class Loader(yaml.SafeLoader):
    pass


def _map(loader, node):
    m = Map()
    m.line = node.start_mark.line + 1
    m.key_lines = {}
    m.duplicates = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in m:
            m.duplicates.append((key, key_node.start_mark.line + 1))
        m[key] = loader.construct_object(value_node, deep=True)
        m.key_lines[key] = key_node.start_mark.line + 1
    return m


def _seq(loader, node):
    s = Seq(loader.construct_object(n, deep=True) for n in node.value)
    s.line = node.start_mark.line + 1
    return s


Loader.add_constructor("tag:yaml.org,2002:map", _map)
Loader.add_constructor("tag:yaml.org,2002:seq", _seq)

# --- What the checker knows -------------------------------------------------------------------

KINDS = {"Deployment": "apps/v1", "Service": "v1", "Job": "batch/v1", "PersistentVolumeClaim": "v1"}

FIELDS = {
    "top": {"apiVersion", "kind", "metadata", "spec", "status"},
    "ObjectMeta": {"name", "generateName", "namespace", "labels", "annotations", "ownerReferences",
                   "finalizers", "uid", "resourceVersion", "generation", "creationTimestamp",
                   "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"},
    "DeploymentSpec": {"replicas", "selector", "template", "strategy", "minReadySeconds",
                       "revisionHistoryLimit", "paused", "progressDeadlineSeconds"},
    "DeploymentStrategy": {"type", "rollingUpdate"},
    "LabelSelector": {"matchLabels", "matchExpressions"},
    "PodTemplateSpec": {"metadata", "spec"},
    "PodSpec": {"volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
                "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
                "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
                "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext",
                "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
                "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates",
                "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
                "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates",
                "resourceClaims", "resources"},
    "Container": {"name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
                  "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe",
                  "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
                  "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty"},
    "ContainerPort": {"name", "hostPort", "containerPort", "protocol", "hostIP"},
    "EnvVar": {"name", "value", "valueFrom"},
    "EnvVarSource": {"fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"},
    "SecretKeySelector": {"name", "key", "optional"},
    "Probe": {"exec", "httpGet", "tcpSocket", "grpc", "initialDelaySeconds", "timeoutSeconds", "periodSeconds",
              "successThreshold", "failureThreshold", "terminationGracePeriodSeconds"},
    "HTTPGetAction": {"path", "port", "host", "scheme", "httpHeaders"},
    "ResourceRequirements": {"limits", "requests", "claims"},
    "VolumeMount": {"name", "readOnly", "recursiveReadOnly", "mountPath", "subPath", "mountPropagation",
                    "subPathExpr"},
    "PersistentVolumeClaimVolumeSource": {"claimName", "readOnly"},
    "PodSecurityContext": {"seLinuxOptions", "windowsOptions", "runAsUser", "runAsGroup", "runAsNonRoot",
                           "supplementalGroups", "supplementalGroupsPolicy", "fsGroup", "sysctls",
                           "fsGroupChangePolicy", "seccompProfile", "appArmorProfile", "seLinuxChangePolicy"},
    "SecurityContext": {"capabilities", "privileged", "seLinuxOptions", "windowsOptions", "runAsUser", "runAsGroup",
                        "runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation", "procMount",
                        "seccompProfile", "appArmorProfile"},
    "JobSpec": {"parallelism", "completions", "activeDeadlineSeconds", "podFailurePolicy", "successPolicy",
                "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes", "selector", "manualSelector",
                "template", "ttlSecondsAfterFinished", "completionMode", "suspend", "podReplacementPolicy",
                "managedBy"},
    "ServiceSpec": {"ports", "selector", "clusterIP", "clusterIPs", "type", "externalIPs", "sessionAffinity",
                    "loadBalancerIP", "loadBalancerSourceRanges", "externalName", "externalTrafficPolicy",
                    "healthCheckNodePort", "publishNotReadyAddresses", "sessionAffinityConfig", "ipFamilies",
                    "ipFamilyPolicy", "allocateLoadBalancerNodePorts", "loadBalancerClass",
                    "internalTrafficPolicy", "trafficDistribution"},
    "ServicePort": {"name", "protocol", "appProtocol", "port", "targetPort", "nodePort"},
    "PersistentVolumeClaimSpec": {"accessModes", "selector", "resources", "volumeName", "storageClassName",
                                  "volumeMode", "dataSource", "dataSourceRef", "volumeAttributesClassName"},
    "VolumeResourceRequirements": {"limits", "requests"},
}

ACCESS_MODES = {"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label, up to 63
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")       # RFC 1035 label (Service names)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


class Checker:
    def __init__(self):
        self.errors = []
        self.docs = []  # (file, doc)

    def error(self, file, line, what, field, message):
        self.errors.append(f"{file}:{line}: error: {what}: {field}: {message}")

    # -- loading --
    def load(self, path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            docs = list(yaml.load_all(text, Loader=Loader))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark else 1
            reason = getattr(e, "problem", None) or str(e).splitlines()[0]
            self.error(path, line, "YAML", "(document)", f"does not parse: {reason}")
            return
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, Map):
                self.error(path, 1, "YAML", "(document)", "is not a mapping")
                continue
            self.docs.append((path, doc))

    # -- helpers for one document --
    def run(self):
        for file, doc in self.docs:
            self.check_duplicates(file, doc)
        for file, doc in self.docs:
            Doc(self, file, doc).check()

    def check_duplicates(self, file, node, what="YAML"):
        if isinstance(node, Map):
            for key, line in getattr(node, "duplicates", []):
                self.error(file, line, what, key, "duplicate key (Kubernetes rejects it)")
            for v in node.values():
                self.check_duplicates(file, v, what)
        elif isinstance(node, list):
            for v in node:
                self.check_duplicates(file, v, what)

    def pod_templates(self):
        """(labels, pod spec) of every Deployment and Job."""
        out = []
        for _, doc in self.docs:
            if doc.get("kind") in ("Deployment", "Job"):
                tpl = (doc.get("spec") or {}).get("template") or {}
                labels = (tpl.get("metadata") or {}).get("labels") or {}
                spec = tpl.get("spec") or {}
                if isinstance(labels, dict) and isinstance(spec, dict):
                    out.append((labels, spec))
        return out

    def claims(self):
        return {((doc.get("metadata") or {}).get("name")): doc for _, doc in self.docs
                if doc.get("kind") == "PersistentVolumeClaim" and isinstance(doc.get("metadata"), dict)}


def quantity(value):
    """The number a Kubernetes quantity stands for, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    text = str(value)
    m = QUANTITY.match(text)
    if not m:
        return None
    suffix = m.group(3) or ""
    if suffix[:1] in ("e", "E") and suffix not in SUFFIX:
        return float(text)
    return float(text[: len(text) - len(suffix)]) * SUFFIX[suffix]


class Doc:
    def __init__(self, checker, file, doc):
        self.c, self.file, self.doc = checker, file, doc
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        self.what = f"{doc.get('kind', '?')}/{name if name else '?'}"

    def err(self, node, key, field, message):
        line = node.key_lines.get(key, node.line) if isinstance(node, Map) and key is not None else getattr(node, "line", 1)
        self.c.error(self.file, line, self.what, field, message)

    def mapping(self, parent, key, field, required=False):
        """parent[key] when it is a mapping; an error when it is something else (or missing and required)."""
        value = parent.get(key) if isinstance(parent, dict) else None
        if value is None:
            if required:
                self.err(parent, None, field, "is required")
            return None
        if not isinstance(value, dict):
            self.err(parent, key, field, "must be a mapping")
            return None
        return value

    def fields(self, node, kind, field):
        if not isinstance(node, dict):
            return
        for key in node:
            if key not in FIELDS[kind]:
                self.err(node, key, f"{field}.{key}" if field else key, f"is not a field of {kind}")

    def typed(self, node, key, field, types, what):
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            self.err(node, key, field, f"must be {what}")
            return None
        return value

    def integer(self, node, key, field, low=None, high=None):
        value = self.typed(node, key, field, (int,), "an integer")
        if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
            self.err(node, key, field, f"must be from {low} to {high}" if high is not None else f"must be {low} or more")
        return value

    def labels(self, node, field):
        if node is None:
            return
        if not isinstance(node, dict):
            self.err(node, None, field, "must be a mapping")
            return
        for k, v in node.items():
            if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
                self.err(node, k, f"{field}.{k}", "must be a label value (a string of up to 63 letters, digits, '-', '_', '.')")

    # -- the document --
    def check(self):
        d = self.doc
        kind, api = d.get("kind"), d.get("apiVersion")
        if not isinstance(kind, str) or not kind:
            self.err(d, None, "kind", "is required")
        if not isinstance(api, str) or not api:
            self.err(d, None, "apiVersion", "is required")
        meta = self.mapping(d, "metadata", "metadata", required=True)
        name = meta.get("name") if meta else None
        if meta is not None:
            self.fields(meta, "ObjectMeta", "metadata")
            if not isinstance(name, str) or not name:
                self.err(meta, None, "metadata.name", "is required")
            else:
                pattern, rule = (DNS_1035, "an RFC 1035 label") if kind == "Service" else (DNS_LABEL, "an RFC 1123 label")
                if len(name) > 63 or not pattern.match(name):
                    self.err(meta, "name", "metadata.name", f"must be {rule} (lower-case letters, digits, '-'; up to 63)")
            self.labels(meta.get("labels"), "metadata.labels")
        if not isinstance(kind, str) or not kind:
            return
        if kind not in KINDS:
            self.err(d, "kind", "kind", f"{kind} is not a kind this checker knows ({', '.join(sorted(KINDS))})")
            return
        self.fields(d, "top", "")
        if isinstance(api, str) and api and api != KINDS[kind]:
            self.err(d, "apiVersion", "apiVersion", f"must be {KINDS[kind]} for {kind}")
        spec = self.mapping(d, "spec", "spec", required=True)
        if spec is None:
            return
        getattr(self, "check_" + kind)(spec)

    def check_Deployment(self, spec):
        self.fields(spec, "DeploymentSpec", "spec")
        replicas = self.integer(spec, "replicas", "spec.replicas", 0)
        strategy = self.mapping(spec, "strategy", "spec.strategy")
        stype = "RollingUpdate"
        if strategy is not None:
            self.fields(strategy, "DeploymentStrategy", "spec.strategy")
            stype = strategy.get("type", "RollingUpdate")
            if stype not in ("Recreate", "RollingUpdate"):
                self.err(strategy, "type", "spec.strategy.type", "must be Recreate or RollingUpdate")
            elif stype == "Recreate" and "rollingUpdate" in strategy:
                self.err(strategy, "rollingUpdate", "spec.strategy.rollingUpdate", "may not be set with type Recreate")
        selector = self.mapping(spec, "selector", "spec.selector", required=True)
        match = None
        if selector is not None:
            self.fields(selector, "LabelSelector", "spec.selector")
            match = self.mapping(selector, "matchLabels", "spec.selector.matchLabels")
            if not match and not selector.get("matchExpressions"):
                self.err(selector, None, "spec.selector", "must have matchLabels (or matchExpressions)")
            self.labels(match, "spec.selector.matchLabels")
        tpl, pod = self.template(spec, "Always")
        if tpl is not None and match:
            labels = (tpl.get("metadata") or {}).get("labels") or {}
            for k, v in match.items():
                if labels.get(k) != v:
                    self.err(match, k, f"spec.selector.matchLabels.{k}",
                             f"{v!r} is not on spec.template.metadata.labels (the selector must select the template)")
        # One ReadWriteOnce claim, two mufld: a rolling update or a second replica.
        if pod is not None:
            claims = self.c.claims()
            for vol in pod.get("volumes") or []:
                pvc = vol.get("persistentVolumeClaim") if isinstance(vol, dict) else None
                claim = claims.get(pvc.get("claimName")) if isinstance(pvc, dict) else None
                modes = ((claim or {}).get("spec") or {}).get("accessModes") or []
                if claim is not None and "ReadWriteOnce" in modes:
                    if (replicas if replicas is not None else 1) > 1:
                        self.err(spec, "replicas", "spec.replicas",
                                 f"must be 1: the pods share the ReadWriteOnce claim {pvc.get('claimName')}")
                    if stype != "Recreate":
                        self.err(spec if strategy is None else strategy, "strategy" if strategy is None else "type",
                                 "spec.strategy.type",
                                 f"must be Recreate: a rolling update runs two pods on the ReadWriteOnce claim "
                                 f"{pvc.get('claimName')}")

    def check_Job(self, spec):
        self.fields(spec, "JobSpec", "spec")
        self.integer(spec, "backoffLimit", "spec.backoffLimit", 0)
        self.integer(spec, "ttlSecondsAfterFinished", "spec.ttlSecondsAfterFinished", 0)
        self.integer(spec, "activeDeadlineSeconds", "spec.activeDeadlineSeconds", 1)
        if "selector" in spec and spec.get("manualSelector") is not True:
            self.err(spec, "selector", "spec.selector", "is set by Kubernetes unless manualSelector is true")
        self.template(spec, ("Never", "OnFailure"))

    def check_Service(self, spec):
        self.fields(spec, "ServiceSpec", "spec")
        if spec.get("type", "ClusterIP") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            self.err(spec, "type", "spec.type", "must be ClusterIP, NodePort, LoadBalancer or ExternalName")
        selector = self.mapping(spec, "selector", "spec.selector", required=True)
        self.labels(selector, "spec.selector")
        pods = [p for labels, p in self.c.pod_templates()
                if selector and all(labels.get(k) == v for k, v in selector.items())]
        if selector and not pods:
            self.err(spec, "selector", "spec.selector", "selects the pods of no Deployment or Job in these manifests")
        ports = spec.get("ports")
        if not isinstance(ports, list) or not ports:
            self.err(spec, "ports" if "ports" in spec else None, "spec.ports", "must be a non-empty list")
            return
        for i, port in enumerate(ports):
            f = f"spec.ports[{i}]"
            if not isinstance(port, dict):
                self.err(ports, None, f, "must be a mapping")
                continue
            self.fields(port, "ServicePort", f)
            if "port" not in port:
                self.err(port, None, f + ".port", "is required")
            self.integer(port, "port", f + ".port", 1, 65535)
            if len(ports) > 1 and not port.get("name"):
                self.err(port, None, f + ".name", "is required when there are several ports")
            target = port.get("targetPort", port.get("port"))
            if pods and target is not None and not any(self.has_port(p, target) for p in pods):
                self.err(port, "targetPort" if "targetPort" in port else "port", f + ".targetPort",
                         f"{target!r} is no port of the selected pods' containers")

    def check_PersistentVolumeClaim(self, spec):
        self.fields(spec, "PersistentVolumeClaimSpec", "spec")
        modes = spec.get("accessModes")
        if not isinstance(modes, list) or not modes:
            self.err(spec, "accessModes" if "accessModes" in spec else None, "spec.accessModes",
                     "must be a non-empty list")
        else:
            for m in modes:
                if m not in ACCESS_MODES:
                    self.err(spec, "accessModes", "spec.accessModes", f"{m!r} is not one of {', '.join(sorted(ACCESS_MODES))}")
        res = self.mapping(spec, "resources", "spec.resources", required=True)
        if res is not None:
            self.fields(res, "VolumeResourceRequirements", "spec.resources")
            req = self.mapping(res, "requests", "spec.resources.requests", required=True)
            if req is not None:
                if "storage" not in req:
                    self.err(req, None, "spec.resources.requests.storage", "is required")
                elif quantity(req["storage"]) is None:
                    self.err(req, "storage", "spec.resources.requests.storage",
                             f"{req['storage']!r} is not a quantity (e.g. 20Gi)")

    # -- pod templates --
    @staticmethod
    def has_port(pod, port):
        for c in (pod.get("containers") or []):
            for p in (c.get("ports") or []) if isinstance(c, dict) else []:
                if isinstance(p, dict) and (p.get("containerPort") == port or (p.get("name") == port and isinstance(port, str))):
                    return True
        return False

    def template(self, spec, restart):
        tpl = self.mapping(spec, "template", "spec.template", required=True)
        if tpl is None:
            return None, None
        self.fields(tpl, "PodTemplateSpec", "spec.template")
        meta = self.mapping(tpl, "metadata", "spec.template.metadata")
        if meta is not None:
            self.fields(meta, "ObjectMeta", "spec.template.metadata")
            self.labels(meta.get("labels"), "spec.template.metadata.labels")
        pod = self.mapping(tpl, "spec", "spec.template.spec", required=True)
        if pod is None:
            return tpl, None
        f = "spec.template.spec"
        self.fields(pod, "PodSpec", f)
        policy = pod.get("restartPolicy")
        if isinstance(restart, tuple):
            if policy not in restart:
                self.err(pod, "restartPolicy" if policy else None, f + ".restartPolicy",
                         f"must be {' or '.join(restart)} in a Job (the default, Always, is refused)")
        elif policy is not None and policy != restart:
            self.err(pod, "restartPolicy", f + ".restartPolicy", f"must be {restart} (or left out)")
        for key in ("terminationGracePeriodSeconds", "activeDeadlineSeconds"):
            self.integer(pod, key, f"{f}.{key}", 0)
        self.typed(pod, "enableServiceLinks", f + ".enableServiceLinks", (bool,), "true or false")
        psc = self.mapping(pod, "securityContext", f + ".securityContext")
        if psc is not None:
            self.fields(psc, "PodSecurityContext", f + ".securityContext")
            for key in ("runAsUser", "runAsGroup", "fsGroup"):
                self.integer(psc, key, f"{f}.securityContext.{key}", 0)
            self.typed(psc, "runAsNonRoot", f + ".securityContext.runAsNonRoot", (bool,), "true or false")
        volumes = {}
        claims = self.c.claims()
        for i, vol in enumerate(pod.get("volumes") or []):
            vf = f"{f}.volumes[{i}]"
            if not isinstance(vol, dict) or not vol.get("name"):
                self.err(vol if isinstance(vol, dict) else pod, None, vf + ".name", "is required")
                continue
            if vol["name"] in volumes:
                self.err(vol, "name", vf + ".name", f"{vol['name']!r} is the name of another volume")
            volumes[vol["name"]] = vol
            if len(vol) != 2:
                self.err(vol, None, vf, "must have a name and exactly one source")
            pvc = self.mapping(vol, "persistentVolumeClaim", vf + ".persistentVolumeClaim")
            if pvc is not None:
                self.fields(pvc, "PersistentVolumeClaimVolumeSource", vf + ".persistentVolumeClaim")
                if pvc.get("claimName") not in claims:
                    self.err(pvc, "claimName", vf + ".persistentVolumeClaim.claimName",
                             f"{pvc.get('claimName')!r} is no PersistentVolumeClaim of these manifests")
        containers = pod.get("containers")
        if not isinstance(containers, list) or not containers:
            self.err(pod, "containers" if "containers" in pod else None, f + ".containers", "must be a non-empty list")
            return tpl, pod
        names = set()
        for i, c in enumerate(containers):
            cf = f"{f}.containers[{i}]"
            if not isinstance(c, dict):
                self.err(containers, None, cf, "must be a mapping")
                continue
            self.container(c, cf, names, volumes)
        return tpl, pod

    def container(self, c, f, names, volumes):
        self.fields(c, "Container", f)
        name = c.get("name")
        if not isinstance(name, str) or not name:
            self.err(c, None, f + ".name", "is required")
        elif not DNS_LABEL.match(name) or len(name) > 63:
            self.err(c, "name", f + ".name", "must be an RFC 1123 label")
        elif name in names:
            self.err(c, "name", f + ".name", f"{name!r} is the name of another container")
        else:
            names.add(name)
        if not isinstance(c.get("image"), str) or not c.get("image"):
            self.err(c, "image" if "image" in c else None, f + ".image", "is required (a string)")
        for key in ("command", "args"):
            value = c.get(key)
            if value is not None and (not isinstance(value, list) or not all(isinstance(a, str) for a in value)):
                self.err(c, key, f"{f}.{key}", "must be a list of strings")
        port_names, port_numbers = set(), set()
        for i, p in enumerate(c.get("ports") or []):
            pf = f"{f}.ports[{i}]"
            if not isinstance(p, dict):
                continue
            self.fields(p, "ContainerPort", pf)
            if "containerPort" not in p:
                self.err(p, None, pf + ".containerPort", "is required")
            number = self.integer(p, "containerPort", pf + ".containerPort", 1, 65535)
            if number is not None:
                port_numbers.add(number)
            pname = p.get("name")
            if pname is not None:
                if not isinstance(pname, str) or len(pname) > 15 or not PORT_NAME.match(pname) or not re.search("[a-z]", pname):
                    self.err(p, "name", pf + ".name", "must be an IANA service name (up to 15 lower-case letters, digits, '-')")
                elif pname in port_names:
                    self.err(p, "name", pf + ".name", f"{pname!r} is the name of another port")
                port_names.add(pname)
        for probe_key in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = self.mapping(c, probe_key, f"{f}.{probe_key}")
            if probe is None:
                continue
            pf = f"{f}.{probe_key}"
            self.fields(probe, "Probe", pf)
            handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if h in probe]
            if len(handlers) != 1:
                self.err(c, probe_key, pf, "must have exactly one of exec, httpGet, tcpSocket, grpc")
            for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
                self.integer(probe, key, f"{pf}.{key}", 0)
            get = self.mapping(probe, "httpGet", pf + ".httpGet")
            if get is None:
                continue
            self.fields(get, "HTTPGetAction", pf + ".httpGet")
            path = get.get("path", "/")
            if not isinstance(path, str) or not path.startswith("/"):
                self.err(get, "path", pf + ".httpGet.path", "must start with '/'")
            port = get.get("port")
            if port is None:
                self.err(get, None, pf + ".httpGet.port", "is required")
            elif isinstance(port, bool) or not isinstance(port, (int, str)):
                self.err(get, "port", pf + ".httpGet.port", "must be a port number or name")
            elif port not in (port_numbers if isinstance(port, int) else port_names):
                self.err(get, "port", pf + ".httpGet.port", f"{port!r} is not among the container's ports")
        for i, e in enumerate(c.get("env") or []):
            ef = f"{f}.env[{i}]"
            if not isinstance(e, dict):
                continue
            self.fields(e, "EnvVar", ef)
            if not isinstance(e.get("name"), str) or not e.get("name"):
                self.err(e, None, ef + ".name", "is required")
            if "value" in e and "valueFrom" in e:
                self.err(e, "valueFrom", ef, "may not have both value and valueFrom")
            if "value" in e and not isinstance(e["value"], str):
                self.err(e, "value", ef + ".value", "must be a string (quote it)")
            source = self.mapping(e, "valueFrom", ef + ".valueFrom")
            if source is not None:
                self.fields(source, "EnvVarSource", ef + ".valueFrom")
                ref = self.mapping(source, "secretKeyRef", ef + ".valueFrom.secretKeyRef")
                if ref is not None:
                    self.fields(ref, "SecretKeySelector", ef + ".valueFrom.secretKeyRef")
                    for key in ("name", "key"):
                        if not isinstance(ref.get(key), str) or not ref.get(key):
                            self.err(ref, None, f"{ef}.valueFrom.secretKeyRef.{key}", "is required")
        res = self.mapping(c, "resources", f + ".resources")
        if res is not None:
            self.fields(res, "ResourceRequirements", f + ".resources")
            amounts = {}
            for part in ("requests", "limits"):
                table = self.mapping(res, part, f"{f}.resources.{part}")
                for key, value in (table or {}).items():
                    rf = f"{f}.resources.{part}.{key}"
                    q = quantity(value)
                    if q is None:
                        self.err(table, key, rf, f"{value!r} is not a quantity")
                    elif "/" in key and q != int(q):
                        self.err(table, key, rf, "must be a whole number (an extended resource)")
                    else:
                        amounts[(part, key)] = (q, table)
            for (part, key), (q, table) in amounts.items():
                if part == "requests" and ("limits", key) in amounts and q > amounts[("limits", key)][0]:
                    self.err(table, key, f"{f}.resources.requests.{key}", "must not exceed the limit")
        sc = self.mapping(c, "securityContext", f + ".securityContext")
        if sc is not None:
            self.fields(sc, "SecurityContext", f + ".securityContext")
            for key in ("runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation", "privileged"):
                self.typed(sc, key, f"{f}.securityContext.{key}", (bool,), "true or false")
            for key in ("runAsUser", "runAsGroup"):
                self.integer(sc, key, f"{f}.securityContext.{key}", 0)
        for i, m in enumerate(c.get("volumeMounts") or []):
            mf = f"{f}.volumeMounts[{i}]"
            if not isinstance(m, dict):
                continue
            self.fields(m, "VolumeMount", mf)
            if m.get("name") not in volumes:
                self.err(m, "name" if "name" in m else None, mf + ".name", f"{m.get('name')!r} is no volume of the pod")
            if not isinstance(m.get("mountPath"), str) or not m["mountPath"].startswith("/"):
                self.err(m, "mountPath" if "mountPath" in m else None, mf + ".mountPath", "must be an absolute path")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 2 if not argv else 0
    checker = Checker()
    files = []
    for path in argv:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith((".yaml", ".yml"))]
        elif os.path.isfile(path):
            files.append(path)
        else:
            print(f"{path}: error: no such file or folder")
            return 2
    if not files:
        print(f"error: no *.yaml or *.yml under {' '.join(argv)}")
        return 2
    for path in files:
        checker.load(path)
    checker.run()
    for line in checker.errors:
        print(line)
    if checker.errors:
        print(f"{len(checker.errors)} problem(s) in {len(files)} file(s)")
        return 1
    kinds = ", ".join(f"{doc['kind']}/{doc['metadata']['name']}" for _, doc in checker.docs)
    print(f"OK: {len(checker.docs)} documents in {len(files)} files ({kinds})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
