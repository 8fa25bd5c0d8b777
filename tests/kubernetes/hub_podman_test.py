#!/usr/bin/python3
"""The hub on a real container runtime: deploy/k8s-hub, rendered by `kubectl kustomize`
through a test overlay, run by Debian's podman (`podman kube play`, runc, catatonit) as
three replicas on one PostgreSQL server of the test's own.

Usage: /usr/bin/python3 tests/kubernetes/hub_podman_test.py BUILD_DIR   (ctest: kubernetes_hub_podman_test)

What the test builds, in a temporary folder: a PostgreSQL cluster (Debian's server binaries,
run as the `postgres` user) with a role `hub` whose password only the store URL's file
holds; the hub's CA folder, made by `outpost hub site add --ca-dir` (which also adds the
site plant-7 to the database, as an operator would from their own machine); an operators file
(`outpost hub operator add`); the runtime image (`outpost image build`, loaded into podman
under a tag of this run); the three Secrets; and an overlay over deploy/k8s-hub that names
the image and replaces the placeholder policy with one that takes the site's feedback.
It proves, in order:

  1. the rendered manifests hold what deploy/k8s-hub promises: three replicas, non-root,
     read-only root, no privilege escalation, no capabilities, the probes on /readyz and
     /healthz, a PodDisruptionBudget that leaves two replicas, Services and a
     NetworkPolicy on the site and operator ports, the Secrets mounted read-only;
  2. every replica becomes ready (GET /readyz over TLS, PostgreSQL's SELECT 1) and answers
     /healthz, running as uid 65532;
  3. a site enrolled through one replica (`outpost enrol`) has its token refused by
     another (single-use across replicas), and uploads a batch through another replica
     (a real `outpost edge` whose forwarder names that replica): the record is in
     PostgreSQL once;
  4. with one replica's hub killed (SIGKILL), the Services keep answering: the operator
     Service's /readyz, and an upload through the site Service is stored once; the killed
     replica is restarted (restartPolicy Always) and is ready again, and every replica,
     asked through the operator Service with the operator's token (from its Secret), shows
     the site with its two records.
It prints, without asserting them, how long the replicas took to be ready and each one's
peak resident set.

What differs from a real cluster (the test's turn of the rendered manifests into what podman
4.3 takes, `podman_documents` below):
  - The Services, the PodDisruptionBudget and the NetworkPolicy are checked and left out
    (podman takes none of them). The test is the Service: a TCP proxy on loopback for each
    Service that spreads connections over the replicas whose /readyz answers 200 (TLS passes
    through it, as through kube-proxy), and a proxy on loopback for each replica's site
    listener, as `kubectl port-forward` would give. The hub's server certificate names
    127.0.0.1 (`hub site add` makes it with localhost, 127.0.0.1 and ::1); a real cluster's
    names the Service's DNS name (README, "The hub on Kubernetes").
  - The pods run on podman's bridge network (`--network podman`), each with an address of
    its own as on a cluster, and reach PostgreSQL at the bridge's gateway address; the
    test's PostgreSQL listens on every address of the machine, its pg_hba.conf admitting
    only loopback and the bridge's subnet, by password (scram-sha-256).
  - The probes are left out: podman 4.3 would run them as health checks with curl inside
    the container, and the image has no curl. The test is the kubelet here: it polls
    /readyz, and the Service proxies send only to replicas it found ready.
  - The Secrets are podman secrets made with `podman secret create` from a Secret document
    whose data holds the files' text as it is, not base64 (podman 4.3 writes a secret
    volume's values undecoded); their files are root's, mode 0644: podman ignores
    defaultMode and fsGroup. podman keeps ConfigMap, Secret and emptyDir volumes as named
    volumes of the machine: the test gives them names of this run and removes them. One
    emptyDir is thus one volume that the three pods share, where a cluster gives each pod
    its own: the replicas' data folder (their audit logs of refusals) is one folder here.
  - The containers' `ports:` go: podman 4.3 publishes a containerPort on the same port of
    the machine, which the second replica cannot bind. The pods' own addresses need none.
  - The ConfigMaps and the Deployment are renamed for this run; topologySpreadConstraints
    go (one machine). The resources, the security context and the emptyDirs are played as
    rendered.
Everything the test makes (pods, volumes, secrets, the image, PostgreSQL, the edge) is
removed at the end, pass or fail.
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import yaml

from podman_support import TestFailure, check, free_port, logger, rename_volumes, run, stop_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = os.path.join(REPO, "deploy", "k8s-hub")
CONTAINERS_CONF = os.path.join(REPO, "tests", "kubernetes", "containers.conf")
REPLICAS = 3
SITE = "plant-7"
# Every wait of the test; a replica or a record that is not there after this has failed.
WAIT_SECONDS = 60
# The policy of the site and of the hub in this test: the site's feedback leaves as it is.
POLICY = """format: 1
version: 1
default: keep
regions:
  all: {raw: true}
default_region: all
kinds:
  feedback: {default: keep}
"""
SECRET_FILES = {
    "outpost-hub-ca": ["ca.key", "ca.crt", "server.key", "server.crt", "receipt.key",
                       "receipt.crt", "export.key", "export.pub"],
    "outpost-hub-store": ["store-url"],
    "outpost-hub-operators": ["operators.yaml"],
}


log = logger("hub_podman_test")


def wait_for(what, condition, seconds=WAIT_SECONDS, detail=lambda: ""):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TestFailure(f"{what}: not after {seconds} s\n{detail()}")
        time.sleep(0.2)


class Postgres:
    """A private PostgreSQL server (Debian's binaries as the `postgres` user, as
    hub/testing/postgres_cluster.h does) on a free port of every address, admitting the
    role `hub` by password from loopback and from `subnet` (podman's bridge)."""

    def __init__(self, work, subnet):
        code, out, _ = run(["pg_config", "--bindir"], check_exit=False)
        self.bindir = out.strip() if code == 0 else "/usr/lib/postgresql/15/bin"
        self.dir = os.path.join(work, "postgres")
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self.running = False
        run(self.as_postgres + [os.path.join(self.bindir, "initdb"), "-D", self.data(), "-U",
                                "outpost", "--auth-local=trust", "--auth-host=scram-sha-256",
                                "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
        with open(os.path.join(self.data(), "pg_hba.conf"), "a") as f:
            f.write(f"host outpost hub {subnet} scram-sha-256\n")
        # pg_ctl -w waits on the unix socket: a TCP port another process took meanwhile
        # leaves the server without it, so the test looks, and starts again on another
        for _ in range(5):
            self.port = free_port()
            run(self.as_postgres + [
                os.path.join(self.bindir, "pg_ctl"), "-D", self.data(), "-l",
                os.path.join(self.dir, "server.log"), "-w", "-t", "60", "-o",
                f"-p {self.port} -k {self.dir} -c listen_addresses='*'", "start"])
            self.running = True
            try:
                socket.create_connection(("127.0.0.1", self.port), 5).close()
                break
            except OSError:
                self.stop()
        check(self.running, "PostgreSQL did not listen on TCP:\n" + self.log_text())
        self.password = os.urandom(18).hex()
        # The password travels on psql's standard input, never on a command line.
        self.sql(f"CREATE ROLE hub LOGIN PASSWORD '{self.password}';\n"
                 "CREATE DATABASE outpost OWNER hub;\n", database="postgres")

    def data(self):
        return os.path.join(self.dir, "data")

    def url(self, host):
        return f"postgresql://hub:{self.password}@{host}:{self.port}/outpost"

    def sql(self, text, database="outpost"):
        _, out, _ = run(["psql", "-h", self.dir, "-p", str(self.port), "-U", "outpost",
                         "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt"], stdin=text)
        return out.strip()

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "server.log")) as f:
                return f.read()
        except OSError as e:
            return str(e)

    def stop(self):
        if self.running:
            run(self.as_postgres + [os.path.join(self.bindir, "pg_ctl"), "-D", self.data(),
                                    "-m", "fast", "-w", "stop"], check_exit=False)
            self.running = False


class Proxy:
    """A Service as kube-proxy makes it, on a free loopback port: each TCP connection goes,
    bytes unchanged, to the next of `endpoints()` (address, port) in turn."""

    def __init__(self, endpoints):
        self.endpoints = endpoints
        self.turn = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        endpoints = self.endpoints()
        if not endpoints:
            client.close()
            return
        self.turn += 1
        try:
            upstream = socket.create_connection(endpoints[self.turn % len(endpoints)], 5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


# --- the rendered manifests: what they promise, and what podman 4.3 takes ---

def check_rendered(docs):
    """What deploy/k8s-hub promises (the module's header, item 1)."""
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    check(sorted(by_kind) == ["ConfigMap", "Deployment", "NetworkPolicy",
                              "PodDisruptionBudget", "Service"], f"kinds {sorted(by_kind)}")
    deployment = by_kind["Deployment"][0]
    check(deployment["spec"]["replicas"] == REPLICAS, "replicas")
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    container = pod["containers"][0]
    sc = container["securityContext"]
    check(sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and
          not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"],
          f"the hub container's securityContext: {sc}")
    check(container["readinessProbe"]["httpGet"]["path"] == "/readyz" and
          container["livenessProbe"]["httpGet"]["path"] == "/healthz", "the probes")
    # The graceful drain (hub/FORMAT.md section 6, "Shutting down"): hub.yaml's delay with
    # /readyz 503, long enough for a readiness probe to fail, and a grace period that covers
    # the delay and the listeners' 30 s drain.
    hub_yaml = next(yaml.safe_load(c["data"]["hub.yaml"]) for c in by_kind["ConfigMap"]
                    if "hub.yaml" in c.get("data", {}))
    delay = hub_yaml["limits"]["drain_delay_s"]
    probe = container["readinessProbe"]
    check(delay >= probe["periodSeconds"] * probe["failureThreshold"],
          f"drain_delay_s {delay} is shorter than the readiness probe's failure")
    check(pod["terminationGracePeriodSeconds"] > delay + 30,
          f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} does not "
          f"cover drain_delay_s {delay} and the 30 s drain")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(ports == {"sites": 8443, "operator": 9443}, f"container ports {ports}")
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    for volume in pod["volumes"]:
        if "secret" in volume:
            check(mounts[volume["name"]].get("readOnly"), f"{volume['name']} is writable")
    pdb = by_kind["PodDisruptionBudget"][0]["spec"]
    check(pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable") == REPLICAS - 1,
          f"PodDisruptionBudget {pdb}")
    selectors = [pdb["selector"]["matchLabels"]] + [s["spec"]["selector"]
                                                    for s in by_kind["Service"]]
    for selector in selectors:
        check(selector and all(labels.get(k) == v for k, v in selector.items()),
              f"selector {selector} does not select the pods ({labels})")
    service_ports = sorted(p["targetPort"] for s in by_kind["Service"] for p in s["spec"]["ports"])
    check(service_ports == ["operator", "sites"], f"Service target ports {service_ports}")
    policy = by_kind["NetworkPolicy"][0]["spec"]
    ingress = sorted(p["port"] for rule in policy["ingress"] for p in rule["ports"])
    check(ingress == [8443, 9443], f"NetworkPolicy ingress ports {ingress}")
    return deployment


def podman_documents(docs, names):
    """The ConfigMaps and the Deployment as podman 4.3 plays them (the module's header)."""
    out, configmaps = [], {}
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            renamed = f"{doc['metadata']['name']}-{names['suffix']}"
            configmaps[doc["metadata"]["name"]] = renamed
            doc["metadata"]["name"] = renamed
            names["volumes"].add(renamed)
            out.append(doc)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["metadata"]["name"] = names["deployment"]
    pod = deployment["spec"]["template"]["spec"]
    pod.pop("topologySpreadConstraints", None)
    renamed = rename_volumes(pod, names, configmaps)
    for container in pod["containers"]:
        container.pop("livenessProbe")
        container.pop("readinessProbe")
        container.pop("ports")  # podman 4.3 would publish each on the machine's own port
        for mount in container["volumeMounts"]:
            mount["name"] = renamed.get(mount["name"], mount["name"])
    out.append(deployment)
    return out


class Hub:
    """Everything one run creates, and its removal."""

    def __init__(self, build_dir):
        self.outpost = os.path.join(os.path.abspath(build_dir), "outpost")
        check(os.access(self.outpost, os.X_OK), f"no outpost binary at {self.outpost}")
        self.work = tempfile.mkdtemp(prefix="outpost-hub-podman-")
        os.chmod(self.work, 0o755)  # the postgres user enters it
        self.id = f"oph{os.getpid()}x{int(time.time()) % 100000}"
        self.env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
        self.names = {"deployment": f"hub-{self.id}", "suffix": self.id, "volumes": set(),
                      "secrets": {name: f"{name}-{self.id}" for name in SECRET_FILES}}
        self.image = f"localhost/outpost:{self.id}"
        self.postgres = None
        self.proxies = []
        self.edge = None
        self.played = False
        self.image_loaded = False
        self.secrets_made = []
        self.ready = {}  # replica -> its /readyz answered 200 at the last look
        self.polling = False

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def outpost_run(self, *args, check_exit=True):
        return run([self.outpost, *args], check_exit=check_exit)

    def podman(self, *args, check_exit=True, timeout=300):
        return run(["podman", *args], check_exit=check_exit, env=self.env, timeout=timeout)

    def container(self, replica):
        return f"{self.names['deployment']}-pod-{replica}-hub"

    # --- what the operator prepares: the database, the CA, the Secrets, the image ---

    def prepare(self):
        network = json.loads(self.podman("network", "inspect", "podman")[1])[0]
        subnet = network["subnets"][0]
        self.gateway = subnet["gateway"]
        self.postgres = Postgres(self.work, subnet["subnet"])
        log(f"PostgreSQL on port {self.postgres.port}; pods reach it at {self.gateway}")
        secrets = self.path("secrets")
        os.makedirs(secrets, mode=0o700)
        host_url = self.path("host-store-url")
        with open(os.open(host_url, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(self.postgres.url("127.0.0.1") + "\n")
        # The CA folder as README's "The hub on Kubernetes" makes it; its server certificate
        # names the site Service (and, always, 127.0.0.1: the test's proxies)
        code, out, err = self.outpost_run(
            "hub", "site", "add", "--data-dir", self.path("operator"), "--ca-dir",
            self.path("ca"), "--server-name", "outpost-hub", "--store-url-file", host_url,
            "--site", SITE, "--tenant", "acme", "--region", "us", check_exit=False)
        check(code == 0, f"hub site add: {err}\nPostgreSQL's log:\n{self.postgres.log_text()}")
        self.token = out.splitlines()[0].strip()
        for name in SECRET_FILES["outpost-hub-ca"]:
            shutil.copy(self.path("ca", name), os.path.join(secrets, name))
        with open(os.open(os.path.join(secrets, "store-url"), os.O_WRONLY | os.O_CREAT,
                          0o600), "w") as f:
            f.write(self.postgres.url(self.gateway) + "\n")
        _, out, _ = self.outpost_run("hub", "operator", "add", "--tokens-file",
                                     os.path.join(secrets, "operators.yaml"), "--name", "ops",
                                     "--tenant", "acme")
        self.operator_token = out.splitlines()[0].strip()
        self.make_secrets(secrets)
        self.outpost_run("image", "build", "--binary", self.outpost, "--out",
                         self.path("image.tar"), "--tag", f"outpost:{self.id}")
        self.podman("load", "-i", self.path("image.tar"))
        self.image_loaded = True

    def make_secrets(self, folder):
        """The three Secrets, from the files in `folder`, as podman secrets of this run."""
        for name, files in SECRET_FILES.items():
            data = {}
            for file in files:
                with open(os.path.join(folder, file)) as f:
                    data[file] = f.read()
            secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                      "metadata": {"name": self.names["secrets"][name]}, "data": data}
            subprocess.run(["podman", "secret", "create", self.names["secrets"][name], "-"],
                           input=yaml.safe_dump(secret), text=True, capture_output=True,
                           env=self.env, check=True)
            self.secrets_made.append(self.names["secrets"][name])

    def render(self):
        overlay = self.path("overlay")
        os.makedirs(overlay)
        with open(os.path.join(overlay, "policy.yaml"), "w") as f:
            f.write(POLICY)
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [os.path.relpath(BASE, overlay)],
            "images": [{"name": "outpost", "newName": "localhost/outpost", "newTag": self.id}],
            "configMapGenerator": [{"name": "outpost-hub-policies", "behavior": "replace",
                                    "files": ["policy.yaml"]}]}
        with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
            yaml.safe_dump(kustomization, f)
        _, rendered, _ = run(["kubectl", "kustomize", overlay])
        return [d for d in yaml.safe_load_all(rendered) if d]

    # --- the cluster's part: pods, the kubelet's probes, the Services ---

    def play(self, docs):
        manifest = self.path("hub.yaml")
        with open(manifest, "w") as f:
            yaml.safe_dump_all(podman_documents(docs, self.names), f, sort_keys=False)
        self.played = True
        self.podman("kube", "play", "--network", "podman", manifest, timeout=WAIT_SECONDS)
        self.addresses = {}
        for replica in range(REPLICAS):
            _, ip, _ = self.podman("inspect", "--format", "{{.NetworkSettings.IPAddress}}",
                                   self.container(replica))
            self.addresses[replica] = ip.strip()
        self.polling = True
        threading.Thread(target=self._kubelet, daemon=True).start()

    def call(self, address, port, path, timeout=3, token=None):
        """GET over TLS with the hub CA; no host name check (the pods' addresses are not in
        the server certificate, as a kubelet's probe checks none). Returns (status, body)."""
        context = ssl.create_default_context(cafile=self.path("ca", "ca.crt"))
        context.check_hostname = False
        request = urllib.request.Request(f"https://{address}:{port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, context=context, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (OSError, ssl.SSLError) as e:
            return 0, str(e)

    def _kubelet(self):
        """The readiness probe of every replica, every 0.2 s: the Services' endpoints."""
        while self.polling:
            for replica, address in self.addresses.items():
                self.ready[replica] = self.call(address, 9443, "/readyz", timeout=1)[0] == 200
            time.sleep(0.2)

    def endpoints(self, port):
        return lambda: [(self.addresses[r], port) for r in sorted(self.addresses)
                        if self.ready.get(r)]

    def proxy(self, endpoints):
        p = Proxy(endpoints)
        self.proxies.append(p)
        return p.port

    def logs(self):
        text = ""
        for replica in range(REPLICAS):
            _, out, err = self.podman("logs", self.container(replica), check_exit=False)
            text += f"\n--- replica {replica} ---\n{out}{err}"
        return text

    def cleanup(self):
        self.polling = False
        for p in self.proxies:
            p.close()
        if self.edge:
            self.edge.stop()
        if self.played:
            for replica in range(REPLICAS):
                self.podman("pod", "rm", "-f", "-t", "5",
                            f"{self.names['deployment']}-pod-{replica}", check_exit=False)
        for volume in sorted(self.names["volumes"]):
            self.podman("volume", "rm", "-f", volume, check_exit=False)
        for name in self.secrets_made:
            self.podman("secret", "rm", name, check_exit=False)
        if self.image_loaded:
            self.podman("rmi", self.image, check_exit=False)
        if self.postgres:
            self.postgres.stop()
        shutil.rmtree(self.work, ignore_errors=True)


class Edge:
    """A site's edge node on this machine (`outpost edge`), its forwarder uploading to
    `hub_port` on loopback with the credentials `outpost enrol` wrote."""

    def __init__(self, hub, hub_port):
        self.hub = hub
        self.port = free_port()
        config = hub.path("edge.yaml")
        if not os.path.exists(hub.path("models")):
            # The demo's pump model: feedback names a model the node serves
            hub.outpost_run("demo", "--write-repository", hub.path("models"), "--trees", "2")
        with open(config, "w") as f:
            yaml.safe_dump({
                "site_id": SITE, "node_id": "n1", "listen": f"127.0.0.1:{self.port}",
                "grpc_listen": f"127.0.0.1:{free_port()}", "model_repository": hub.path("models"),
                "data_dir": hub.path("edge"),
                "sync": {"hub_url": f"https://127.0.0.1:{hub_port}",
                         "credentials_dir": hub.path("credentials"),
                         "policy_file": hub.path("policy.yaml"), "status_interval_s": 0,
                         "backoff_initial_ms": 100, "backoff_max_ms": 500}}, f)
        self.log = open(hub.path("edge.log"), "a")
        self.process = subprocess.Popen([hub.outpost, "edge", "--config", config],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("the edge is ready", lambda: self.get("/v2/health/ready")[0] == 200,
                 detail=self.text)

    def text(self):
        with open(self.hub.path("edge.log")) as f:
            return f.read()

    def get(self, path, body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         data=json.dumps(body).encode() if body else None,
                                         method="POST" if body else "GET")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def label(self, request_id):
        status, body = self.get("/v1/feedback", {"request_id": request_id, "model": "pump",
                                                 "label": 1})
        check(status == 200, f"feedback {request_id}: {status} {body}")

    def stop(self):
        stop_process(self.process, 15)
        self.log.close()


# --- the test ---

def stored(hub, request_id):
    """How many records of the site's feedback `request_id` PostgreSQL holds."""
    return int(hub.postgres.sql(
        "SELECT count(*) FROM records WHERE site_id = 'plant-7' AND kind = 'feedback' "
        f"AND payload::jsonb ->> 'request_id' = '{request_id}'"))


def upload_through(hub, hub_port, request_id):
    """The edge labels `request_id` and its forwarder uploads to `hub_port`: the record is
    in PostgreSQL once, and stays once."""
    hub.edge = Edge(hub, hub_port)
    hub.edge.label(request_id)
    wait_for(f"{request_id} in PostgreSQL", lambda: stored(hub, request_id) >= 1,
             detail=lambda: hub.edge.text() + hub.logs())
    wait_for("the edge's outbox drained",
             lambda: json.loads(hub.edge.get("/v1/outbox")[1]).get("records") == 0,
             detail=hub.edge.text)
    hub.edge.stop()
    hub.edge = None
    check(stored(hub, request_id) == 1, f"{request_id} is stored {stored(hub, request_id)} "
          "times")


def replicas_ready(hub):
    wait_for("every replica ready", lambda: all(hub.ready.get(r) for r in range(REPLICAS)),
             detail=hub.logs)
    for replica, address in hub.addresses.items():
        check(hub.call(address, 9443, "/healthz") == (200, "ok"), f"replica {replica} health")
        status, body = hub.call(address, 9443, "/readyz")
        check((status, body) == (200, "ok"), f"replica {replica} /readyz: {status} {body}")
        _, pid, _ = hub.podman("inspect", "--format", "{{.State.Pid}}", hub.container(replica))
        with open(f"/proc/{pid.strip()}/status") as f:
            uid = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        check(uid == ["65532"] * 4, f"replica {replica} runs as {uid}")


def enrol_and_upload(hub):
    """Enrolled through replica 0; the token refused by replica 2; a batch through 1."""
    site_ports = {r: hub.proxy(lambda r=r: [(hub.addresses[r], 8443)]) for r in range(REPLICAS)}
    hub.outpost_run("enrol", "--hub", f"https://127.0.0.1:{site_ports[0]}", "--token",
                    hub.token, "--site", SITE, "--credentials", hub.path("credentials"))
    code, out, err = hub.outpost_run("enrol", "--hub", f"https://127.0.0.1:{site_ports[2]}",
                                     "--token", hub.token, "--site", SITE, "--credentials",
                                     hub.path("credentials-again"), check_exit=False)
    check(code != 0, f"the used token enrolled again through another replica: {out}")
    check(not os.path.exists(hub.path("credentials-again", "site.crt")),
          "the refused enrolment wrote a credential")
    log("enrolled through replica 0; the token refused by replica 2: "
        + (out + err).strip().splitlines()[-1])
    with open(hub.path("policy.yaml"), "w") as f:
        f.write(POLICY)
    upload_through(hub, site_ports[1], "through-replica-1")
    log("a batch uploaded through replica 1 is in PostgreSQL once")


def replica_killed(hub):
    """SIGKILL of replica 1's hub: the Services keep answering, and it comes back."""
    operator_port = hub.proxy(hub.endpoints(9443))
    site_port = hub.proxy(hub.endpoints(8443))
    _, before, _ = hub.podman("inspect", "--format", "{{.RestartCount}} {{.State.StartedAt}}",
                              hub.container(1))
    # The process itself, as a crash or the kernel's OOM killer would: `podman kill` counts
    # as the user's stop, after which podman restarts nothing.
    _, pid, _ = hub.podman("inspect", "--format", "{{.State.Pid}}", hub.container(1))
    os.kill(int(pid), signal.SIGKILL)
    log("killed replica 1's hub (SIGKILL)")
    wait_for("replica 1 out of the endpoints, or restarted",
             lambda: not hub.ready.get(1) or hub.podman(
                 "inspect", "--format", "{{.RestartCount}} {{.State.StartedAt}}",
                 hub.container(1))[1] != before)
    log(f"replica 1 left the endpoints: {not hub.ready.get(1)}")
    for i in range(30):
        status, body = hub.call("127.0.0.1", operator_port, "/readyz")
        check(status == 200, f"the operator Service, request {i}: {status} {body}")
    upload_through(hub, site_port, "through-the-service")
    log("with replica 1 killed, the Services answer and a batch through them is stored once")
    wait_for("replica 1 ready again", lambda: hub.ready.get(1), detail=hub.logs)
    _, after, _ = hub.podman("inspect", "--format", "{{.RestartCount}}", hub.container(1))
    log(f"replica 1 restarted by the runtime (restarts: {after.strip()}) and ready again")
    check(stored(hub, "through-replica-1") == 1, "the first batch is no longer stored once")
    rows = hub.postgres.sql("SELECT count(*) FROM records WHERE site_id = 'plant-7'")
    check(rows == "2", f"PostgreSQL holds {rows} records of the site, not 2")
    # The operator's view, through the operator Service (each request to the next replica)
    for i in range(REPLICAS):
        status, body = hub.call("127.0.0.1", operator_port, "/api/v1/sites",
                                token=hub.operator_token)
        check(status == 200, f"/api/v1/sites through the Service: {status} {body}")
        sites = {s["site_id"]: s["records"] for s in json.loads(body)["sites"]}
        check(sites == {SITE: 2}, f"/api/v1/sites through the Service, request {i}: {sites}")


def peak_memory(hub):
    """Each replica's peak resident set (VmHWM), printed, not asserted."""
    peaks = []
    for replica in range(REPLICAS):
        _, pid, _ = hub.podman("inspect", "--format", "{{.State.Pid}}", hub.container(replica))
        with open(f"/proc/{pid.strip()}/status") as f:
            peaks += [line.split()[1] for line in f if line.startswith("VmHWM:")]
    return ", ".join(f"{int(kb) / 1024:.1f}" for kb in peaks) + " MiB"


def run_test(hub):
    hub.prepare()
    docs = hub.render()
    check_rendered(docs)
    start = time.monotonic()
    hub.play(docs)
    replicas_ready(hub)
    log(f"{REPLICAS} replicas ready {time.monotonic() - start:.1f} s after kube play began, "
        "each answering /readyz and /healthz as uid 65532")
    enrol_and_upload(hub)
    replica_killed(hub)
    log("measured (not asserted): each replica's peak resident set " + peak_memory(hub))


def main():
    if len(sys.argv) != 2:
        print("usage: hub_podman_test.py BUILD_DIR", file=sys.stderr)
        return 2
    hub = Hub(sys.argv[1])
    started = time.monotonic()
    try:
        run_test(hub)
    except (TestFailure, subprocess.SubprocessError, OSError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        hub.cleanup()
    print(f"PASS ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
