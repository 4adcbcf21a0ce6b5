"""Litigation: the scored case queue and dossier export.

Not built yet: see the litigation issue.
"""
