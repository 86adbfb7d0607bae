"""`make up` after a crash: the local broker, PostgreSQL and Prometheus killed with -9 come back
on the next start, with what they had accepted. Right after kill -9 the dead pid is still
visible (a zombie until reaped), which the scripts once took for a running server.

The scripts run in a state dir and on ports of their own, so no other stack is touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.kafka import ensure_topics
from shared.topics import MENTIONS

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "deploy" / "local"
SCRIPTS = ("postgres.sh", "kafka.sh", "prometheus.sh")
ACCEPTED = b"acknowledged before the crash"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalStack:
    """deploy/local/kafka.sh, postgres.sh and prometheus.sh with their own state dir and ports."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.kafka_port = free_port()
        self.env = {
            **os.environ,
            "SCS_STATE_DIR": str(state_dir),
            "SCS_LOCAL_KAFKA_PORT": str(self.kafka_port),
            "SCS_LOCAL_KAFKA_CONTROLLER_PORT": str(free_port()),
            "SCS_LOCAL_PG_PORT": str(free_port()),
            "SCS_LOCAL_PROMETHEUS_PORT": str(free_port()),
            # Nothing listens on the discard port: this Prometheus scrapes no one's services.
            "SCS_LOCAL_PROMETHEUS_TARGETS": "127.0.0.1:9",
        }
        self.bootstrap = f"127.0.0.1:{self.kafka_port}"

    def run(self, script: str, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(LOCAL / script), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=150,
        )

    def start(self, script: str) -> None:
        started = self.run(script, "start")
        assert started.returncode == 0, started.stderr[-2000:]

    def status(self, script: str) -> str:
        return self.run(script, "status").stdout

    def pid(self, name: str) -> int:
        return int((self.state_dir / "run" / f"{name}.pid").read_text())

    def postmaster_pid(self) -> int:
        pidfile = self.state_dir / "postgres" / "data" / "postmaster.pid"
        return int(pidfile.read_text().splitlines()[0])


@pytest.fixture
def local_stack() -> Iterator[LocalStack]:
    # Under /tmp with mode 755: as root, PostgreSQL runs as the postgres user, which must reach it.
    state_dir = Path(tempfile.mkdtemp(prefix="scs-stack-", dir="/tmp"))
    state_dir.chmod(0o755)
    stack = LocalStack(state_dir)
    try:
        yield stack
    finally:
        for script in SCRIPTS:
            stack.run(script, "stop")
        shutil.rmtree(state_dir, ignore_errors=True)


async def test_start_after_kill_9_brings_back_what_is_down(local_stack: LocalStack) -> None:
    for script in SCRIPTS:
        local_stack.start(script)
    await ensure_topics(local_stack.bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=local_stack.bootstrap, acks="all")
    await producer.start()
    try:
        accepted = await producer.send_and_wait(MENTIONS.name, ACCEPTED, key=b"conversation")
    finally:
        await producer.stop()

    def pids() -> set[int]:
        return {
            local_stack.pid("kafka"),
            local_stack.pid("prometheus"),
            local_stack.postmaster_pid(),
        }

    old_pids = pids()
    for pid in old_pids:
        os.kill(pid, signal.SIGKILL)

    for script in SCRIPTS:
        assert "stopped" in local_stack.status(script), script
        local_stack.start(script)  # postgres.sh also creates the role and databases with psql
        assert "running" in local_stack.status(script), script
    assert old_pids.isdisjoint(pids())

    # The broker serves again, and what it had acknowledged survived the crash.
    partition = TopicPartition(MENTIONS.name, accepted.partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=local_stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([partition])
        consumer.seek(partition, accepted.offset)
        records = await consumer.getmany(partition, timeout_ms=30_000)
    finally:
        await consumer.stop()
    assert [record.value for record in records[partition]][:1] == [ACCEPTED]
