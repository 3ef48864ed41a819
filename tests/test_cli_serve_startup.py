"""`reelserve serve` announces only what will work, stops quietly, and pins workers to GPUs.

Every test runs the real `reelserve` binary; GPUs are the declared seam: the
``device_engines`` fixture engine writes down the device its worker was given.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from cli_binary import command, reelserve
from conftest import Service, free_port, make_service, process_env


def test_a_port_in_use_exits_3_before_creating_or_printing_a_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(command("serve"), env=process_env(tmp_path / "data", port=port),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "in use" in done.stderr
    assert "rs_" not in done.stdout + done.stderr and "Serving on" not in done.stdout
    assert not (tmp_path / "data").exists()


def test_an_engine_that_cannot_load_exits_3_without_a_key(tmp_path: Path) -> None:
    done = subprocess.run(command("serve", "--engine", "nonesuch"),
                          env=process_env(tmp_path / "data", port=free_port()),
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 3
    assert "cannot load in any worker" in done.stderr
    assert "rs_" not in done.stdout and "Serving on" not in done.stdout


def test_serving_on_comes_after_a_worker_has_loaded_its_engine(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    try:
        # Nothing waited after "Serving on": the worker's first heartbeat, sent once its
        # engine child is up, is already in the store, and the key works.
        workers = service.store().list_workers()
        assert len(workers) == 1
        with service.client() as client:
            assert client.get("/readyz").status_code == 200
    finally:
        service.stop()


def test_ctrl_c_stops_serve_and_its_workers_without_restart_warnings(tmp_path: Path) -> None:
    env = process_env(tmp_path / "data", port=free_port(), engine="fixture_engines:create_engine")
    with subprocess.Popen(command("serve", "--workers", "2"), env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Serving on"):
                break
        time.sleep(1)
        os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C: the foreground group
        rest = process.stdout.read()
        assert process.wait(60) == 0
    assert "starting another" not in rest and "exited with" not in rest, rest


def _devices(data_dir: Path, count: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reports = sorted((data_dir / "devices").glob("*.json")) \
            if (data_dir / "devices").exists() else []
        if len(reports) >= count:
            return [json.loads(report.read_text()) for report in reports]
        time.sleep(0.1)
    raise TimeoutError("the engines did not report their devices")


def test_gpus_pin_one_worker_to_each_listed_gpu(tmp_path: Path) -> None:
    service = Service(tmp_path / "data", free_port(),
                      {"engine": "device_engines:create_engine", "gpus": "0,2",
                       "ltx2_device": "cuda:1"})
    service.start(workers=2)
    try:
        devices = _devices(service.data_dir, 2)
        assert sorted(report["cuda_visible_devices"] for report in devices) == ["0", "2"]
        assert {report["cuda_device_order"] for report in devices} == {"PCI_BUS_ID"}
        assert sorted(report["worker_gpu"] for report in devices) == ["0", "2"]
        # The only GPU a pinned engine sees is cuda:0: an explicit cuda:1 would not exist.
        assert {report["ltx2_device"] for report in devices} == {"cuda"}

        status = reelserve("status", data_dir=service.data_dir)
        assert status.returncode == 0, status.stderr
        rows = [line for line in status.stdout.splitlines() if "alive" in line]
        assert len(rows) == 2
        assert sorted(row.split("│")[3].strip() for row in rows) == ["0", "2"]

        metrics = httpx.get(f"{service.base_url}/metrics", timeout=10).text
        pinned = [line for line in metrics.splitlines()
                  if line.startswith("reelserve_worker_gpu{")]
        assert len(pinned) == 2 and {'gpu="0"' in pinned[0] + pinned[1],
                                     'gpu="2"' in pinned[0] + pinned[1]} == {True}
        by_server = reelserve("status", "--server", service.base_url)
        assert by_server.returncode == 0 and "ready" in by_server.stdout
        cells = [[cell.strip() for cell in line.split("│")[1:-1]]
                 for line in by_server.stdout.splitlines() if "│" in line]
        assert sorted(row[1] for row in cells if len(row) == 2 and ":" in row[0]) == ["0", "2"]
    finally:
        service.stop()


def test_listed_gpus_give_one_worker_each_by_default(tmp_path: Path) -> None:
    env = process_env(tmp_path / "data", port=free_port(), engine="device_engines:create_engine")
    with subprocess.Popen(command("serve", "--gpus", "0,1,5"), env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        assert process.stdout is not None
        try:
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("Serving on"):
                    break
            assert any("3 worker(s) on GPU 0,1,5" in line for line in lines), lines
            devices = _devices(tmp_path / "data", 3)
            assert sorted(report["cuda_visible_devices"] for report in devices) == \
                ["0", "1", "5"]
        finally:
            process.terminate()
            process.communicate(timeout=60)


def test_more_workers_than_gpus_share_them_in_turn(tmp_path: Path) -> None:
    service = Service(tmp_path / "data", free_port(),
                      {"engine": "device_engines:create_engine", "gpus": "3"})
    service.start(workers=2)
    try:
        devices = _devices(service.data_dir, 2)
        assert [report["cuda_visible_devices"] for report in devices] == ["3", "3"]
    finally:
        service.stop()


def test_bad_gpu_list_is_refused_naming_the_option(tmp_path: Path) -> None:
    done = subprocess.run(command("serve", "--gpus", "0,x"),
                          env=process_env(tmp_path / "data", port=free_port()),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "gpus" in done.stderr and "0,2,5" in done.stderr


def test_a_bad_gpu_list_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    env = {**process_env(tmp_path / "data", port=free_port()), "REELSERVE_GPUS": "1,1"}
    done = subprocess.run(command("serve"), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "REELSERVE_GPUS" in done.stderr and "GPU 1 twice" in done.stderr
