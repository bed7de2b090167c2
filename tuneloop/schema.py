"""Config schemas declared once: the public face of the declaration machinery and its parser.

Declarations live in :mod:`tuneloop.schema_decl` (the design is recorded there), the parser in
:mod:`tuneloop.schema_parse` and the JSON Schema writer in :mod:`tuneloop.schema_json`; this module
re-exports what configuration modules use, so they import one name.
"""

from __future__ import annotations

from tuneloop.schema_decl import ConfigErrors, Scope, Setting, Spread, setting
from tuneloop.schema_parse import parse_declared as parse

__all__ = ["ConfigErrors", "Scope", "Setting", "Spread", "parse", "setting"]
