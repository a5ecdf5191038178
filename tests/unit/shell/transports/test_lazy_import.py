"""asyncssh costs ~0.5 s to import: only `transports.ssh` may import it, and nothing eagerly
imports that module (DESIGN: chosen dependencies)."""

import subprocess
import sys

CHECK = """
import sys
import kubehop
import kubehop.shell.transports
import kubehop.shell.transports.fake, kubehop.shell.transports.local
import kubehop.shell.transports.inventory
import kubehop.core.node_commands
import kubehop.cli.app
assert "asyncssh" not in sys.modules, "asyncssh was imported eagerly"
assert "kubehop.shell.transports.ssh" not in sys.modules
import kubehop.shell.transports.ssh
assert "asyncssh" in sys.modules
"""


def test_asyncssh_is_imported_only_with_the_ssh_transport():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
