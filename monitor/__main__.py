"""``python -m monitor`` runs the copyguard command line."""

from monitor.cli import main

main()
