"""The console's core: the rules every front-end (CLI, deck, batch engine) calls, each once.

``guard``: read-only and RBAC. Nothing here imports Textual, a front-end or a backend.
"""
