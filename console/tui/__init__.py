"""The deck: the Textual TUI."""
