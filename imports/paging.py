"""Keyset pagination: the hundredth page costs what the first does.

A page follows (created_at, id) downwards from a cursor instead of skipping
rows with OFFSET, and the total is counted only up to COUNT_CAP ("more
than 1,000"), so neither a deep page nor the count scans the whole table.
"""

import base64
import binascii
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q

COUNT_CAP = 1000
MAX_LEGACY_PAGE = 1000  # ?page=N still works, within reason


class BadCursor(ValueError):
    pass


@dataclass
class KeysetPage:
    items: list
    older: str | None  # cursor of the next, older page
    newer: str | None  # cursor of the previous, newer page
    count: int
    count_capped: bool

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)

    @property
    def count_words(self):
        """The total as a sentence says it: "342", or "more than 1,000" past the cap."""
        return f"more than {COUNT_CAP:,}" if self.count_capped else f"{self.count:,}"

    def summary(self, noun="import"):
        """What the page holds, in words, for the line between Newer and Older.

        "42 imports" when they are all here; otherwise which part of the
        total this is: "The newest 50 of 342 imports", "50 of more than 1,000
        imports", "The oldest 17 of 342 imports". A page reached by a cursor
        does not know how many rows are newer than it (that would cost a
        count of its own), so a page in between says no position.
        """
        shown = len(self.items)
        if not (self.newer or self.older):
            return f"{shown:,} {plural(noun, shown)}"
        total = f"{self.count_words} {plural(noun, self.count)}"
        if not self.newer:
            return f"The newest {shown:,} of {total}"
        if not self.older:
            return f"The oldest {shown:,} of {total}"
        return f"{shown:,} of {total}"


def plural(noun, number):
    return noun if number == 1 else f"{noun}s"


def encode_cursor(row):
    return seal(f"{row.created_at.isoformat()}|{row.pk}")


def seal(text):
    """The cursor for `text`: it and its CRC-32, in URL-safe base64.

    The check is not a secret (a cursor shows only a time and an id of the
    team's own rows): it makes a cursor cut short or mistyped read as none,
    a 400, where it could have decoded to another row and another page.
    """
    sealed = f"{text}|{zlib.crc32(text.encode()):08x}"
    return base64.urlsafe_b64encode(sealed.encode()).decode().rstrip("=")


def decode_cursor(cursor):
    """(created_at, id) from a cursor; BadCursor for anything this module did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        text, _, check = text.rpartition("|")
        if check != f"{zlib.crc32(text.encode()):08x}":
            raise ValueError(check)
        moment, _, pk = text.partition("|")
        if not (pk.isascii() and pk.isdigit() and len(pk) <= 18):
            raise ValueError(pk)
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None:
            raise ValueError(moment)
        # In UTC here: a moment at the edge of year 1 or 9999 in another
        # zone would overflow in the database adapter instead (a 500).
        return created_at.astimezone(UTC), int(pk)
    except (ValueError, OverflowError, UnicodeError, binascii.Error):
        raise BadCursor("The page cursor is not one this portal made.") from None


def parse_legacy_page(value):
    # Short before int(): "0001000000000000000000" must not become an OFFSET
    # past what the database can hold.
    short = value.isascii() and value.isdigit() and len(value) <= len(str(MAX_LEGACY_PAGE)) + 2
    if not (short and 1 <= int(value) <= MAX_LEGACY_PAGE):
        raise BadCursor(f"page must be a whole number from 1 to {MAX_LEGACY_PAGE}.")
    return int(value)


def keyset_page(queryset, *, size, older_than=None, newer_than=None, page=None, search=False):
    """One page of a queryset ordered newest first (-created_at, -id).

    `older_than`/`newer_than` are cursors; `page` is the old page number,
    answered with OFFSET once and with cursors from there on. At most one
    of the three: a link that mixes them was not made here. `search`: the
    queryset's condition is costly (trigram lookups on three columns), so
    it is evaluated once, for the count and the page together.
    """
    if sum(1 for position in (older_than, newer_than, page) if position) > 1:
        raise BadCursor("Give at most one of older, newer and page.")
    if search:
        # The keys of at most COUNT_CAP + 1 matches in place of a COUNT:
        # when the cap holds them all, they give the page as well. Not for
        # a plain history, whose COUNT and page both read an index, and
        # where reading 1,001 timestamps costs more (15 ms against 2).
        keys = list(queryset.order_by().values_list("created_at", "pk")[: COUNT_CAP + 1])
        if len(keys) <= COUNT_CAP:
            return page_of_keys(queryset, keys, size, older_than, newer_than, page)
        total = len(keys)
    else:
        # In the page's order, so that every plan of it reads the index
        # (team, created_at, id) and stops at the cap. Unordered, the plan a
        # connection prepared while the team was small bitmap-scanned all its
        # rows once it had many (tests/test_database.py).
        total = capped(queryset).count()
    if newer_than:
        created_at, pk = decode_cursor(newer_than)
        # The plain range first: the index (team, created_at) takes it as its
        # condition, where an OR alone would be a filter over every newer row.
        newer = queryset.filter(created_at__gte=created_at).filter(
            Q(created_at__gt=created_at) | Q(pk__gt=pk)
        )
        rows = list(newer.order_by("created_at", "id")[: size + 1])
        more_newer = len(rows) > size
        items = rows[:size][::-1]
        return make_page(items, total, has_older=True, has_newer=more_newer)
    offset = 0
    if older_than:
        created_at, pk = decode_cursor(older_than)
        queryset = queryset.filter(created_at__lte=created_at).filter(
            Q(created_at__lt=created_at) | Q(pk__lt=pk)
        )
    elif page:
        offset = (parse_legacy_page(page) - 1) * size
    rows = list(queryset.order_by("-created_at", "-id")[offset : offset + size + 1])
    items = rows[:size]
    return make_page(items, total, has_older=len(rows) > size, has_newer=bool(older_than or offset))


def capped(queryset):
    """The rows a plain history counts: its first COUNT_CAP + 1, in the page's order."""
    return queryset.order_by("-created_at", "-id")[: COUNT_CAP + 1]


def page_of_keys(queryset, keys, size, older_than, newer_than, page):
    """The page from every match's (created_at, id), then its rows by primary key."""
    keys.sort(reverse=True)  # newest first, ties by id: the database's order
    if newer_than:
        position = decode_cursor(newer_than)
        newer = [key for key in keys if key > position]
        chosen, has_older, has_newer = newer[-size:], True, len(newer) > size
    elif older_than:
        position = decode_cursor(older_than)
        older = [key for key in keys if key < position]
        chosen, has_older, has_newer = older[:size], len(older) > size, True
    else:
        offset = (parse_legacy_page(page) - 1) * size if page else 0
        chosen = keys[offset : offset + size]
        has_older, has_newer = len(keys) > offset + size, bool(offset)
    # By primary key alone: the keys came through `queryset`, whose condition
    # (the team's, a search's) is not evaluated a second time.
    by_pk = queryset.model._default_manager.using(queryset.db).filter(
        pk__in=[pk for _, pk in chosen]
    )
    by_pk.query.select_related = queryset.query.select_related
    rows = by_pk.in_bulk()
    # A row deleted between the two statements is left out, not an error.
    items = [rows[pk] for _, pk in chosen if pk in rows]
    return make_page(items, len(keys), has_older=has_older, has_newer=has_newer)


def make_page(items, total, *, has_older, has_newer):
    return KeysetPage(
        items=items,
        older=encode_cursor(items[-1]) if items and has_older else None,
        newer=encode_cursor(items[0]) if items and has_newer else None,
        count=min(total, COUNT_CAP),
        count_capped=total > COUNT_CAP,
    )
