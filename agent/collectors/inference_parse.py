"""Parsing one inference server's ``/metrics`` body into an index of samples by name.

Design decisions:

- A series that appears twice in one exposition (same name, same labels) is an error for that
  target (``DuplicateSeries``), never summed: the text format forbids it, and a sum of two
  readings of one gauge (3 + 99 = 102 waiting requests) is a number nobody measured.
- At most ``max_samples`` samples are parsed (``TooManySeries`` past it), so a target with
  fifty thousand series costs a bounded amount of work and memory; with ``keep``, only the
  samples of the names the engine tables read are stored, the others leave just their name.
- Counter samples are indexed by their base name, without ``_total``, because the parser adds
  the suffix where the server left it out (TGI and Triton name counters without it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TextIO, cast

from prometheus_client.parser import text_fd_to_metric_families

SampleIndex = dict[str, list[tuple[dict[str, str], float]]]
MAX_SAMPLES = 20_000  # a vLLM serving 40 models exports about 16,000


class ParseError(ValueError):
    """The body is not Prometheus text exposition."""


class DuplicateSeries(ParseError):
    """One series appears twice in the exposition."""


class TooManySeries(ParseError):
    """The exposition holds more samples than the cap."""


def _capped_lines(text: str, max_samples: int) -> Iterator[str]:
    """The lines of ``text``, raising TooManySeries past ``max_samples`` sample lines.

    Counted before the parser sees them: it holds a whole family before yielding it, so a cap
    on what it yields would come after one huge family was already in memory.
    """
    count = 0
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        line = text[start:end]
        start = end
        if line.strip() and not line.startswith("#"):
            count += 1
            if count > max_samples:
                raise TooManySeries(f"more than {max_samples} samples")
        yield line


def parse_samples(
    text: str,
    keep: Callable[[str], bool] | None = None,
    max_samples: int = MAX_SAMPLES,
) -> SampleIndex:
    """Index every finite sample of a /metrics body by name (counters by base name)."""
    index: SampleIndex = {}
    seen: set[int] = set()
    try:
        lines = cast(TextIO, _capped_lines(text, max_samples))  # the parser only iterates it
        for family in text_fd_to_metric_families(lines):
            for sample in family.samples:
                key = hash((sample.name, tuple(sorted(sample.labels.items()))))
                if key in seen:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    raise DuplicateSeries(f"series {sample.name}{{{labels}}} appears twice"[:200])
                seen.add(key)
                name = sample.name
                if family.type == "counter" and name in (family.name, family.name + "_total"):
                    name = family.name
                samples = index.setdefault(name, [])
                if keep is not None and not keep(name):
                    continue
                value = float(sample.value)
                if math.isfinite(value):
                    samples.append((dict(sample.labels), value))
    except ParseError:
        raise
    except ValueError as exc:
        first_line = text.strip().splitlines()[0][:80] if text.strip() else ""
        raise ParseError(f"not Prometheus text exposition ({exc}); starts {first_line!r}") from exc
    return {name: samples for name, samples in index.items() if samples or keep is not None}
