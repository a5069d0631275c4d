"""Size limits on cookies, checked before any parsing."""

from __future__ import annotations

from cookies.errors import CookieError

#: Largest cookie accepted or produced by default, in bytes (both forms). It holds a
#: persistent domain definition of a few KiB with room to spare; libvirt's historical
#: transport limit was the same.
DEFAULT_MAX_SIZE = 16 * 1024


def check_size(size: int, *, max_size: int) -> None:
    """Refuse a cookie of ``size`` bytes if it is over ``max_size``.

    Raises:
        CookieError: the cookie is too big.
    """
    if size > max_size:
        raise CookieError(f"cookie is {size} bytes, over the limit of {max_size} bytes")
