"""Author-year citation labels for the book's bibliography.

Sphinx extension (loaded through ``sphinx.local_extensions`` in _config.yml).
It registers a pybtex formatting style, ``plain_author_year``: pybtex's
``plain`` style with labels such as "Ioffe and Szegedy 2015" or
"Reddi et al. 2018" instead of numbers, so that a citation in the text says
whom it cites. An entry without an author (the five source documents, whose
saved copies name no author or date) is labelled by its ``shorthand`` field,
or by its key if it has none.
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    return " ".join(person.prelast_names + person.last_names).replace("{", "").replace("}", "")


def author_year_label(entry) -> str:
    """'Surname Year', 'Surname and Surname Year' or 'Surname et al. Year'."""
    if "shorthand" in entry.fields:
        return entry.fields["shorthand"]
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    if not people:
        return entry.key
    if len(people) == 1:
        names = _surname(people[0])
    elif len(people) == 2:
        names = f"{_surname(people[0])} and {_surname(people[1])}"
    else:
        names = f"{_surname(people[0])} et al."
    year = entry.fields.get("year", "n.d.")
    return f"{names} {year}"


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        seen: dict[str, int] = {}
        for entry in sorted_entries:
            label = author_year_label(entry)
            seen[label] = seen.get(label, 0) + 1
            # Two works with the same authors and year get "2015", "2015b", ...
            yield label if seen[label] == 1 else f"{label}{chr(ord('a') + seen[label] - 1)}"


class PlainAuthorYearStyle(PlainStyle):
    default_label_style = "author_year_labels"


def setup(app):
    register_plugin("pybtex.style.labels", "author_year_labels", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "plain_author_year", PlainAuthorYearStyle)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
