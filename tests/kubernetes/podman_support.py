"""What the podman tests share (podman_test.py for the edge, hub_podman_test.py for the hub):
their failure type, logging, free loopback ports, running a program and stopping one.

Imported by name: a script's own folder is first on Python's path."""
import socket
import subprocess
import time


class TestFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def logger(test_name):
    """A log function whose lines carry the test's name and the time."""
    def log(message):
        print(f"[{test_name} {time.strftime('%H:%M:%S')}] {message}", flush=True)
    return log


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, check_exit=True, env=None, timeout=300, stdin=None):
    """Runs a program; returns (exit code, stdout, stderr)."""
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                       input=stdin)
    if check_exit and p.returncode != 0:
        raise TestFailure(f"{' '.join(argv)} exited {p.returncode}\nstdout: {p.stdout}\n"
                          f"stderr: {p.stderr}")
    return p.returncode, p.stdout, p.stderr


def stop_process(process, timeout):
    """Terminates a subprocess.Popen and waits `timeout` seconds for it, then kills it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rename_volumes(pod, names, configmaps):
    """Gives a pod's volumes this run's podman names: each Secret its run's name (required:
    optional false), each ConfigMap its renamed one, each emptyDir (a named volume in podman
    4.3) the run's suffix. Records the volumes made in names["volumes"]; returns the emptyDirs'
    old names to new ones."""
    renamed = {}
    for volume in pod["volumes"]:
        if "secret" in volume:
            secret = volume["secret"]
            secret["secretName"] = names["secrets"][secret["secretName"]]
            secret["optional"] = False
            names["volumes"].add(secret["secretName"])
        elif "configMap" in volume:
            volume["configMap"]["name"] = configmaps[volume["configMap"]["name"]]
        elif "emptyDir" in volume:
            renamed[volume["name"]] = f"{volume['name']}-{names['suffix']}"
            volume["name"] = renamed[volume["name"]]
            names["volumes"].add(volume["name"])
    return renamed
