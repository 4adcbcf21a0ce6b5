"""Takedown notices: templates, recipients, dispatch and re-checks.

Not built yet: see the takedown issue.
"""
