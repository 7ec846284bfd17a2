"""Error text that people read (job rows, pages, API messages) never shows how the server is
laid out: no absolute paths, no stack traces. A path keeps its file name, which is often what
tells a merchant or an operator which photo or model is meant."""
from __future__ import annotations

import re

#: Longest error text written on a row; the rest is in the log.
MAX_CHARS = 500

# An absolute POSIX path (/work/main/var/media/a.png, /usr/lib/python3/x.py) or a Windows one
# (C:\models\x.bin), optionally as a file: URL. A path may hold spaces only when quoted, so the
# unquoted form stops at whitespace, quotes, brackets and the punctuation that ends a sentence.
_QUOTED = re.compile(r"""(?P<q>['"])(?:file://)?(?P<path>(?:/|[A-Za-z]:[\\/])[^'"\n]*)(?P=q)""")
_BARE = re.compile(r"""(?<![\w.:/\\-])(?:file://)?(?P<path>(?:/|[A-Za-z]:[\\/])[^\s'"()\[\]{}<>,;]*[^\s'"()\[\]{}<>,;.:!?])""")
_TRACEBACK = "Traceback (most recent call last)"


def _file_name(path: str) -> str:
    name = re.split(r"[\\/]", path.rstrip("\\/"))[-1]
    return name or "a server folder"


def without_paths(text: str) -> str:
    """`text` on one line, every absolute path reduced to its file name and a traceback to its
    last line (the exception), cut to MAX_CHARS."""
    if _TRACEBACK in text:
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        text = lines[-1] if lines else ""
    text = _QUOTED.sub(lambda m: f"{m['q']}{_file_name(m['path'])}{m['q']}", text)
    text = _BARE.sub(lambda m: _file_name(m["path"]), text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def exception_text(exc: BaseException) -> str:
    """A merchant-readable line for `exc`: its message with paths reduced to file names.

    An OSError names its file by `filename` ("No such file or directory: 'bottle.png'");
    an exception without a message says what kind of failure it was."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: '{_file_name(str(exc.filename))}'"
    else:
        text = str(exc).strip() or type(exc).__name__
    return without_paths(text)
