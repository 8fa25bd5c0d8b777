#!/usr/bin/python3
"""Outpost on a real container runtime: the manifests `outpost bundle install --kubernetes`
renders, run by Debian's podman (`podman kube play`, runc, catatonit) from images and model
artifacts pulled out of docker-registry on loopback.

Usage: /usr/bin/python3 tests/kubernetes/podman_test.py BUILD_DIR   (ctest: kubernetes_podman_test)

The site as the test builds it, in a temporary folder: the signing keys, the runtime image
(`outpost image build`), bundle 1 (the demo's XGBoost pump model and a small ONNX model with
only config.yaml and 1/model.onnx, the runtime image beside them), `bundle push` into a
docker-registry of its own, and `bundle install --kubernetes deploy/k8s`, whose rendered.yaml
is what the pods run. It proves, in order:

  1. the pod becomes ready over HTTPS (the edge's own certificate and bearer tokens, from two
     Secrets); the edge runs as uid 65532;
  2. scoring over the Open Inference Protocol (REST) returns XGBoost's predictions (python3-xgboost
     on the same model file) and the ONNX model's (numpy), to 1e-6;
  3. records (feedback and the pump's insight samples) survive SIGKILL of the edge container
     and a new pod in place of the old one: they live on the volume;
  4. bundle 2 (new versions of both models) switches the served versions; `bundle rollback
     --kubernetes` serves version 1 again;
  5. a model blob altered in the registry is refused by the pod's init container (`outpost
     bundle fetch`, which names the reason in its log) and the verified version keeps serving;
  6. a runtime image layer altered in the registry is refused by podman when it pulls the
     pinned digest, before the running pod is replaced, which keeps serving;
  7. a bundle below the installed version is refused by `bundle install --kubernetes`
     (VERSION_ROLLBACK) and nothing it renders or keeps changes.
It prints, without asserting them, the image's compressed size and each pod's start -> ready
time, with the edge container's own start -> ready (the aims of issue 16: at most 60 MiB and
2 s). `bundle install --kubernetes` runs without a kubeconfig, so it renders and applies
nothing to a cluster the machine may know; podman is the cluster here. Everything the test
makes in podman (pods, volumes, secrets, pulled images) has names of this run and is removed
at the end, pass or fail, with the registry and the temporary folder.

What differs from a real cluster (the test's turn of rendered.yaml into what podman 4.3 takes,
`podman_manifests` below; README, "Kubernetes at a site", says the same):
  - The StatefulSet becomes a Deployment of one replica, and its volumeClaimTemplates one
    PersistentVolumeClaim (a podman named volume) that the pod names by claimName, played once
    before the first pod: podman 4.3 takes no StatefulSet.
  - The Deployment carries the annotation io.podman.annotations.init.container.type: always:
    podman's default ("once") fails to remove an init container after its first run. Its pod
    has restartPolicy OnFailure, not a StatefulSet's Always: podman 4.3 applies the pod's
    policy to init containers too (containers/podman#16343), and under Always it restarts
    the finished init container until it happens to see it exited, about 21 s, or forever.
  - The Service, the PodDisruptionBudget and the NetworkPolicy are left out (podman takes none
    of them); the pod shares the host's network (`--network host`), so edge.yaml's listen and
    grpc_listen become free ports on 127.0.0.1 instead of 0.0.0.0:8000 and :8001, and the
    containers' `ports:` go (podman refuses port mappings on the host's network).
  - podman 4.3 does not expand $(NAME) in a container's args from its env (the kubelet does):
    the test puts the env's value there.
  - podman 4.3 ignores a volume mount's subPath (it would mount the whole ConfigMap as a
    folder there): the base mounts edge.yaml's ConfigMap as the folder /etc/outpost/config, so
    nothing changes here; a mount with a subPath would be turned into a folder mount.
  - The two Secrets the operator creates are podman secrets made with `podman secret create`
    from a Secret document whose data holds the files' text as it is, not base64: podman 4.3
    writes a secret volume's data values into the files undecoded (a Secret played with `kube
    play` gives files of base64), and it takes no stringData there. Their volumes say
    `optional: false` (podman 4.3 fails on a secret volume without it). Their files are
    root's, mode 0644: podman ignores defaultMode and fsGroup.
  - podman keeps every ConfigMap, Secret and emptyDir volume as a named volume of the
    machine: the test gives the ConfigMaps and emptyDirs names of this run and removes them.
  - The liveness and readiness probes are left out: podman 4.3 would run them as health
    checks with curl inside the container, and the image has no curl. The test is the
    kubelet here: it polls /v2/health/ready over HTTPS, and it pulls a new image by its
    pinned digest before it replaces the running pod (a refused pull leaves the pod serving).
  - Resource requests and limits, the security context (uid/gid 65532, read-only root, no
    capabilities, no privilege escalation, RuntimeDefault seccomp) and the emptyDir /tmp are
    played as rendered.
"""

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import numpy
import yaml

from podman_support import TestFailure, check, free_port, logger, rename_volumes, run, stop_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTAINERS_CONF = os.path.join(REPO, "tests", "kubernetes", "containers.conf")
SITE = "site-a"
MODELS_REPOSITORY = "outpost/models"
RUNTIME_REPOSITORY = "outpost/runtime"
TOLERANCE = 1e-6
# The init container, the image's first start and the model loads: a pod that is not ready
# after this has failed.
READY_SECONDS = int(os.environ.get("READY_SECONDS", 480))


log = logger("podman_test")


class Registry:
    """Debian's docker-registry on a free loopback port, storing under `root`."""

    def __init__(self, work):
        self.root = os.path.join(work, "registry")
        config = os.path.join(work, "registry.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {self.root}\nhttp:\n  addr: 127.0.0.1:0\n"
                    "  headers:\n    X-Content-Type-Options: [nosniff]\n")
        self.process = subprocess.Popen(["/usr/bin/docker-registry", "serve", config],
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True)
        self.port = None
        self.lines = []
        for line in self.process.stdout:
            self.lines.append(line)
            at = line.find("listening on 127.0.0.1:")
            if at >= 0:
                digits = line[at + len("listening on 127.0.0.1:"):]
                self.port = int(digits[:len(digits) - len(digits.lstrip("0123456789"))])
                break
        check(self.port is not None, "docker-registry did not listen:\n" + "".join(self.lines))
        threading.Thread(target=self._drain, daemon=True).start()
        self.host = f"127.0.0.1:{self.port}"

    def _drain(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.root, "docker", "registry", "v2", "blobs", "sha256", hexd[:2],
                            hexd, "data")

    def stop(self):
        stop_process(self.process, 10)


class Edge:
    """An HTTPS client of the edge pods: the test's CA is the edge's own certificate."""

    def __init__(self, cert_file, token):
        self.context = ssl.create_default_context(cafile=cert_file)
        self.token = token
        self.port = None

    def call(self, method, path, body=None, timeout=10):
        """Returns (status, parsed JSON or text)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}", data=data,
                                         method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def ready(self):
        try:
            return self.call("GET", "/v2/health/ready", timeout=2)[0] == 200
        except (OSError, ssl.SSLError):
            return False

    def infer(self, model, name, rows, width):
        flat = [float(v) for row in rows for v in row]
        status, answer = self.call("POST", f"/v2/models/{model}/infer", {
            "inputs": [{"name": name, "datatype": "FP32", "shape": [len(rows), width],
                        "data": flat}]})
        check(status == 200, f"scoring {model}: {status} {answer}")
        return answer


# --- The models: the demo's XGBoost pump model and a Gemm + Sigmoid ONNX model ---

PUMP_ROWS = [
    [52.0, 3.1, 6.2, 41.0, 1480.0, 21.0, 118.0, 900.0],
    [71.5, 9.8, 4.1, 55.0, 1320.0, 30.0, 80.0, 4200.0],
    [47.2, 2.2, 6.8, 39.5, 1495.0, 18.5, 125.0, 120.0],
]
SENSOR_ROWS = [[0.5, -1.0, 2.0, 0.25], [-1.5, 0.75, 0.0, 1.0]]


def write_pump(outpost, folder, version, trees):
    """The demo's pump model, trained with `trees` rounds, as pump/<version>."""
    scratch = folder + ".demo"
    run([outpost, "demo", "--write-repository", scratch, "--trees", str(trees)])
    os.makedirs(os.path.join(folder, "pump"), exist_ok=True)
    shutil.copy(os.path.join(scratch, "pump", "config.yaml"), os.path.join(folder, "pump"))
    target = os.path.join(folder, "pump", str(version))
    shutil.copytree(os.path.join(scratch, "pump", "1"), target)
    shutil.rmtree(scratch)
    descriptor_file = os.path.join(target, "descriptor.json")
    with open(descriptor_file) as f:
        descriptor = json.load(f)
    descriptor["version"] = version
    with open(descriptor_file, "w") as f:
        json.dump(descriptor, f)


def pump_expected(model_file):
    import xgboost
    booster = xgboost.Booster(model_file=model_file)
    matrix = xgboost.DMatrix(numpy.array(PUMP_ROWS, dtype=numpy.float32))
    return [float(v) for v in booster.predict(matrix)]


def sensor_weights(version):
    w = numpy.array([[0.5, -0.25], [1.0, 0.75], [-0.5, 0.25], [0.25 * version, -1.0]],
                    dtype=numpy.float32)
    b = numpy.array([0.125 * version, -0.5], dtype=numpy.float32)
    return w, b


def write_sensor(folder, version):
    """sensor/<version>/model.onnx: y = Sigmoid(x W + b), x [N,4] -> y [N,2]; only config.yaml
    and the model file, so `bundle create` derives the descriptor (bring your own model)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w, b = sensor_weights(version)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["z"]),
         helper.make_node("Sigmoid", ["z"], ["y"])],
        "sensor",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(os.path.join(folder, "sensor", str(version)), exist_ok=True)
    with open(os.path.join(folder, "sensor", "config.yaml"), "w") as f:
        f.write("backend: onnx\n")
    onnx.save(model, os.path.join(folder, "sensor", str(version), "model.onnx"))


def sensor_expected(version):
    w, b = sensor_weights(version)
    z = numpy.array(SENSOR_ROWS, dtype=numpy.float32) @ w + b
    return [float(v) for v in (1.0 / (1.0 + numpy.exp(-z.astype(numpy.float64)))).ravel()]


def close_to(got, want):
    return len(got) == len(want) and all(abs(g - w) <= TOLERANCE for g, w in zip(got, want))


# --- rendered.yaml -> what podman 4.3's `kube play` takes (the header says what differs) ---

def podman_manifests(rendered_text, names, ports):
    """The documents of rendered.yaml as podman 4.3 plays them (the module's header says what
    differs). `names` holds this run's podman names: deployment, pvc, secrets {rendered name:
    podman name}, suffix; the podman volumes the pod makes are added to names["volumes"].
    `ports`: the edge's HTTPS and gRPC ports on loopback."""
    pod_docs, configmaps = [], {}
    docs = [d for d in yaml.safe_load_all(rendered_text) if d]
    for doc in docs:
        kind = doc["kind"]
        if kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
            continue
        if kind == "ConfigMap":
            # podman keeps a ConfigMap volume as a named volume: one of this run's own
            renamed = f"{doc['metadata']['name']}-{names['suffix']}"
            configmaps[doc["metadata"]["name"]] = renamed
            doc["metadata"]["name"] = renamed
            names["volumes"].add(renamed)
            if "edge.yaml" in doc.get("data", {}):
                edge = yaml.safe_load(doc["data"]["edge.yaml"])
                edge["listen"] = f"127.0.0.1:{ports[0]}"
                edge["grpc_listen"] = f"127.0.0.1:{ports[1]}"
                doc["data"]["edge.yaml"] = yaml.safe_dump(edge, sort_keys=False)
            pod_docs.append(doc)
        elif kind != "StatefulSet":
            raise TestFailure(f"rendered.yaml has a {kind} the test does not know")
    statefulsets = [d for d in docs if d["kind"] == "StatefulSet"]
    check(len(statefulsets) == 1, f"rendered.yaml has {len(statefulsets)} StatefulSets")
    pod_docs.append(deployment_of(statefulsets[0], names, configmaps))
    return pod_docs


def pod_volumes_of(pod, names, configmaps):
    """The pod's volumes under this run's podman names: the claim, the Secrets (optional:
    false), the ConfigMaps, and emptyDirs (named volumes in podman 4.3)."""
    pod["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": names["pvc"]}})
    return rename_volumes(pod, names, configmaps)


def container_for_podman(container, renamed, configmaps):
    container.pop("livenessProbe", None)
    container.pop("readinessProbe", None)
    container.pop("startupProbe", None)
    container.pop("ports", None)  # podman maps no ports on the host's network
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            source["configMapRef"]["name"] = configmaps[source["configMapRef"]["name"]]
    # podman 4.3 passes $(NAME) through: the kubelet's expansion from the container's env
    for variable in container.get("env", []):
        if "value" in variable:
            container["args"] = [a.replace(f"$({variable['name']})", variable["value"])
                                 for a in container.get("args", [])]
    for mount in container.get("volumeMounts", []):
        if mount.get("subPath"):
            # podman 4.3 ignores subPath and mounts the whole ConfigMap as a folder there
            folder = os.path.dirname(mount["mountPath"]) + "/" + mount["name"]
            file = mount.pop("subPath")
            container["args"] = [folder + "/" + file if a == mount["mountPath"] else a
                                 for a in container.get("args", [])]
            mount["mountPath"] = folder
        mount["name"] = renamed.get(mount["name"], mount["name"])


def deployment_of(statefulset, names, configmaps):
    spec = statefulset["spec"]
    template = spec["template"]
    pod = template["spec"]
    claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
    check(claims == ["data"], f"volumeClaimTemplates {claims}, the test expects [data]")
    renamed = pod_volumes_of(pod, names, configmaps)
    for container in pod.get("initContainers", []) + pod["containers"]:
        container_for_podman(container, renamed, configmaps)
    metadata = dict(statefulset["metadata"])
    metadata["name"] = names["deployment"]
    annotations = dict(metadata.get("annotations") or {})
    annotations["io.podman.annotations.init.container.type"] = "always"
    metadata["annotations"] = annotations
    # podman 4.3 gives the pod's restart policy to its init containers too
    # (containers/podman#16343, fixed in 4.6): under Always, an init container that finished
    # is started again, and again, until podman happens to see it exited; at times that
    # never happens and `kube play` hangs. OnFailure restarts neither a finished init
    # container nor an edge that stopped cleanly, and restarts a crashed or killed edge.
    template["spec"]["restartPolicy"] = "OnFailure"
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
            "spec": {"replicas": 1, "selector": spec["selector"], "template": template}}


class Site:
    """Everything one run creates, and its removal."""

    def __init__(self, build_dir):
        self.outpost = os.path.join(os.path.abspath(build_dir), "outpost")
        check(os.access(self.outpost, os.X_OK), f"no outpost binary at {self.outpost}")
        self.work = tempfile.mkdtemp(prefix="outpost-podman-")
        self.id = f"opt{os.getpid()}x{int(time.time()) % 100000}"
        self.env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
        self.names = {"deployment": f"edge-{self.id}", "pvc": f"data-{self.id}",
                      "secrets": {"outpost-edge-credentials": f"credentials-{self.id}",
                                  "outpost-edge-tls": f"tls-{self.id}"},
                      "suffix": self.id, "volumes": set()}
        self.ports = (free_port(), free_port())
        self.registry = None
        self.pod_up = False
        self.images = set()
        self.timings = []  # per pod: start -> ready, the edge container's start -> ready (s)

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def outpost_run(self, *args, check_exit=True):
        # No kubeconfig: `bundle install --kubernetes` renders and never applies to a cluster
        # the machine may have configured; podman is the cluster here
        env = dict(os.environ, KUBECONFIG=self.path("no-kubeconfig"))
        return run([self.outpost, *args], check_exit=check_exit, env=env)

    def podman(self, *args, check_exit=True, timeout=300):
        return run(["podman", *args], check_exit=check_exit, env=self.env, timeout=timeout)

    @property
    def pod(self):
        return f"{self.names['deployment']}-pod-0"

    def container(self, name):
        return f"{self.pod}-{name}"

    # --- keys, models, image, secrets ---

    def make_keys_and_secrets(self):
        self.outpost_run("keys", "generate", "--dir", self.path("keys"), "--targets-keys", "1",
                         "--targets-threshold", "1")
        self.root = self.path("keys", "root.json")
        credentials = self.path("credentials.yaml")
        _, out, _ = self.outpost_run("edge", "credential", "add", "--credentials-file",
                                     credentials, "--name", "podman-test", "--role", "infer",
                                     "--role", "label", "--role", "read", "--role", "admin")
        token = out.splitlines()[0].strip()
        check(token.startswith("opt_"), f"credential add printed no token: {out}")
        cert, key = self.path("edge.crt"), self.path("edge.key")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"])
        self.edge = Edge(cert, token)
        for name, files in (("outpost-edge-credentials", {"credentials.yaml": credentials}),
                            ("outpost-edge-tls", {"tls.crt": cert, "tls.key": key})):
            data = {}
            for key_name, file in files.items():
                with open(file) as f:
                    data[key_name] = f.read()
            # The files' text as it is, not base64: podman 4.3 writes a secret volume's data
            # values into the files undecoded (the header says more)
            secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                      "metadata": {"name": self.names["secrets"][name]}, "data": data}
            subprocess.run(["podman", "secret", "create", self.names["secrets"][name], "-"],
                           input=yaml.safe_dump(secret), text=True, capture_output=True,
                           env=self.env, check=True)
            self.secrets_made = True

    def make_models(self, version, trees):
        folder = self.path(f"models-{version}")
        write_pump(self.outpost, folder, version, trees)
        write_sensor(folder, version)
        return folder

    def build_image(self):
        image = self.path("image")
        _, out, _ = self.outpost_run("image", "build", "--binary", self.outpost, "--out", image)
        for line in out.splitlines():
            if line.startswith("total "):
                self.image_size = line[len("total "):] + " compressed"
                log("the runtime image: " + self.image_size)
        return image

    def start_registry(self):
        self.registry = Registry(self.work)
        log(f"docker-registry on {self.registry.host}")

    # --- bundles ---

    def bundle(self, models, version, image):
        out = self.path(f"v{version}.bundle")
        self.outpost_run("bundle", "create", "--models", models, "--keys", self.path("keys"),
                         "--version", str(version), "--site", SITE, "--runtime", image,
                         "-o", out)
        return out

    def push(self, bundle):
        _, out, err = self.outpost_run(
            "bundle", "push", bundle, "--registry", f"http://{self.registry.host}",
            "--repository", MODELS_REPOSITORY, "--runtime-repository", RUNTIME_REPOSITORY,
            "--trusted-root", self.root, "--site", SITE)
        runtime = [line.split(" ", 1)[1] for line in out.splitlines()
                   if line.startswith("runtime ")]
        check(runtime, f"bundle push named no runtime image:\n{out}{err}")
        return out

    def registry_flags(self):
        return ["--registry", self.registry.host, "--registry-repository", MODELS_REPOSITORY,
                "--runtime-repository", RUNTIME_REPOSITORY]

    def install(self, bundle, check_exit=True):
        return self.outpost_run(
            "bundle", "install", bundle, "--kubernetes", os.path.join(REPO, "deploy", "k8s"),
            "-o", self.path("overlay"), "--state-dir", self.path("state"), "--trusted-root",
            self.root, "--site", SITE, *self.registry_flags(), check_exit=check_exit)

    def rollback(self):
        return self.outpost_run(
            "bundle", "rollback", "--kubernetes", os.path.join(REPO, "deploy", "k8s"), "-o",
            self.path("overlay"), "--state-dir", self.path("state"), "--trusted-root",
            self.root, "--site", SITE, *self.registry_flags())

    # --- the kubelet's part ---

    def rendered(self):
        with open(self.path("overlay", "rendered.yaml")) as f:
            return f.read()

    def images_of(self, docs):
        images = []
        for doc in docs:
            if doc["kind"] == "Deployment":
                pod = doc["spec"]["template"]["spec"]
                for c in pod.get("initContainers", []) + pod["containers"]:
                    images.append(c["image"])
        return sorted(set(images))

    def pull(self, docs):
        """Pulls every image the pod names by its pinned digest, as a kubelet does before it
        starts the pod; returns (exit code, output) of the first refused pull."""
        for image in self.images_of(docs):
            check("@sha256:" in image, f"the rendered pod names {image}, not a digest")
            code, out, err = self.podman("pull", "--tls-verify=false", image, check_exit=False)
            if code != 0:
                return code, out + err
            self.images.add(image)
        return 0, ""

    def play(self, rendered_text):
        """Replaces the pod with the one `rendered_text` describes; returns start -> ready s."""
        docs = podman_manifests(rendered_text, self.names, self.ports)
        code, output = self.pull(docs)
        check(code == 0, f"podman pull of the rendered image refused: {output}")
        if not getattr(self, "pvc_made", False):
            claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": self.names["pvc"]},
                     "spec": {"accessModes": ["ReadWriteOnce"],
                              "resources": {"requests": {"storage": "10Gi"}}}}
            with open(self.path("pvc.yaml"), "w") as f:
                yaml.safe_dump(claim, f)
            self.podman("kube", "play", self.path("pvc.yaml"))
            self.pvc_made = True
        manifest = self.path("pod.yaml")
        with open(manifest, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
        self.stop_pod()
        self.edge.port = self.ports[0]
        start = time.monotonic()
        self.pod_up = True
        code, out, err = self.podman("kube", "play", "--network", "host", "--tls-verify=false",
                                     manifest, check_exit=False, timeout=READY_SECONDS)
        check(code == 0, f"podman kube play exited {code}: {out}{err}\n{self.pod_logs()}")
        while not self.edge.ready():
            if time.monotonic() - start > READY_SECONDS:
                raise TestFailure(f"the pod was not ready after {READY_SECONDS} s\n"
                                  + self.pod_logs())
            time.sleep(0.1)
        seconds, ready_ns = time.monotonic() - start, time.time_ns()
        _, started, _ = self.podman("inspect", "--format", "{{.State.StartedAt.UnixNano}}",
                                    self.container("edge"))
        edge = (ready_ns - int(started)) / 1e9
        log(f"pod start -> ready {seconds:.1f} s, of which the edge container's start -> ready "
            f"{edge:.2f} s (the rest: the init container and podman's wait after it)")
        self.timings.append((seconds, edge))
        return seconds

    def stop_pod(self):
        if self.pod_up:
            self.podman("pod", "rm", "-f", "-t", "5", self.pod, check_exit=False)
            self.pod_up = False

    def logs(self, container):
        _, out, err = self.podman("logs", self.container(container), check_exit=False)
        return out + err

    def pod_logs(self):
        _, out, err = self.podman("ps", "-a", "--pod", "--filter", f"pod={self.pod}",
                                  check_exit=False)
        text = out + err
        for container in ("install", "edge"):
            text += f"\n--- {container} ---\n" + self.logs(container)
        return text

    def cleanup(self):
        self.stop_pod()
        volumes = set(self.names["volumes"])
        if getattr(self, "pvc_made", False):
            volumes.add(self.names["pvc"])
        for volume in sorted(volumes):
            self.podman("volume", "rm", "-f", volume, check_exit=False)
        if getattr(self, "secrets_made", False):
            for name in self.names["secrets"].values():
                self.podman("secret", "rm", name, check_exit=False)
        # By name, without -f: an image another pod of the machine uses (the same digest,
        # since builds are reproducible) keeps its other names and its containers.
        for image in sorted(self.images):
            self.podman("rmi", image, check_exit=False)
        if self.registry:
            self.registry.stop()
        shutil.rmtree(self.work, ignore_errors=True)


# --- the test ---

def served(site, versions, models):
    """Scores both models and compares with the exact predictions of `models` (folder of
    each version); `versions`: the expected model version of pump and sensor."""
    pump_version, sensor_version = versions
    answer = site.edge.infer("pump", "features", PUMP_ROWS, 8)
    check(answer.get("model_version") == str(pump_version),
          f"pump served version {answer.get('model_version')}, expected {pump_version}")
    got = answer["outputs"][0]["data"]
    want = pump_expected(os.path.join(models[pump_version], "pump", str(pump_version),
                                      "model.json"))
    check(close_to(got, want), f"pump {pump_version}: {got}, XGBoost gives {want}")
    answer = site.edge.infer("sensor", "x", SENSOR_ROWS, 4)
    check(answer.get("model_version") == str(sensor_version),
          f"sensor served version {answer.get('model_version')}, expected {sensor_version}")
    got = answer["outputs"][0]["data"]
    want = sensor_expected(sensor_version)
    check(close_to(got, want), f"sensor {sensor_version}: {got}, numpy gives {want}")


def edge_uid(site):
    _, pid, _ = site.podman("inspect", "--format", "{{.State.Pid}}", site.container("edge"))
    with open(f"/proc/{pid.strip()}/status") as f:
        for line in f:
            if line.startswith("Uid:") or line.startswith("Gid:"):
                yield line.split()[0], line.split()[1:]


def feedback_ids(site):
    status, answer = site.edge.call("GET", "/v1/records?kind=feedback")
    check(status == 200, f"/v1/records: {status} {answer}")
    return [r["payload"]["request_id"] for r in answer["records"]]


def records_survive_sigkill(site, rendered):
    """Feedback and the pump's insight samples are written, the edge is killed with SIGKILL
    and a new pod starts on the same volume: every record is there."""
    for i in range(3):
        status, answer = site.edge.call("POST", "/v1/feedback", {
            "request_id": f"podman-{i}", "model": "pump", "label": i % 2})
        check(status == 200, f"feedback: {status} {answer}")
    status, outbox = site.edge.call("GET", "/v1/outbox")
    check(status == 200, f"/v1/outbox: {status} {outbox}")
    before, ids = outbox["records"], feedback_ids(site)
    check(before >= 3 + len(PUMP_ROWS), f"the outbox holds {before} records after scoring "
          f"{len(PUMP_ROWS)} rows (a sample rule) and 3 labels")
    site.podman("kill", "--signal", "KILL", site.container("edge"))
    log(f"killed the edge (SIGKILL) holding {before} records; a new pod on the same volume")
    ready = site.play(rendered)
    check(feedback_ids(site) == ids, f"feedback after SIGKILL: {feedback_ids(site)}, "
          f"before: {ids}")
    status, outbox = site.edge.call("GET", "/v1/outbox")
    check(outbox["records"] >= before, f"{outbox['records']} records after SIGKILL, {before} "
          "before")
    return ready


def refused_model_blob(site, models, bundle, keep):
    """bundle's pump model blob is altered in the registry: the pod's init container refuses
    it and the pod keeps serving `keep`."""
    with open(os.path.join(models, "pump", "3", "model.json"), "rb") as f:
        blob = site.registry.blob_path("sha256:" + hashlib.sha256(f.read()).hexdigest())
    check(os.path.exists(blob), f"no pump 3 blob at {blob}")
    with open(blob, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(b"[" if first != b"[" else b"{")
    site.install(bundle)
    site.play(site.rendered())
    init_log = site.logs("install")
    check("TARGET_HASH" in init_log and f"keeps serving bundle version {keep[2]}" in init_log,
          f"the init container's log does not name the refusal:\n{init_log}")
    log("altered model blob refused in the pod: " + init_log.strip().splitlines()[-1])
    served(site, keep[0], keep[1])


def refused_image_layer(site, image, models, keep):
    """A bundle whose runtime image has a layer altered in the registry: podman refuses to
    pull its pinned digest, so the running pod is never replaced and keeps serving."""
    bundle = site.bundle(models, 4, image)
    site.push(bundle)
    with open(os.path.join(image, "index.json")) as f:
        manifest_digest = json.load(f)["manifests"][0]["digest"]
    with open(os.path.join(image, "blobs", "sha256", manifest_digest.split(":")[1])) as f:
        layer = json.load(f)["layers"][0]["digest"]
    path = site.registry.blob_path(layer)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    site.install(bundle)
    running = site.podman("inspect", "--format", "{{.Id}} {{.State.StartedAt.UnixNano}}",
                          site.container("edge"))[1]
    docs = podman_manifests(site.rendered(), site.names, site.ports)
    code, output = site.pull(docs)
    check(code != 0, "podman pulled a runtime image whose layer was altered")
    log("altered image layer refused by podman pull: " + output.strip().splitlines()[-1])
    check(site.edge.ready(), "the running pod stopped serving")
    check(site.podman("inspect", "--format", "{{.Id}} {{.State.StartedAt.UnixNano}}",
                      site.container("edge"))[1] == running, "the running edge was replaced")
    served(site, keep[0], keep[1])


def older_bundle_refused(site, bundle):
    """A bundle below the installed version: VERSION_ROLLBACK, and neither the overlay nor
    the site state changes."""
    def snapshot():
        files = {}
        for folder in ("overlay", "state"):
            for root, _, names in os.walk(site.path(folder)):
                for name in names:
                    with open(os.path.join(root, name), "rb") as f:
                        files[os.path.join(root, name)] = f.read()
        return files
    before = snapshot()
    code, out, err = site.install(bundle, check_exit=False)
    check(code != 0 and "VERSION_ROLLBACK" in out + err,
          f"an older bundle was not refused with VERSION_ROLLBACK: exit {code}\n{out}{err}")
    check(snapshot() == before, "the refused install changed the overlay or the site state")
    log("older bundle refused: " + (out + err).strip().splitlines()[-1])


def run_test(site):
    site.start_registry()
    image = site.build_image()
    site.make_keys_and_secrets()
    models = {v: site.make_models(v, trees) for v, trees in ((1, 4), (2, 7), (3, 9))}
    b1 = site.bundle(models[1], 1, image)
    site.push(b1)
    _, out, err = site.install(b1)
    check("not applied" in out + err,
          f"bundle install --kubernetes did not say it only rendered: {out}{err}")
    site.play(site.rendered())
    uid = dict(edge_uid(site))
    check(uid["Uid:"] == ["65532"] * 4 and uid["Gid:"] == ["65532"] * 4,
          f"the edge runs as {uid}, not 65532")
    served(site, (1, 1), models)
    log("bundle 1 serves XGBoost's and the ONNX model's exact predictions, as uid 65532")
    records_survive_sigkill(site, site.rendered())
    served(site, (1, 1), models)

    b2 = site.bundle(models[2], 2, image)
    site.push(b2)
    site.install(b2)
    site.play(site.rendered())
    served(site, (2, 2), models)
    log("bundle 2 serves version 2 of both models")
    site.rollback()
    site.play(site.rendered())
    served(site, (1, 1), models)
    log("rollback: version 1 serves again")

    b3 = site.bundle(models[3], 3, image)
    site.push(b3)
    refused_model_blob(site, models[3], b3, ((1, 1), models, 1))
    second_image = site.path("image-2")
    site.outpost_run("image", "build", "--binary", site.outpost, "--out", second_image,
                     "--source-date-epoch", "86400")
    refused_image_layer(site, second_image, models[3], ((1, 1), models))
    older_bundle_refused(site, b2)
    log("measured (not asserted): image " + site.image_size + "; pod start -> ready "
        + ", ".join(f"{t[0]:.1f}" for t in site.timings) + " s, of which the edge container's "
        "start -> ready " + ", ".join(f"{t[1]:.2f}" for t in site.timings) + " s")


def main():
    if len(sys.argv) != 2:
        print("usage: podman_test.py BUILD_DIR", file=sys.stderr)
        return 2
    site = Site(sys.argv[1])
    try:
        run_test(site)
    except (TestFailure, subprocess.SubprocessError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        site.cleanup()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
