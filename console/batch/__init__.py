"""The batch engine: one action over many deployments, in waves, with gates and a journal.

Shared by the CLI and the TUI; nothing here imports Textual. ``runner`` sends one action to many
targets with bounded parallelism; ``plan`` turns targets and settings into waves; ``journal``
records a batch on disk before each step is sent; ``executor`` runs a plan wave by wave.
"""
