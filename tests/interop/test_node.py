"""The node as a process: shutdown, `junction check`, `junction init`, `crossbar check`."""

import asyncio
import json
import shutil
import signal
import subprocess
import time

import pytest

from conftest import CROSSBAR, JUNCTION, REPO, free_port, make_config, require_binary
from wamp_client import close, connect, run

CHECK_TIMEOUT = 20


def junction(*args, timeout=CHECK_TIMEOUT):
    require_binary()
    p = subprocess.run(
        [str(JUNCTION), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    print(f"$ junction {' '.join(args)}  -> exit {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}")
    return p


def write_config(dir_path, config):
    dir_path.mkdir(parents=True, exist_ok=True)
    (dir_path / "config.json").write_text(json.dumps(config, indent=2))
    return dir_path


# --------------------------------------------------------------------------
# Shutdown


@pytest.mark.parametrize("ser", ["json", "cbor"])
def test_sigterm_sends_system_shutdown(router_factory, ser):
    r = router_factory()

    async def body():
        session = await connect(r.url, ser)
        try:
            loop = asyncio.get_running_loop()
            t0 = time.monotonic()
            r.proc.send_signal(signal.SIGTERM)
            details = await asyncio.wait_for(asyncio.shield(session.left), 10)
            assert details.reason == "wamp.close.system_shutdown", f"onLeave reason={details.reason!r}"
            rc = await loop.run_in_executor(None, r.proc.wait, 10)
            dt = time.monotonic() - t0
            print(f"node exited with {rc} {dt:.2f}s after SIGTERM")
            assert rc == 0, f"node exited with {rc} after SIGTERM"
        finally:
            await close(session, timeout=2)

    try:
        run(body())
    finally:
        if r.proc.poll() is not None:
            r.terminate()  # records the exit, closes the log


def test_sigterm_idle_node_exits_zero(router_factory):
    r = router_factory()
    rc, dt = r.terminate()
    assert rc == 0, f"exit code {rc} after SIGTERM\n{r.log()}"
    assert dt < 10


def test_sigint_exits_zero(router_factory):
    r = router_factory()
    r.proc.send_signal(signal.SIGINT)
    try:
        rc = r.proc.wait(10)
    except subprocess.TimeoutExpired:
        raise AssertionError("node did not exit within 10 s of SIGINT") from None
    r.terminate()
    assert rc == 0, f"exit code {rc} after SIGINT"


# --------------------------------------------------------------------------
# junction check / init


def test_check_good_config(tmp_path):
    d = write_config(tmp_path / "node", make_config(free_port()))
    p = junction("check", "--cbdir", str(d))
    assert p.returncode == 0, f"exit {p.returncode}"


def test_check_typo_in_nested_key(tmp_path):
    cfg = make_config(free_port())
    perm = cfg["workers"][0]["realms"][0]["roles"][0]["permissions"][0]
    perm["allow"] = {"publsh": True}
    d = write_config(tmp_path / "node", cfg)
    p = junction("check", "--cbdir", str(d))
    out = p.stdout + p.stderr
    assert p.returncode == 64, f"exit {p.returncode}, expected 64"
    assert "workers[0].realms[0].roles[0].permissions[0].allow" in out, out
    assert "publsh" in out, out


def test_check_sample_config(tmp_path):
    """junction accepts the repository's sample node configuration."""
    src = REPO / "node-config"
    assert (src / "config.json").is_file(), f"{src}/config.json is missing"
    dst = tmp_path / "node-config"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.redb", "node.pid", "*.log"))
    # The sample serves ../static (relative to the node directory), as the repository lays out.
    shutil.copytree(REPO / "static", tmp_path / "static")
    p = junction("check", "--cbdir", str(dst))
    assert p.returncode == 0, f"exit {p.returncode}"


def test_check_invalid_json(tmp_path):
    d = tmp_path / "node"
    d.mkdir()
    (d / "config.json").write_text('{"version": 2, "workers": [')
    p = junction("check", "--cbdir", str(d))
    assert p.returncode != 0, "a truncated config.json passed the check"


def test_check_wrong_version(tmp_path):
    cfg = make_config(free_port())
    cfg["version"] = 1
    d = write_config(tmp_path / "node", cfg)
    p = junction("check", "--cbdir", str(d))
    assert p.returncode != 0, "version 1 config passed the check"


def test_init_writes_checkable_config(tmp_path):
    d = tmp_path / "newnode"
    p = junction("init", "--cbdir", str(d))
    assert p.returncode == 0, f"init exit {p.returncode}"
    assert (d / "config.json").is_file(), f"no config.json in {sorted(x.name for x in d.iterdir())}"
    json.loads((d / "config.json").read_text())
    p = junction("check", "--cbdir", str(d))
    assert p.returncode == 0, f"check of the init config: exit {p.returncode}"


# --------------------------------------------------------------------------
# Crossbar accepts our configs


def crossbar_check(cbdir):
    if not CROSSBAR.exists():
        pytest.fail(f"crossbar not installed at {CROSSBAR} (tests/run creates target/cbvenv)")
    p = subprocess.run(
        [str(CROSSBAR), "check", "--cbdir", str(cbdir)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=str(cbdir),
    )
    out = p.stdout + p.stderr
    print(f"$ crossbar check --cbdir {cbdir} -> exit {p.returncode}\n{out}")
    return p.returncode, out


def test_crossbar_check_sample_config(tmp_path):
    src = REPO / "node-config"
    assert (src / "config.json").is_file(), f"{src}/config.json is missing"
    dst = tmp_path / "node-config"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.redb", "node.pid", "*.log"))
    shutil.copytree(REPO / "static", tmp_path / "static")
    rc, out = crossbar_check(dst)
    assert rc == 0, f"crossbar check exit {rc}"
    assert "looks good" in out


def test_crossbar_check_init_config(tmp_path):
    d = tmp_path / "newnode"
    assert junction("init", "--cbdir", str(d)).returncode == 0
    rc, out = crossbar_check(d)
    assert rc == 0 and "looks good" in out, f"crossbar check exit {rc}"


def test_crossbar_check_fixture_config(tmp_path):
    """The config the interop fixture feeds junction is valid Crossbar too."""
    d = write_config(tmp_path / "node", make_config(free_port()))
    rc, out = crossbar_check(d)
    assert rc == 0 and "looks good" in out, f"crossbar check exit {rc}"


def test_junction_start_rejects_invalid_config(tmp_path):
    cfg = make_config(free_port())
    cfg["workers"][0]["realms"][0]["roles"][0]["permissions"][0]["allow"] = {"publsh": True}
    d = write_config(tmp_path / "node", cfg)
    require_binary()
    try:
        p = subprocess.run(
            [str(JUNCTION), "start", "--cbdir", str(d)], capture_output=True, text=True, timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("junction start kept running with an invalid config") from None
    assert p.returncode != 0, "junction start exited 0 with an invalid config"
