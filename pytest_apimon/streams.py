"""The process's standard output and error, masked: what any code prints (http.client's debug lines, a library's
print()) while pytest-apimon sends requests passes through the run's mask (redact.Redactor.text) on its way out.

Why the streams themselves: pytest's capture does not cover all of pytest-apimon's network work. The in-process
runner's threads send requests whenever they are ready, also while pytest's capture is suspended between two items
(and always under `-s`); the WeCom report goes out at the end of the session, after capture has stopped; an xdist
worker's standard error is the terminal's. With `http.client.HTTPConnection.debuglevel = 1` (a usual debugging
step in a conftest) http.client print()s every request line, header and body to sys.stdout, the robot key in the
webhook URL and every token with them. Log records are masked where they are made (logs.mask_all_records), but a
print is not a log record.

`sys.stdout` and `sys.stderr` are replaced by a MaskedStream once, before pytest's capture starts
(plugin.pytest_load_initial_conftests): pytest's capture saves the streams it finds and puts them back every time
it is suspended, so the masked ones are what every thread writes to whenever capture is not holding the output,
and what pytest's terminal reporter writes to. Output held by capture lands in an item's report, which
plugin._mask_report masks. The mask is given when the run knows its secrets (pytest_configure); until then the
streams pass text through unchanged.

Lines, not writes, are masked: print() writes its arguments one by one (http.client prints a response header as
`print("header:", name + ":", value)`), so a stream keeps a line until its newline, or until flush() (pytest
flushes its progress dots and "collecting ..." itself), and masks it whole: a secret is found by value (every
secret the run knows or learns) or by a secret-looking name on the same line (`header: X-Auth-Token: …`, a
token not learnt yet). Limits: bytes written to `sys.stdout.buffer`, text written to `sys.__stdout__`/
`sys.__stderr__` or straight to file descriptor 1 or 2 are not seen; nor is what is printed after the run
restored the streams (pytest_unconfigure), unless the writer kept the masked stream itself.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

HIDDEN = "<output hidden: masking failed>\n"


class MaskedStream:
    """A text stream that masks every str written to it with `mask` (None: unchanged) and writes the result to
    `stream`. Every other attribute (flush, isatty, fileno, encoding…) is the wrapped stream's."""

    # A line longer than this is masked and written in parts (a runaway write without newline must not grow
    # without bound); every known secret and name=value pair is far shorter.
    LINE_LIMIT = 65536

    def __init__(self, stream: TextIO, mask: Callable[[str], str] | None = None) -> None:
        self.stream = stream
        self.mask = mask
        self._pending = ""  # the current line, not yet masked and written
        self._lock = threading.Lock()  # threads print too (the runner's checks under http.client's debug)

    def write(self, text: str) -> int:
        """Keep `text` until its line ends, then write the line masked; returns len(text), as
        io.TextIOBase.write does."""
        if not isinstance(text, str) or not text:
            self.stream.write(text)
            return len(text) if isinstance(text, str) else 0
        with self._lock:
            pending = self._pending + text
            end = pending.rfind("\n") + 1
            if end == 0 and len(pending) < self.LINE_LIMIT:
                self._pending = pending
                return len(text)
            if end == 0:
                end = len(pending)
            self._pending = pending[end:]
            self._emit(pending[:end])
        return len(text)  # what the caller gave: io's contract, whatever the mask made of it

    def flush(self) -> None:
        """Write the unfinished line (masked on its own), then flush the wrapped stream."""
        with self._lock:
            pending, self._pending = self._pending, ""
            if pending:
                self._emit(pending)
        self.stream.flush()

    def _emit(self, text: str) -> None:
        mask = self.mask
        shown = text
        if mask is not None:
            try:
                shown = mask(text)
            except Exception:  # a broken mask must not leak the raw text
                shown = HIDDEN
        self.stream.write(shown)

    def writelines(self, lines: Iterable[str]) -> None:
        """Each line through write() (masked)."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class StandardStreams:
    """The masked sys.stdout and sys.stderr of this process (mask_standard_streams)."""

    def __init__(self, out: MaskedStream, err: MaskedStream) -> None:
        self.out, self.err = out, err

    def mask_with(self, mask: Callable[[str], str] | None) -> None:
        """Mask everything written from now on with `mask` (Redactor.text), or nothing (None)."""
        self.out.mask = self.err.mask = mask

    def restore(self) -> None:
        """Put back the streams that were replaced, where nobody replaced ours since. Safe to call twice.
        The masked streams keep masking: whoever kept one (a logging.StreamHandler, a terminal writer made
        during the run) still writes masked text."""
        for stream in (self.out, self.err):
            try:
                stream.flush()  # an unfinished line goes out masked, before the plain stream is back
            except (OSError, ValueError):  # a closed stream
                pass
        if sys.stdout is self.out:
            sys.stdout = self.out.stream
        if sys.stderr is self.err:
            sys.stderr = self.err.stream


def mask_standard_streams(mask: Callable[[str], str] | None = None) -> StandardStreams:
    """Replace sys.stdout and sys.stderr by MaskedStreams over the current ones (one that is None, as under
    pythonw, stays None); restore() undoes it."""
    streams = StandardStreams(MaskedStream(sys.stdout, mask), MaskedStream(sys.stderr, mask))
    if sys.stdout is not None:
        sys.stdout = streams.out  # type: ignore[assignment]
    if sys.stderr is not None:
        sys.stderr = streams.err  # type: ignore[assignment]
    return streams


@contextmanager
def masked_output(mask: Callable[[str], str]) -> Iterator[None]:
    """Inside the block, every log record made (logs.mask_all_records) and every write to sys.stdout and
    sys.stderr is masked with `mask`: the `apimon` commands, which send notifications outside any pytest run.
    (A pytest run does the same from its hooks: plugin._mask_output.)"""
    from .logs import mask_all_records

    restore_records = mask_all_records(mask)
    streams = mask_standard_streams(mask)
    try:
        yield
    finally:
        streams.restore()
        restore_records()
