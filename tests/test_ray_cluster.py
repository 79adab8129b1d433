"""A real Ray cluster: two separate ``ray start`` nodes with token authentication, on 127.0.0.1 only.

The commands are the README's ("Running on a cluster"), read from it: the head makes the
cluster's token and starts; the worker node joins with the token; drivers join with
``ray.address: auto`` (on the head, token from its file) and with the head's address and the
token in the environment. Test-only flags are appended (loopback addresses, free ports, small
object stores, no dashboard) and every node gets its own HOME, so the user's ``~/.ray`` is
never read or written.

Checked: actors run on both nodes; OCR and image features are byte-identical to an in-process
run; a worker node whose processes are killed by their ids mid-run is survived with nothing lost
or read twice; a driver without the token is refused in one line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the [ray] extra is not installed")
import psutil  # noqa: E402 - installed with dvc

from tests.factories import ROOT

pytestmark = pytest.mark.slow  # the fast tier (-m "not slow") leaves these to .ci/run

RAY = str(Path(sys.executable).parent / "ray")


def readme_cluster_commands() -> list[str]:
    """The command lines of the cluster block of docs/cluster.md (the one with ``ray get-auth-token``)."""
    text = (ROOT / "docs" / "cluster.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        if "ray get-auth-token" in block:
            return [line.split("  #")[0].strip() for line in block.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    raise AssertionError("README has no bash block with 'ray get-auth-token'")


def with_token(line: str, token: str) -> str:
    """The README's placeholder TOKEN (a value: ``RAY_AUTH_TOKEN=TOKEN``) replaced by the token."""
    return re.sub(r"(?<==)TOKEN\b", token, line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_and_args(line: str) -> tuple[dict[str, str], list[str]]:
    """``A=1 B=2 cmd args`` -> ({A: 1, B: 2}, [cmd, args])."""
    words = shlex.split(line)
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    return env, words


def node_processes(port: int) -> list[psutil.Process]:
    """Every process of the cluster whose GCS listens on ``port`` (GCS, raylets, agents, workers)."""
    marks = (f"127.0.0.1:{port}", f"--gcs_server_port={port}")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.pid != os.getpid() and any(m in cmd for m in marks):
            found.append(proc)
    return found


def raylet_of(port: int, node_manager_port: int) -> psutil.Process:
    for proc in node_processes(port):
        cmd = " ".join(proc.cmdline())
        if "raylet" in cmd and f"--node_manager_port={node_manager_port}" in cmd:
            return proc
    raise AssertionError(f"no raylet with node manager port {node_manager_port}")


def actor_processes(raylet: psutil.Process) -> list[psutil.Process]:
    """The Ray Data actor-pool workers a node's raylet runs (process title ``ray::MapWorker(...)``)."""
    out = []
    for child in raylet.children(recursive=True):
        try:
            if "MapWorker" in " ".join(child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.fixture(scope="module")
def netns():
    """A network namespace with only the loopback interface, for every node and driver.

    Ray replaces a node address of 127.0.0.1 by the machine's outward address (what a remote node
    would reach), so on the host the nodes would talk over eth0; in a namespace with nothing but
    ``lo`` that address is 127.0.0.1 and no packet can leave the machine."""
    name = f"poster-genres-ray-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"a network namespace is needed to keep the cluster on loopback: {made.stderr.strip()}")
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, posters_dir, netns):
    """The README's head and worker node on 127.0.0.1, token authentication on."""
    lines = readme_cluster_commands()
    token_line = next(c for c in lines if "get-auth-token" in c)
    head_line = next(c for c in lines if "ray start --head" in c)
    worker_line = next(c for c in lines if "ray start --address" in c)
    base = tmp_path_factory.mktemp("cluster")
    head_home, worker_home, driver_home = base / "head", base / "worker", base / "driver"
    for home in (head_home, worker_home, driver_home):
        home.mkdir()
    port, head_nm, worker_nm = free_port(), free_port(), free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    clean["PATH"] = f"{Path(sys.executable).parent}:{clean.get('PATH', '')}"

    def run(line: str, home: Path, token: str = "", extra: list[str] = ()) -> str:
        line = line.replace("HEAD_IP", "127.0.0.1").replace("WORKER_IP", "127.0.0.1") \
            .replace(":6379", f":{port}").replace("--port=6379", f"--port={port}")
        line = with_token(line, token)
        env, args = env_and_args(line)
        args = [RAY if a == "ray" else a for a in args]
        # HOME: each node its own ~/.ray; the test-only flags keep two nodes apart on one machine
        proc = subprocess.run([*netns, *args, *extra], env=clean | env | {"HOME": str(home)}, capture_output=True,
                              text=True, timeout=180)
        assert proc.returncode == 0, f"{line}: {proc.stderr[-2000:]}"
        return proc.stdout

    # logical CPUs: the head can take both 1-CPU actors once the worker node is gone
    common = ["--object-store-memory", str(100 * 2**20), "--disable-usage-stats",
              "--min-worker-port", "0", "--max-worker-port", "0"]
    run(token_line, head_home)
    token = (head_home / ".ray" / "auth_token").read_text().strip()
    assert token
    try:
        run(head_line, head_home, extra=[*common, "--num-cpus", "3", "--include-dashboard=false",
                                         "--node-manager-port", str(head_nm)])
        run(worker_line, worker_home, token, extra=[*common, "--num-cpus", "1", "--node-manager-port", str(worker_nm),
                                                    "--dashboard-agent-listen-port", str(free_port()),
                                                    "--dashboard-agent-grpc-port", str(free_port()),
                                                    "--runtime-env-agent-port", str(free_port()),
                                                    "--metrics-export-port", str(free_port())])
        yield {"lines": lines, "port": port, "token": token, "head_home": head_home, "driver_home": driver_home,
               "head_nm": head_nm, "worker_nm": worker_nm, "env": clean, "netns": netns}
    finally:
        for proc in node_processes(port):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        current = Path("/tmp/ray/ray_current_cluster")  # where `auto` looks: not at a cluster that is gone
        if current.exists() and current.read_text().strip() == f"127.0.0.1:{port}":
            current.unlink()


DRIVER = textwrap.dedent("""
    import json, sys
    import polars as pl
    from pipeline.core.params import EncoderParams, OcrParams, RayParams, RayStageParams
    from pipeline.features.cache import ArrayCache, RecordCache
    from pipeline.features.ocr.run import ocr_table_arrow, run_ocr
    from pipeline.features.ocr import ocr_identity
    from pipeline.features.encoders import create_image_encoder
    from pipeline.features.store import embed_images
    import pyarrow.parquet as pq

    address, posters_file, root, out, what = sys.argv[1:6]
    posters = pl.read_parquet(posters_file)
    ray = RayParams(address=address, ocr=RayStageParams(actors=2, cpus=1, batch_size=2),
                    embed_image=RayStageParams(actors=1, cpus=1, batch_size=4))
    params = OcrParams(checkpoint_every=2)
    table, report = run_ocr(posters, params, RecordCache("ocr", ocr_identity(params), root=root), ray=ray)
    pq.write_table(ocr_table_arrow(table), out + ".ocr.parquet")
    if what == "ocr+image":
        enc = EncoderParams(name="offline", batch_size=4)
        keys, arrays, failed = embed_images(posters, create_image_encoder(enc), enc.batch_size,
                                            ArrayCache("image", create_image_encoder(enc).identity, root=root), ray=ray)
        import numpy as np
        np.savez(out + ".image.npz", keys=np.array(keys), **arrays)
    json.dump({"computed": report["computed"], "failed": report["failed"], "executor": report["executor"]},
              open(out + ".json", "w"))
""")


def start_driver(cluster, address_line: str, posters_file: Path, root: Path, out: Path, what: str):
    """A driver in its own process, with the environment of one of the README's driver lines."""
    line = with_token(address_line, cluster["token"])
    env, _ = env_and_args(line)
    address = re.search(r"ray\.address=(\S+)", line).group(1).replace("HEAD_IP", "127.0.0.1") \
        .replace(":6379", f":{cluster['port']}")
    # the driver on the head node (auto) reads the head's token file; the other only has its environment
    home = cluster["head_home"] if address == "auto" else cluster["driver_home"]
    # auto finds the cluster the head recorded on this machine (/tmp/ray/ray_current_cluster)
    args = [*cluster["netns"], sys.executable, "-c", DRIVER, address, str(posters_file), str(root), str(out), what]
    return subprocess.Popen(args,
                            cwd=ROOT, env=cluster["env"] | env | {"HOME": str(home), "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def posters_table(posters_dir: Path, n: int, path: Path) -> Path:
    import polars as pl

    from pipeline.core.io import sha256_file

    files = sorted((posters_dir / "images").glob("*.jpg"))[:n]
    pl.DataFrame({"sha256": [sha256_file(f) for f in files], "path": [str(f) for f in files]}).write_parquet(path)
    return path


def in_process(posters_file: Path, root: Path, with_image: bool):
    """The same work in this process (no Ray): what the cluster must reproduce byte for byte."""
    import numpy as np
    import polars as pl

    from pipeline.core.params import EncoderParams, OcrParams
    from pipeline.features.cache import ArrayCache, RecordCache
    from pipeline.features.encoders import create_image_encoder
    from pipeline.features.ocr import ocr_identity
    from pipeline.features.ocr.run import ocr_table_arrow, run_ocr
    from pipeline.features.store import embed_images

    posters = pl.read_parquet(posters_file)
    params = OcrParams(checkpoint_every=2)
    table, _ = run_ocr(posters, params, RecordCache("ocr", ocr_identity(params), root=root))
    image = None
    if with_image:
        enc = EncoderParams(name="offline", batch_size=4)
        encoder = create_image_encoder(enc)
        keys, arrays, _ = embed_images(posters, encoder, enc.batch_size, ArrayCache("image", encoder.identity,
                                                                                    root=root))
        image = {"keys": np.array(keys), **arrays}
    return ocr_table_arrow(table), image


def driver_lines(cluster) -> tuple[str, str]:
    drivers = [c for c in cluster["lines"] if "ray.address=" in c]
    auto = next(c for c in drivers if "ray.address=auto" in c)
    address = next(c for c in drivers if "ray.address=HEAD_IP" in c)
    return auto, address


def test_readme_names_the_token_step_and_both_ways_to_join(cluster):
    auto, address = driver_lines(cluster)
    assert "RAY_AUTH_MODE=token" in auto and "RAY_AUTH_TOKEN=TOKEN" in address
    assert any("RAY_AUTH_TOKEN=TOKEN" in c and "ray start --address" in c for c in cluster["lines"])


def test_auto_on_the_head_runs_actors_on_both_nodes_byte_identical(cluster, posters_dir, tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    posters_file = posters_table(posters_dir, 8, tmp_path / "posters.parquet")
    auto, _ = driver_lines(cluster)
    driver = start_driver(cluster, auto, posters_file, tmp_path / "cache", tmp_path / "out", "ocr+image")
    head = raylet_of(cluster["port"], cluster["head_nm"])
    worker = raylet_of(cluster["port"], cluster["worker_nm"])
    seen = {"head": set(), "worker": set()}
    while driver.poll() is None:  # which nodes run actor-pool workers while the driver works
        seen["head"] |= {p.pid for p in actor_processes(head)}
        seen["worker"] |= {p.pid for p in actor_processes(worker)}
        time.sleep(0.2)
    output = driver.stdout.read()
    assert driver.returncode == 0, output[-3000:]
    assert seen["head"] and seen["worker"], f"actors ran on {seen}"
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["computed"] == 8 and report["failed"] == [] and report["executor"] == "ray auto"
    local_ocr, local_image = in_process(posters_file, tmp_path / "local", with_image=True)
    assert pq.read_table(tmp_path / "out.ocr.parquet").equals(local_ocr)
    on_cluster = np.load(tmp_path / "out.image.npz")
    for name, array in local_image.items():
        assert on_cluster[name].tobytes() == array.tobytes(), name


def test_a_worker_node_killed_mid_run_loses_nothing_and_reads_nothing_twice(cluster, posters_dir, tmp_path):
    import pyarrow.parquet as pq

    n = 24
    posters_file = posters_table(posters_dir, n, tmp_path / "posters.parquet")
    _, address = driver_lines(cluster)
    cache = tmp_path / "cache"
    driver = start_driver(cluster, address, posters_file, cache, tmp_path / "out", "ocr")
    worker = raylet_of(cluster["port"], cluster["worker_nm"])
    deadline = time.monotonic() + 240
    # wait until the worker node's actor is reading and a first part is stored, then end every
    # process of that node by its id: raylet, agents and the actor
    while not (actor_processes(worker) and list(cache.rglob("part-*"))):
        assert driver.poll() is None and time.monotonic() < deadline, driver.stdout.read()[-3000:]
        time.sleep(0.1)
    victims = [worker, *worker.children(recursive=True)]
    for proc in victims:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    parts_at_kill = len(list(cache.rglob("part-*")))
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, output[-3000:]
    assert parts_at_kill < n // 2, "the node was killed after the run, not during it"
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["computed"] == n and report["failed"] == []
    # every poster stored once: the cache parts hold each key exactly once
    keys = [k for part in sorted(cache.rglob("part-*")) for k in pq.read_table(part).column("key").to_pylist()]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == n
    local_ocr, _ = in_process(posters_file, tmp_path / "local", with_image=False)
    assert pq.read_table(tmp_path / "out.ocr.parquet").equals(local_ocr)


def test_a_driver_without_the_token_is_refused_in_one_line(cluster, posters_dir, tmp_path):
    posters_file = posters_table(posters_dir, 2, tmp_path / "posters.parquet")
    _, address = driver_lines(cluster)
    no_token = address.replace("RAY_AUTH_TOKEN=TOKEN", "")
    driver = start_driver(cluster, no_token, posters_file, tmp_path / "cache", tmp_path / "out", "ocr")
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode != 0
    last = output.strip().splitlines()[-1]
    assert re.match(r"^.*ray\.address '127\.0\.0\.1:\d+': ", last), output[-3000:]
    assert "RAY_AUTH_TOKEN" in last
