"""Load a page in headless Chromium and report what a person would see: errors, images, a screenshot.

Speaks the DevTools protocol over ``--remote-debugging-pipe`` (JSON messages
ending in NUL on file descriptors 3 and 4), so it needs no websocket client,
Selenium or Playwright: only a ``chromium`` binary (Debian: ``apt-get
install chromium``). Console errors are ``console.error`` calls, uncaught
exceptions and the browser's own error log entries (e.g. a resource that
failed to load).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import http.server
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]
IMAGES_JS = ("JSON.stringify(Array.from(document.images).map(i => ({src: i.src.slice(0, 64), "
             "complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))")


def find_chromium() -> str | None:
    """``$SEQBENCH_CHROMIUM``, else ``chromium`` (or ``chromium-browser``, ``google-chrome``) on the PATH."""
    env = os.environ.get("SEQBENCH_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@dataclass
class Page:
    url: str
    title: str = ""
    text: str = ""
    errors: list = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    images: list = field(default_factory=list)  # {src, complete, width, height} per <img>
    screenshot: bytes = b""  # PNG


class Chromium:
    """One headless browser; use as a context manager."""

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900):
        binary = binary or find_chromium()
        if not binary:
            raise FileNotFoundError("no chromium binary found (apt-get install chromium, or set SEQBENCH_CHROMIUM)")
        self._profile = tempfile.mkdtemp(prefix="seqbench-chromium-")
        child_in, self._out = os.pipe()
        self._in, child_out = os.pipe()

        def plumb():  # the child reads commands on fd 3 and writes replies on fd 4
            a, b = fcntl.fcntl(child_in, fcntl.F_DUPFD, 10), fcntl.fcntl(child_out, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, pass_fds=(3, 4), preexec_fn=plumb,
        )
        os.close(child_in)
        os.close(child_out)
        self._id = 0
        self._replies: dict = {}
        self._events: queue.Queue = queue.Queue()
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()

    def _reader(self):
        buffer = b""
        while True:
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                with self._lock:
                    self._replies["closed"] = True
                    self._lock.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        self._replies[message["id"]] = message
                        self._lock.notify_all()
                else:
                    self._events.put(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._id not in self._replies:
                if self._replies.get("closed") or time.monotonic() > deadline:
                    raise TimeoutError(f"chromium did not answer {method}: {self.stderr()[-2000:]}")
                self._lock.wait(0.1)
            reply = self._replies.pop(self._id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def events(self, timeout: float):
        """Events as they come, until ``timeout`` seconds pass without one."""
        while True:
            try:
                yield self._events.get(timeout=timeout)
            except queue.Empty:
                return

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def load(self, url: str, ready: str = "true", timeout: float = 30, screenshot: bool = True) -> Page:
        """Open ``url``, wait for the load event and for the JavaScript expression ``ready``; collect the page."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        page = Page(url)
        self.send("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + timeout
        loaded = False
        while time.monotonic() < deadline:
            for event in self.events(0.2):
                loaded |= event.get("method") == "Page.loadEventFired"
                page.errors += _errors(event)
            if loaded and self._evaluate(session, ready):
                break
        else:
            page.errors.append(f"page not ready within {timeout}s (load event: {loaded}, ready: {ready})")
        for event in self.events(0.3):  # late errors
            page.errors += _errors(event)
        page.title = self._evaluate(session, "document.title")
        page.text = self._evaluate(session, "document.body ? document.body.innerText : ''")
        page.images = json.loads(self._evaluate(session, IMAGES_JS))
        if screenshot:
            shot = self.send("Page.captureScreenshot", {"format": "png"}, session)
            page.screenshot = base64.b64decode(shot["data"])
        self.send("Target.closeTarget", {"targetId": target})
        return page

    def _evaluate(self, session, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        return result.get("result", {}).get("value")

    def close(self):
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(timeout=5)
        for fd in (self._in, self._out):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _errors(event: dict) -> list[str]:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        args = (str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
        return ["console.error: " + " ".join(args)]
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return ["uncaught: " + details.get("exception", {}).get("description", details.get("text", ""))]
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return [f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip()]
    return []


@contextlib.contextmanager
def serve(directory: str | Path):
    """Serve ``directory`` over HTTP on 127.0.0.1 (pages that fetch JSON, like asv's, need http://)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

