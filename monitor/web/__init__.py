"""The web face of copyguard: the REST API and (later) the console, served by `copyguard serve`."""
