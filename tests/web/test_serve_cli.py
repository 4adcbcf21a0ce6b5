"""`copyguard users` and `copyguard serve` as an operator uses them: accounts and keys made on
the command line work against the server process at once, a revoked key or disabled account
stops working at once, and the server stops on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.monitor.conftest import make_cli
from tests.web.conftest import PASSWORD, _free_port


def _wait_up(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90  # a bound: a loaded CI machine starts Python slowly
    while True:
        assert server.poll() is None, server.communicate()[1][-3000:]
        try:
            httpx.get(f"{url}/api/openapi.json", timeout=2)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.2)


def test_accounts_from_the_cli_work_on_the_served_api(tmp_path: Path) -> None:
    cli = make_cli(tmp_path / "home")
    cli("holders", "add", "Acme", "--email", "legal@acme.example")
    cli.env["COPYGUARD_PASSWORD"] = PASSWORD
    cli("users", "add", "alice", "--role", "holder", "--holder", "Acme")
    cli("users", "add", "robot", "--role", "operator", "--no-password")
    refused = cli("users", "add", "bob", "--role", "legal", ok=False)
    assert refused.exit_code == 1 and "belongs to one rights-holder" in refused.stderr
    key = cli("users", "key", "add", "robot", "--name", "ci").stdout.strip()
    assert key.startswith("cgk_")
    listed = cli.json_lines("users", "list", "--json")
    assert [(u["username"], u["role"], u["password"]) for u in listed] == [
        ("alice", "holder", True), ("robot", "operator", False)]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "monitor", "serve", "--listen",
                               f"127.0.0.1:{port}"], env=cli.env, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_up(url, server)
        with httpx.Client(base_url=url, timeout=10) as client:
            me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
            assert me.status_code == 200 and me.json()["username"] == "robot"
            login = client.post("/api/v1/login",
                                json={"username": "alice", "password": PASSWORD})
            assert login.status_code == 200 and login.json()["holder_id"] is not None
            prefix = key.split("_")[1]
            cli("users", "key", "revoke", prefix)
            again = client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
            assert again.status_code == 401
            cli("users", "disable", "alice")
            client.cookies.set("copyguard_session", login.cookies["copyguard_session"])
            assert client.get("/api/v1/me").status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
        code = server.returncode
    assert code == 0, stderr[-3000:]
    assert "no problems" in cli("audit", "verify").stdout


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    cli = make_cli(tmp_path / "home")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "monitor", "serve", "--listen",
                                 f"127.0.0.1:{port}"], env=cli.env, text=True,
                                capture_output=True, timeout=60)
    assert result.returncode == 1
    assert f"could not answer on 127.0.0.1:{port}" in result.stderr
