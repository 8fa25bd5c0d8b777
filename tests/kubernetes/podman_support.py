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
