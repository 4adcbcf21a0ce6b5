"""Takedown notices: from detections to lawful notices, sent once and followed up.

- :mod:`takedown.content`, :mod:`takedown.requirements`, :mod:`takedown.render`: what a notice
  says, the elements each law requires (17 U.S.C. 512(c)(3)(A), DSA Art. 16(2), PRC Regulation
  Art. 14), and its rendering from Jinja2 templates (a holder's own first).
- :mod:`takedown.policy`, :mod:`takedown.recipients`, :mod:`takedown.drafting`,
  :mod:`takedown.review`: allowlist and licences, whom to notify, batching detections into
  notices, and the person's decision where one is needed.
- :mod:`takedown.outbox` with :mod:`takedown.smtp_sender` and :mod:`takedown.http_sender`:
  delivery, at most once, retried with backoff.
- :mod:`takedown.followup`, :mod:`takedown.counter`, :mod:`takedown.export`: re-check verdicts,
  counter-notices, Lumen records and URL lists.

Imports only ``ledger`` and ``config``; reads no settings itself (``monitor.takedown_stage``
builds the rules from them). Exceptions: :mod:`takedown.errors`.
"""
