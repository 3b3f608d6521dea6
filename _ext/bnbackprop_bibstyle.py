"""Author-year citation labels for the book's bibliography.

Sphinx extension (loaded through ``sphinx.local_extensions`` in _config.yml).
It registers a pybtex formatting style, ``plain_author_year``: pybtex's
``plain`` style with labels such as "Ioffe and Szegedy 2015" or
"Reddi et al. 2018" instead of numbers, so that a citation in the text says
whom it cites. An entry with a ``shorthand`` field (the five source documents,
whose saved copies give no date) is labelled by it, and an entry with neither
shorthand nor author by its key. The entries are listed in the order of their labels
(sorting style ``label_order``).
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting import BaseSortingStyle


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


class LabelSortingStyle(BaseSortingStyle):
    """Entries in the order of the labels a reader sees, whatever their type: by label
    (case-insensitive), then year, then title. (pybtex's author_year_title puts every
    entry without an author first, and sorts books by editor.)"""

    def sorting_key(self, entry):
        label = author_year_label(entry).replace("{", "").replace("}", "").casefold()
        return (label, entry.fields.get("year", ""), entry.fields.get("title", "").casefold())


class PlainAuthorYearStyle(PlainStyle):
    default_label_style = "author_year_labels"
    default_sorting_style = "label_order"


def setup(app):
    register_plugin("pybtex.style.labels", "author_year_labels", AuthorYearLabelStyle)
    register_plugin("pybtex.style.sorting", "label_order", LabelSortingStyle)
    register_plugin("pybtex.style.formatting", "plain_author_year", PlainAuthorYearStyle)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
