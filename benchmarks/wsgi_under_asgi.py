"""A WSGI version under the ASGI router (uvicorn) against the same app under gunicorn gthread.

Run: ``python benchmarks/wsgi_under_asgi.py`` (``--seconds 5`` per case by default). Each case
starts a real server on 127.0.0.1 and measures, with keep-alive clients on threads:

* requests per second for a small WSGI app (``/``) and a Flask app (``/flask``);
* the wall time of six concurrent requests to a WSGI view that sleeps 1 s (``/sleep``): about
  1 s when requests run concurrently, 6 s when they run one at a time.

Cases: gunicorn gthread (1 worker, 8 threads) serving the WSGI app bare; uvicorn serving
CohortRouter with the app as a WSGI version next to an ASGI one (our bridge); and, for
reference, uvicorn with the app mounted through asgiref's ``WsgiToAsgi`` and through a2wsgi
(when installed), the two bridges considered.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# --- the apps the servers load (this module, imported by them) --------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(1)
    body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _flask() -> Any:
    import flask

    app = flask.Flask("bench")

    @app.route("/flask")
    def page() -> str:
        return "ok"

    return app


def _combined() -> Any:
    flask_app = _flask()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        target = flask_app if environ["PATH_INFO"] == "/flask" else wsgi_app
        return target(environ, start_response)

    return app


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"asgi"})


def _make(kind: str) -> Any:
    app = _combined()
    if kind == "router":
        from cohortroute import CohortRouter

        router = CohortRouter(
            {"asgi": _asgi_app, "wsgi": app},
            default="wsgi",
            domains=["example.com"],
            register_tenants=False,
        )
        return router
    if kind == "asgiref":
        from asgiref.wsgi import WsgiToAsgi

        return WsgiToAsgi(app)  # type: ignore[no-untyped-call]
    if kind == "a2wsgi":
        from a2wsgi import WSGIMiddleware

        return WSGIMiddleware(app)
    return app


KIND = os.environ.get("BENCH_KIND", "")
if KIND:
    app = _make(KIND)


# --- the load -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(kind: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, BENCH_KIND=kind, PYTHONPATH=f"{HERE}{os.pathsep}{ROOT / 'src'}")
    bindir = Path(sys.executable).parent
    if kind == "wsgi":
        command = [str(bindir / "gunicorn"), "-k", "gthread", "-w", "1", "--threads", "8"]
        command += ["-b", f"127.0.0.1:{port}", "wsgi_under_asgi:app"]
    else:
        command = [str(bindir / "uvicorn"), "--port", str(port), "--log-level", "warning"]
        command += ["--no-access-log", "wsgi_under_asgi:app"]
    quiet = subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=HERE, env=env, stdout=quiet, stderr=quiet)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{kind}: the server did not start")


def _get(connection: http.client.HTTPConnection, path: str) -> None:
    connection.request("GET", path, headers={"Host": "acme.example.com"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"{path}: HTTP {response.status}")


def _throughput(port: int, path: str, seconds: float, clients: int) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            _get(connection, path)
            counts[i] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def _six_sleeps(port: int) -> float:
    def one(_: int) -> None:
        _get(http.client.HTTPConnection("127.0.0.1", port, timeout=20), "/sleep")

    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(one, range(6)))
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput case")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)
    cases = [("wsgi", "gunicorn gthread, bare"), ("router", "uvicorn, CohortRouter")]
    cases += [("asgiref", "uvicorn, asgiref WsgiToAsgi")]
    try:
        import a2wsgi  # noqa: F401

        cases.append(("a2wsgi", "uvicorn, a2wsgi"))
    except ImportError:
        pass
    print(f"{'server':32s} {'req/s /':>10s} {'req/s /flask':>13s} {'6 x 1 s sleeps':>15s}")
    for kind, label in cases:
        port = _free_port()
        process = _serve(kind, port)
        try:
            _throughput(port, "/", 0.5, args.clients)  # warm up
            plain = _throughput(port, "/", args.seconds, args.clients)
            flask = _throughput(port, "/flask", args.seconds, args.clients)
            sleeps = _six_sleeps(port)
        finally:
            process.terminate()
            process.wait(10)
        print(f"{label:32s} {plain:10.0f} {flask:13.0f} {sleeps:14.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
