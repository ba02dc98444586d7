"""``python -m agent`` is the ``smart-agent`` command."""

from agent.cli import main

main()
