"""Puts the test run's network guard into every Python subprocess the tests start.

Active only when `KUBEHOP_NETGUARD=1` (tests/conftest.py sets it and puts this directory first on
`PYTHONPATH`); see kubehop_netguard.py.
"""

import os

if os.environ.get("KUBEHOP_NETGUARD") == "1":
    import kubehop_netguard

    kubehop_netguard.install()
