"""JSON shapes of the ledger's rows, shared by the CLI's --json output and the REST API."""
