"""JSON out: readable UTF-8 that cannot crash on text a client smuggled in.

Responses are UTF-8 with non-ASCII text as is (`ensure_ascii` off: an Arabic summary stays
readable and half the size). But JSON lets a client send a lone surrogate (`"\\ud800"`),
which Python keeps in a `str` and which no UTF-8 encoder accepts. Echoed back (a batch
row's `id`, a field name in an error), it would turn a client's mistake into a 500. Such
a response falls back to ASCII escapes, which is still exactly what the client sent.
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


class JSONProvider(DefaultJSONProvider):
    ensure_ascii = False
    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            kwargs["ensure_ascii"] = True
            return super().dumps(obj, **kwargs)
        return text
