"""``python -m sim.fetch`` against a real HTTP server on 127.0.0.1 (no test touches the internet)."""
import functools
import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import SHARED_DATA
from sim.fetch import FetchError, fetch
from sim.marketdata import SERIES, DataError

REPO = Path(__file__).resolve().parent.parent


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture()
def server():
    """An HTTP server on 127.0.0.1 serving a directory; yields (url template, request log, root)."""
    started = []

    def start(root: Path):
        handler = type("Handler", (_Quiet,), {"requests": []})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                functools.partial(handler, directory=str(root)))
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/{{series}}.csv", handler.requests

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_downloads_every_series_and_keeps_them(server, tmp_path):
    url, requests = server(SHARED_DATA)
    files = fetch(str(tmp_path), url, progress=False)
    assert sorted(p.name for p in files) == sorted(f"{n}.csv" for n in SERIES)
    for name in SERIES:
        assert (tmp_path / f"{name}.csv").read_bytes() == (SHARED_DATA / f"{name}.csv").read_bytes()
    assert len(requests) == len(SERIES)
    fetch(str(tmp_path), url, progress=False)          # cached: nothing downloaded again
    assert len(requests) == len(SERIES)
    fetch(str(tmp_path), url, refresh=True, names=["FEDFUNDS"], progress=False)
    assert requests[-1] == "/FEDFUNDS.csv"


def test_a_bad_download_is_not_kept(server, tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "FEDFUNDS.csv").write_text("<html>Service unavailable</html>\n")
    url, _ = server(root)
    with pytest.raises(DataError, match="FEDFUNDS: corrupt file"):
        fetch(str(tmp_path / "cache"), url, names=["FEDFUNDS"], progress=False)
    assert not (tmp_path / "cache" / "FEDFUNDS.csv").exists()


def test_offline_says_what_to_download_and_where(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/{{series}}.csv"
    with pytest.raises(FetchError, match="by hand"):
        fetch(str(tmp_path), url, names=["DGS10"], progress=False)


def _cli(*args):
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sim.fetch", *args], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_fetches_then_a_snapshot_reads_the_cache(server, tmp_path):
    url, _ = server(SHARED_DATA)
    out = _cli(f"data.dir={tmp_path}", f"data.url='{url}'")
    assert out.returncode == 0, out.stderr
    assert f"8 series in {tmp_path}" in out.stdout
    assert {p.name for p in tmp_path.glob("*.csv")} == {f"{n}.csv" for n in SERIES}


def test_cli_offline_is_one_line(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/{{series}}.csv"
    out = _cli(f"data.dir={tmp_path}", f"data.url='{url}'")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "by hand" in lines[0] and str(tmp_path) in lines[0] and "DEXJPUS" in lines[0]
