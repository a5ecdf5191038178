"""The facts of the shipped release data (`src/kubehop/data/releases.yaml`) that tests expect.

The one place tests pin release data: when the data is refreshed (a new patch, a moved end of
life), this file changes and no test does. `tests/unit/data/test_release_pins.py` checks every
value here against the shipped data, so a refresh that forgets this file fails there, by name.
"""

from __future__ import annotations

from datetime import date, timedelta

# The newest patch of each minor, as Kubernetes writes versions.
LATEST = {
    "1.24": "v1.24.17", "1.25": "v1.25.16", "1.26": "v1.26.15", "1.27": "v1.27.16",
    "1.28": "v1.28.15", "1.29": "v1.29.15", "1.30": "v1.30.14", "1.31": "v1.31.14",
    "1.32": "v1.32.13", "1.33": "v1.33.13", "1.34": "v1.34.11", "1.35": "v1.35.8",
    "1.36": "v1.36.4",
}
# End of life (end of patch support) of each minor.
EOL = {
    "1.27": date(2024, 6, 28), "1.28": date(2024, 10, 28), "1.29": date(2025, 2, 28),
    "1.30": date(2025, 7, 15), "1.31": date(2025, 11, 11), "1.32": date(2026, 2, 28),
    "1.33": date(2026, 6, 28), "1.34": date(2026, 10, 27), "1.35": date(2027, 2, 28),
    "1.36": date(2027, 6, 28), "1.37": date(2027, 10, 28),
}
# Start of maintenance mode (end of standard support) of the minors still patched.
MAINTENANCE = {"1.34": date(2026, 8, 27), "1.35": date(2026, 12, 28), "1.36": date(2027, 4, 28),
               "1.37": date(2027, 8, 28)}
# The snapshot date of the data, the newest minor it lists (announced, without a patch release
# yet) and its planned GA.
GENERATED = date(2026, 8, 22)
PLANNED = "1.37"
# A day soon after the snapshot (within 60 days: no staleness warning), as `--today`.
FRESH = GENERATED + timedelta(days=10)
PLANNED_GA = date(2026, 8, 26)
# The minors in standard support on the snapshot date, and the newest patch of them all.
SUPPORTED_AT_GENERATED = ("1.34", "1.35", "1.36")
NEWEST = LATEST["1.36"]


def latest(minor: str) -> str:
    """`v1.29.15` for `1.29`."""
    return LATEST[minor]


def deb(minor: str) -> str:
    """The pkgs.k8s.io Debian package version of the newest patch (`1.29.15-1.1`)."""
    return LATEST[minor].removeprefix("v") + "-1.1"


def rpm(minor: str) -> str:
    """The pkgs.k8s.io RPM package version of the newest patch (`1.29.15-150500.1.1`)."""
    return LATEST[minor].removeprefix("v") + "-150500.1.1"
