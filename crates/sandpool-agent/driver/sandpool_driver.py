"""sandpool Python driver: hosts IPython's InteractiveShell behind a framed pipe.

The sandpool agent starts it as ``$SANDPOOL_PYTHON $SANDPOOL_DRIVER`` with requests on fd 3
and responses on fd 4. A frame is a 4-byte big-endian length followed by a msgpack map.
Requests are ``{"op": "execute", "code": str}``, ``{"op": "reseed", "seed": bytes}``,
``{"op": "warm", "modules": [str]}`` and ``{"op": "ping"}``; each gets exactly one response
map. The first frame the driver sends is ``{"ready": True}``, once IPython is up.

Everything a cell writes to fds 1 and 2 (Python, C extensions, subprocesses) lands in
unlinked temporary files that are read back after the cell, so user output can never reach
the channel. Startup errors go to the original stderr.

Python's sys.stdout and sys.stderr are fully buffered and flushed at the end of a cell and
before the driver forks or starts a subprocess or os.system() command, so output from
Python and from those commands keeps its order. Bytes written straight to fd 1 or 2
(os.write, C code) can come before Python output printed earlier in the same cell.
Under gVisor every system call after a pause costs ~0.1 ms, so the driver keeps them off
the path from request to reply: a `print(1)` cell costs a read, a write of the output, a
pread per stream and the write of the reply; resetting the capture files waits until the
reply has been sent.
"""

import base64
import fcntl
import io
import json
import os
import re
import signal
import struct
import sys
import tempfile
import time

MAX_STREAM_BYTES = 16 << 20
READ_CHUNK = 64 << 10
# Capture files are emptied once this much has been read from them.
TRUNCATE_AFTER = 1 << 20
MAX_FRAME_BYTES = 64 << 20
# Replies stay well below the agent's frame limit, leaving room for its own envelope.
MAX_REPLY_BYTES = 48 << 20
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def log(message):
    """Writes a driver diagnostic to the agent's stderr (never to the capture files)."""
    try:
        os.write(LOG_FD, ("sandpool-driver: %s\n" % message).encode("utf-8", "replace"))
    except OSError:
        pass


LOG_FD = 2


class Channel:
    """Length-prefixed msgpack frames over two private, non-inheritable descriptors."""

    def __init__(self, read_fd, write_fd):
        import msgpack

        self._msgpack = msgpack
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._buffer = bytearray()

    def _fill(self, n):
        """Reads until at least n bytes are buffered; False at end of file."""
        while len(self._buffer) < n:
            chunk = os.read(self._read_fd, max(n - len(self._buffer), READ_CHUNK))
            if not chunk:
                return False
            self._buffer += chunk
        return True

    def read(self):
        # One read usually brings the whole request: every system call a sandbox makes
        # after a pause costs a wake-up of its kernel (~0.1 ms under gVisor).
        if not self._fill(4):
            return None
        (length,) = struct.unpack(">I", self._buffer[:4])
        if length > MAX_FRAME_BYTES:
            raise ValueError("request frame of %d bytes is too large" % length)
        if not self._fill(4 + length):
            return None
        payload = bytes(self._buffer[4 : 4 + length])
        del self._buffer[: 4 + length]
        return self._msgpack.unpackb(payload, raw=False)

    def write(self, message):
        payload = self._msgpack.packb(clean(message), use_bin_type=True)
        if len(payload) > MAX_REPLY_BYTES and isinstance(message, dict) and "displays" in message:
            # Rich output too large for one frame: keep the text streams, drop the bundles.
            note = "\n[sandpool: rich output dropped: the reply of %d bytes exceeds the %d-byte limit]\n" % (
                len(payload),
                MAX_REPLY_BYTES,
            )
            message = dict(message, result=None, displays=[], stderr=message.get("stderr", "") + note)
            payload = self._msgpack.packb(clean(message), use_bin_type=True)
        data = struct.pack(">I", len(payload)) + payload
        view = memoryview(data)
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]


def clean(value):
    """Makes a response encodable: valid UTF-8 strings, base64 for bytes in MIME bundles."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def mime_bundle(data):
    """A Jupyter MIME bundle as str → str: bytes become base64, JSON types are dumped."""
    bundle = {}
    for mime, value in (data or {}).items():
        if isinstance(value, (bytes, bytearray)):
            value = base64.b64encode(bytes(value)).decode("ascii")
        elif not isinstance(value, str):
            try:
                value = json.dumps(value)
            except (TypeError, ValueError):
                value = str(value)
        bundle[str(mime)] = value
    return bundle


class StreamCapture:
    """Points one standard fd at an unlinked, append-only temp file and reads it back.

    Reading a cell's output costs one pread when it fits in READ_CHUNK (none of fstat,
    seek or truncate): reads continue from where the last one ended, and reset() empties
    the file, after the reply has been sent, once TRUNCATE_AFTER bytes have been read.
    """

    def __init__(self, fd):
        self.fd = fd
        self.file = tempfile.TemporaryFile(prefix="sandpool-out-")
        self.offset = 0
        flags = fcntl.fcntl(self.file.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(self.file.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
        self.attach()

    def attach(self):
        """(Re)points the standard fd at the capture file, undoing any redirection by a cell."""
        os.dup2(self.file.fileno(), self.fd)

    def take(self):
        """Everything written since the last call (capped at MAX_STREAM_BYTES)."""
        fileno = self.file.fileno()
        start = self.offset
        data = os.pread(fileno, READ_CHUNK, start)
        if len(data) < READ_CHUNK:
            self.offset += len(data)
            return data.decode("utf-8", "replace")
        size = os.fstat(fileno).st_size - start
        data = os.pread(fileno, min(size, MAX_STREAM_BYTES), start)
        self.offset = start + size
        text = data.decode("utf-8", "replace")
        if size > MAX_STREAM_BYTES:
            text += "\n[sandpool: output truncated after %d of %d bytes]\n" % (MAX_STREAM_BYTES, size)
        return text

    def reset(self):
        """Re-attaches the fd, and empties the file if enough has been read from it.

        Output a background process writes between take() and an emptying is lost.
        """
        if self.offset >= TRUNCATE_AFTER:
            os.ftruncate(self.file.fileno(), 0)
            self.offset = 0
        self.attach()


def flush_python_streams():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass


def flush_before_commands():
    """Flushes Python's buffered output before anything that writes to fds 1/2 itself."""
    import subprocess

    os.register_at_fork(before=flush_python_streams)
    popen_init = subprocess.Popen.__init__

    def init(self, *args, **kwargs):
        flush_python_streams()
        popen_init(self, *args, **kwargs)

    subprocess.Popen.__init__ = init
    system = os.system

    def flushed_system(command):
        flush_python_streams()
        return system(command)

    os.system = flushed_system


def freeze_heap():
    """Moves every object alive now (IPython, imported libraries) out of the cyclic garbage
    collector's reach: a full collection then scans only what cells created, instead of
    pausing a cell for tens of milliseconds."""
    import gc

    gc.collect()
    gc.freeze()


def buffered_text(fd):
    """A fully buffered UTF-8 text stream on fd (flushed by the driver, see the module doc)."""
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16), encoding="utf-8", errors="backslashreplace")


def strip_ansi(text):
    return ANSI_ESCAPE.sub("", text)


def make_shell():
    """Builds the IPython shell with capturing display hook, publisher and tracebacks."""
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class CapturingDisplayHook(DisplayHook):
        """Keeps the cell's execute_result bundle instead of printing it."""

        def start_displayhook(self):
            pass

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            self.shell.sp_result = mime_bundle(format_dict)

        def finish_displayhook(self):
            pass

    class CapturingDisplayPublisher(DisplayPublisher):
        """Collects display_data bundles (display(), HTML, figures) in order."""

        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            self.shell.sp_displays.append(mime_bundle(data))

        def clear_output(self, wait=False):
            self.shell.sp_displays.clear()

    class DriverShell(InteractiveShell):
        displayhook_class = CapturingDisplayHook
        display_pub_class = CapturingDisplayPublisher
        # `!cmd` runs through subprocess with the captured fds 1/2; no pty needed.
        system = InteractiveShell.system_raw

        def enable_gui(self, gui=None):
            """No event loop here; `%matplotlib inline` only needs this not to fail."""

        def _showtraceback(self, etype, evalue, stb):
            lines = []
            for chunk in stb:
                lines.extend(strip_ansi(chunk).split("\n"))
            self.sp_error = {
                "ename": getattr(etype, "__name__", str(etype)),
                "evalue": str(evalue),
                "traceback": lines,
            }

        def show_usage_error(self, exc):
            self.sp_error = {"ename": "UsageError", "evalue": str(exc), "traceback": ["UsageError: %s" % exc]}

    config = Config()
    config.HistoryManager.enabled = False
    shell = DriverShell.instance(config=config)
    for scheme in ("nocolor", "NoColor"):
        try:
            shell.colors = scheme
            break
        except Exception:  # older/newer IPython spell the scheme differently
            continue
    shell.sp_result = None
    shell.sp_displays = []
    shell.sp_error = None
    return shell


class Driver:
    """Executes requests against one persistent IPython shell."""

    def __init__(self, shell, stdout, stderr):
        self.shell = shell
        self.stdout = stdout
        self.stderr = stderr
        self.executing = False

    def on_sigint(self, signum, frame):
        # The agent interrupts a cell on timeout; outside a cell the signal is ignored.
        if self.executing:
            raise KeyboardInterrupt

    def prepare(self):
        """Readies the next cell, after a reply has been sent: empties the capture files,
        undoes redirections of fds 1 and 2 and reinstalls the SIGINT handler if a cell
        replaced it."""
        self.stdout.reset()
        self.stderr.reset()
        if signal.getsignal(signal.SIGINT) != self.on_sigint:
            signal.signal(signal.SIGINT, self.on_sigint)

    def execute(self, code):
        shell = self.shell
        shell.sp_result, shell.sp_displays, shell.sp_error = None, [], None
        started = time.monotonic()
        interrupted = False
        outcome = None
        try:
            self.executing = True
            try:
                outcome = shell.run_cell(code, store_history=True)
            finally:
                self.executing = False
        except KeyboardInterrupt:
            interrupted = True
        duration_ms = int((time.monotonic() - started) * 1000)
        flush_python_streams()
        error = shell.sp_error
        if error is None and outcome is not None and not outcome.success:
            exc = outcome.error_before_exec or outcome.error_in_exec
            error = {"ename": type(exc).__name__, "evalue": str(exc), "traceback": []}
        if interrupted and error is None:
            error = {"ename": "KeyboardInterrupt", "evalue": "", "traceback": []}
        if error is not None and error["ename"] == "KeyboardInterrupt":
            interrupted = True
        status = "interrupted" if interrupted else ("error" if error is not None else "ok")
        return {
            "status": status,
            "stdout": self.stdout.take(),
            "stderr": self.stderr.take(),
            "result": shell.sp_result,
            "displays": list(shell.sp_displays),
            "error": error,
            "duration_ms": duration_ms,
        }

    def reseed(self, seed):
        import random

        value = int.from_bytes(bytes(seed), "big")
        random.seed(value)
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed(value % (1 << 32))
        tempfile._name_sequence = None
        return {"ok": True}

    def warm(self, modules):
        import importlib

        failed = []
        for name in modules:
            try:
                importlib.import_module(name)
                if name.split(".")[0] == "matplotlib":
                    self.shell.run_line_magic("matplotlib", "inline")
            except Exception as exc:
                failed.append("%s (%s: %s)" % (name, type(exc).__name__, exc))
        flush_python_streams()
        self.stdout.take()
        self.stderr.take()
        freeze_heap()
        if failed:
            return {"ok": False, "message": "cannot import " + ", ".join(failed)}
        return {"ok": True}

    def handle(self, request):
        op = request.get("op") if isinstance(request, dict) else None
        if op == "execute":
            return self.execute(str(request.get("code", "")))
        if op == "reseed":
            return self.reseed(request.get("seed") or b"")
        if op == "warm":
            return self.warm([str(m) for m in request.get("modules") or []])
        if op == "ping":
            return {"ok": True}
        return {"ok": False, "message": "unknown driver op %r" % (op,)}


def main():
    global LOG_FD
    # Private, non-inheritable copies of the channel and of the real stderr.
    read_fd, write_fd = os.dup(3), os.dup(4)
    os.close(3)
    os.close(4)
    LOG_FD = os.dup(2)
    data_dir = os.environ.get("SANDPOOL_DATA_DIR", "/mnt/data")
    os.makedirs(data_dir, exist_ok=True)
    os.chdir(data_dir)
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    channel = Channel(read_fd, write_fd)
    shell = make_shell()
    stdout, stderr = StreamCapture(1), StreamCapture(2)
    sys.stdout, sys.stderr = buffered_text(1), buffered_text(2)
    flush_before_commands()
    driver = Driver(shell, stdout, stderr)
    driver.prepare()
    freeze_heap()
    channel.write({"ready": True, "python": sys.version.split()[0]})
    while True:
        request = channel.read()
        if request is None:
            return
        try:
            response = driver.handle(request)
        except KeyboardInterrupt:
            flush_python_streams()
            response = {
                "status": "interrupted",
                "stdout": stdout.take(),
                "stderr": stderr.take(),
                "result": None,
                "displays": [],
                "error": {"ename": "KeyboardInterrupt", "evalue": "", "traceback": []},
                "duration_ms": 0,
            }
        except Exception as exc:  # a driver bug must not kill the session
            log("request failed: %s: %s" % (type(exc).__name__, exc))
            response = {"ok": False, "message": "driver error: %s: %s" % (type(exc).__name__, exc)}
        channel.write(response)
        try:
            driver.prepare()
        except Exception as exc:
            log("cannot reset the output capture: %s: %s" % (type(exc).__name__, exc))


if __name__ == "__main__":
    main()
